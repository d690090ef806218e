"""How a list of Changes becomes Mailchimp calls, and how their answers become per-change results.

Changes are grouped per address for the batch endpoint (status and interests), the marketing-permissions
PATCH and the erasure; tags are grouped per tag, because a Mailchimp tag is a static segment whose
membership one call changes for up to 500 addresses added and 500 removed. Pure apart from the call
closures it hands out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Action, Change, Outcome, PushResult
from connectors.errors import AuthError, ConnectorError, NotFoundError, TransientError
from connectors.mailchimp.client import SEGMENT_BATCH_MAX, MailchimpClient
from connectors.mailchimp.mapping import Construct
from sync_worker.identity import InvalidEmailError, normalise_email

CallFn = Callable[[MailchimpClient], Awaitable[None]]


@dataclass(frozen=True)
class Call:
    """One per-member call (tags, permissions, erasure) and the changes that ride on it."""

    email: str
    keys: tuple[str, ...]
    run: CallFn


@dataclass(frozen=True)
class TagBatch:
    """One static-segment call: addresses to add to the tag and to remove from it, with their changes."""

    tag: str
    add: dict[str, tuple[str, ...]]  # address -> keys of the changes that ride on it
    remove: dict[str, tuple[str, ...]]

    @property
    def keys(self) -> list[str]:
        return [key for keys in (*self.add.values(), *self.remove.values()) for key in keys]


REMOVALS = frozenset({Action.ERASE, Action.UNSUBSCRIBE, Action.UNTAG})


@dataclass
class EmailPlan:
    email: str
    status: str | None = None
    interests: dict[str, bool] = field(default_factory=dict)
    tags: dict[str, bool] = field(default_factory=dict)
    permissions: dict[str, bool] = field(default_factory=dict)
    erase: bool = False
    member_keys: list[str] = field(default_factory=list)
    subscribe_keys: list[str] = field(default_factory=list)
    tag_keys: dict[str, list[str]] = field(default_factory=dict)  # tag -> change keys
    permission_keys: list[str] = field(default_factory=list)
    erase_keys: list[str] = field(default_factory=list)

    def want_status(self, status: str) -> None:
        # R30: when one push both subscribes and unsubscribes an address, the restrictive side wins.
        if self.status != "unsubscribed":
            self.status = status

    def body(self) -> dict[str, Any] | None:
        if self.status is None and not self.interests:
            return None
        body: dict[str, Any] = {"email_address": self.email}
        if self.status is not None:
            body["status"] = self.status
        if self.interests:
            body["interests"] = dict(self.interests)
        return body


# Mailchimp's words in a batch or segment answer for an address the audience does not hold: a member
# deleted for good ("... was permanently deleted and cannot be re-imported ..."), or none at all.
GONE_REASONS = ("permanently deleted", "not a member of this list")


def says_gone(reason: str) -> bool:
    return any(words in reason.lower() for words in GONE_REASONS)


def failed_result(key: str, error: ConnectorError, *, member_gone: bool = False) -> PushResult:
    """``member_gone``: the call was about one member, and its 404 is known not to be the audience's."""
    if member_gone and isinstance(error, NotFoundError):
        return PushResult(key, Outcome.GONE, reason=str(error))
    if isinstance(error, TransientError | AuthError):
        return PushResult(key, Outcome.RETRY_LATER, reason=str(error))
    return PushResult(key, Outcome.REJECTED, reason=str(error))


@dataclass
class PushPlan:
    emails: dict[str, EmailPlan] = field(default_factory=dict)
    rejected: dict[str, PushResult] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    actions: dict[str, Action] = field(default_factory=dict)

    @classmethod
    def build(cls, changes: Sequence[Change], purposes: dict[str, Construct]) -> PushPlan:
        plan = cls()
        # Audience unsubscribes first: a subscribe of the same member in the same push then meets them.
        for change in sorted(changes, key=lambda c: not _leaves_audience(c, purposes)):
            plan.actions[change.key] = change.action
            problem = plan._add(change, purposes)
            if problem is not None:
                plan.rejected[change.key] = PushResult(change.key, Outcome.REJECTED, reason=problem)
        return plan

    def _add(self, change: Change, purposes: dict[str, Construct]) -> str | None:
        try:
            email = normalise_email(change.email)
        except InvalidEmailError as error:
            return f"email: {error}"
        entry = self.emails.setdefault(email, EmailPlan(email))
        if change.action is Action.ERASE:
            entry.erase = True
            entry.erase_keys.append(change.key)
            return None
        if change.action in (Action.TAG, Action.UNTAG):
            if not change.tag:
                return "tag: a TAG/UNTAG change needs a tag name"
            entry.tags[change.tag] = change.action is Action.TAG
            entry.tag_keys.setdefault(change.tag, []).append(change.key)
            return None
        construct = purposes.get(change.purpose or "")
        if construct is None:
            return f"purpose: {change.purpose!r} is not mapped to Mailchimp (SYNC_MAILCHIMP__PURPOSES)"
        on = change.action is Action.SUBSCRIBE
        if on and entry.status == "unsubscribed":
            # R30: the same push takes the member off the audience, so no purpose there can be on.
            return "the same push unsubscribes this member from the audience (R30: restrictive side wins)"
        if on or construct.kind == "status":
            # A purpose is only mailable while the member is subscribed to the audience.
            entry.want_status("subscribed" if on else "unsubscribed")
            entry.member_keys.append(change.key)
            if on:
                entry.subscribe_keys.append(change.key)
        if construct.kind == "interest":
            entry.interests[construct.ref] = on
            if not on:
                entry.member_keys.append(change.key)
        elif construct.kind == "tag":
            entry.tags[construct.ref] = on
            entry.tag_keys.setdefault(construct.ref, []).append(change.key)
        elif construct.kind == "permission":
            entry.permissions[construct.ref] = on
            entry.permission_keys.append(change.key)
        return None

    def member_bodies(self) -> list[dict[str, Any]]:
        return [body for entry in self.emails.values() if (body := entry.body()) is not None]

    def member_for(self, email: str) -> dict[str, Any] | None:
        try:
            entry = self.emails.get(normalise_email(email))
        except InvalidEmailError:
            return None
        return entry.body() if entry else None

    def _member_entries(self, members: Iterable[dict[str, Any]]) -> list[EmailPlan]:
        return [self.emails[m["email_address"]] for m in members if m["email_address"] in self.emails]

    def fail_members(self, members: list[dict[str, Any]], error: ConnectorError) -> dict[str, PushResult]:
        return {
            key: failed_result(key, error)
            for entry in self._member_entries(members)
            for key in entry.member_keys
        }

    def answer_member(
        self, member: dict[str, Any], outcome: Outcome, reason: str, field_name: Any = None
    ) -> dict[str, PushResult]:
        where = f" (field {field_name})" if field_name else ""
        return {
            key: PushResult(key, outcome, reason=f"{reason}{where}")
            for entry in self._member_entries([member])
            for key in entry.member_keys
        }

    def mark_pending(self, members: list[dict[str, Any]], results: dict[str, PushResult]) -> None:
        """Subscribes that Mailchimp holds as `pending`: its own confirmation mail decides (R6, R23)."""
        for entry in self._member_entries(members):
            self.pending.update(key for key in entry.subscribe_keys if key not in results)

    def removes(self, key: str) -> bool:
        return self.actions.get(key) in REMOVALS

    def accepted(self, key: str) -> PushResult:
        if key in self.pending:
            return PushResult(
                key, Outcome.ACCEPTED, reason="member in compliance state", vendor_state="pending"
            )
        return PushResult(key, Outcome.ACCEPTED)

    def sent_after_member(self, results: dict[str, PushResult]) -> tuple[list[TagBatch], list[Call]]:
        """Tag batches and permission calls for members whose upsert did not fail.

        A member the batch refused or could not reach gets its tag and permission changes answered with
        the same outcome: they were not sent, and claiming them done would hide that.
        """
        adds: dict[str, dict[str, tuple[str, ...]]] = {}
        removes: dict[str, dict[str, tuple[str, ...]]] = {}
        calls: list[Call] = []
        for entry in self.emails.values():
            failed = next((results[key] for key in entry.member_keys if key in results), None)
            if failed is not None:
                side_keys = [*entry.permission_keys, *(k for keys in entry.tag_keys.values() for k in keys)]
                results.update(
                    {key: PushResult(key, failed.outcome, reason=failed.reason) for key in side_keys}
                )
                continue
            for tag, on in entry.tags.items():
                (adds if on else removes).setdefault(tag, {})[entry.email] = tuple(entry.tag_keys[tag])
            if entry.permissions:
                run = _permissions(entry.email, dict(entry.permissions))
                calls.append(Call(entry.email, tuple(entry.permission_keys), run))
        return tag_batches(adds, removes), calls

    def erasures(self) -> list[Call]:
        return [
            Call(entry.email, tuple(entry.erase_keys), _erase(entry.email))
            for entry in self.emails.values()
            if entry.erase
        ]


def _leaves_audience(change: Change, purposes: dict[str, Construct]) -> bool:
    construct = purposes.get(change.purpose or "")
    return change.action is Action.UNSUBSCRIBE and construct is not None and construct.kind == "status"


def tag_batches(
    adds: dict[str, dict[str, tuple[str, ...]]], removes: dict[str, dict[str, tuple[str, ...]]]
) -> list[TagBatch]:
    """Per tag, as few calls as the 500-address limits allow: the n-th call carries the n-th slice of both."""
    batches: list[TagBatch] = []
    for tag in sorted({*adds, *removes}):
        add, remove = list((adds.get(tag) or {}).items()), list((removes.get(tag) or {}).items())
        for start in range(0, max(len(add), len(remove)), SEGMENT_BATCH_MAX):
            end = start + SEGMENT_BATCH_MAX
            batches.append(TagBatch(tag, dict(add[start:end]), dict(remove[start:end])))
    return batches


def _permissions(email: str, permissions: dict[str, bool]) -> CallFn:
    return lambda client: client.update_permissions(email, permissions)


def _erase(email: str) -> CallFn:
    return lambda client: client.delete_permanently(email)
