"""The Klaviyo connector: pulls profiles with their email consent and list memberships, pushes jobs.

Klaviyo's subscription jobs and list calls answer 202/204 with no per-item result, so an accepted push
is ``verify_on_pull``: the outbox keeps it open until a pull shows the vendor holds it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx

from config.klaviyo import KlaviyoSettings
from config.settings import Settings
from connectors.assembly import ClockSource, Now, now_of, utc_now, vendor_section
from connectors.base import (
    Action,
    Capabilities,
    Change,
    ContactRecord,
    Outcome,
    Page,
    PushResult,
    RecordError,
    StreamInfo,
)
from connectors.errors import AuthError, ConnectorError, RejectedError, TransientError
from connectors.fields import log_skipped
from connectors.http import RetryPolicy
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.mapping import (
    SYSTEM,
    PurposeMap,
    after_filter,
    email_filter,
    profile_stamp,
    rejected_indices,
    subscribe_job,
    to_contact,
    unsubscribe_job,
)
from connectors.pagination import Watermark, follow_tokens
from sync_worker.identity import InvalidEmailError, normalise_email
from sync_worker.logs import get_logger

SUBSCRIBE_MAX = 1000
UNSUBSCRIBE_MAX = 100
LIST_MAX = 1000
CUSTOM_SOURCE = "sync-worker"
SUBSCRIBE_PATH = "/api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE_PATH = "/api/profile-subscription-bulk-delete-jobs"
JOB_ITEM = "/data/attributes/profiles/data/"  # where a job item's index sits in an error pointer
LIST_ITEM = "/data/"
JOINS = "joins:"  # one stream per list purpose: ``joins:promotions`` reads who joined that list

log = get_logger(connector=SYSTEM)


class KlaviyoConnector:
    name = SYSTEM

    def __init__(
        self,
        client: KlaviyoClient,
        purposes: PurposeMap,
        *,
        page_size: int = 100,
        clock: ClockSource = None,
        pull_fingerprint: str | None = None,
    ) -> None:
        self.client = client
        self.purposes = purposes
        self.page_size = page_size
        self.clock: Now = now_of(clock) or utc_now
        self.pull_fingerprint = pull_fingerprint

    @classmethod
    def from_settings(
        cls,
        settings: Settings | KlaviyoSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        clock: ClockSource = None,
    ) -> KlaviyoConnector:
        """Build from the root Settings or from KlaviyoSettings; ``clock`` gives the run's start time."""
        vendor = vendor_section(settings, KlaviyoSettings)
        if vendor.api_key is None:
            raise AuthError(SYSTEM, "SYNC_KLAVIYO__API_KEY is not set")
        client = KlaviyoClient(
            vendor.effective_base_url() or "https://a.klaviyo.com",
            vendor.api_key.get_secret_value(),
            vendor.revision,
            transport=transport,
            retry=retry,
        )
        return cls(
            client,
            PurposeMap.from_settings(vendor),
            page_size=vendor.page_size,
            clock=clock,
            pull_fingerprint=vendor.pull_fingerprint(),
        )

    @classmethod
    def purpose_targets(cls, settings: Settings | KlaviyoSettings) -> dict[str, str]:
        """Per purpose, what carries it in Klaviyo, in words (the Art. 30 export, R36)."""
        return PurposeMap.from_settings(vendor_section(settings, KlaviyoSettings)).targets()

    def capabilities(self) -> Capabilities:
        # The join feeds come first: on a first run each places its cursor at the vendor's clock before
        # the contacts stream reads every profile's memberships (``_pull_joins``).
        joins = tuple(
            StreamInfo(f"{JOINS}{purpose}", incremental=True, sorted=True, page_size_max=100)
            for purpose in sorted(self.purposes.list_purposes())
        )
        return Capabilities(
            system=SYSTEM,
            streams=(*joins, StreamInfo("contacts", incremental=True, sorted=True, page_size_max=100)),
            actions=frozenset({Action.SUBSCRIBE, Action.UNSUBSCRIBE, Action.ERASE}),
            purposes=self.purposes.purposes,
            batch_max={Action.SUBSCRIBE: SUBSCRIBE_MAX, Action.UNSUBSCRIBE: UNSUBSCRIBE_MAX, Action.ERASE: 1},
            max_concurrency=8,
            rate_limit="per endpoint: profiles and jobs 75/s 750/m, list changes 10/s 150/m, deletions 3/s 60/m",
            pull_fingerprint=self.pull_fingerprint,
        )

    async def pull(self, stream: str, since: str | None = None) -> AsyncIterator[Page]:
        """``contacts``: profiles changed after the watermark ``since``, oldest change first, with their
        list memberships. ``joins:<purpose>``: the profiles that joined that purpose's list since.

        Klaviyo's ``greater-than(updated, t)`` is open; asking from a second before the watermark and
        dropping the keys already seen there makes the boundary closed (nothing stamped ``t`` is lost),
        until the vendor's clock has left that second and the watermark is sealed (``Watermark.after``).
        """
        if stream.startswith(JOINS) and stream[len(JOINS) :] in self.purposes.list_purposes():
            async for page in self._pull_joins(stream, since):
                yield page
            return
        if stream != "contacts":
            raise KeyError(f"{SYSTEM} has no stream {stream!r}")
        mark = Watermark.decode(since)
        ceiling = self.clock()
        params: dict[str, str | int] = {
            "additional-fields[profile]": "subscriptions",
            "sort": "updated",
            "page[size]": self.page_size,
        }
        if (start := mark.after()) is not None:
            params["filter"] = after_filter("updated", start)
        vendor_now: datetime | None = None  # the vendor's clock at the first answer: it seals the watermark

        async def fetch(url: str | None) -> tuple[dict[str, Any], str | None]:
            nonlocal vendor_now
            body = await self.client.get_page(url or "/api/profiles", None if url else params)
            if url is None:
                vendor_now = self.client.profiles.vendor_date
            return body, (body.get("links") or {}).get("next")

        async for body in follow_tokens(SYSTEM, fetch):
            data = [item for item in body.get("data") or [] if isinstance(item, dict)]
            fresh = [item for item in data if mark.admits(*_key_stamp(item))]
            records, errors = await self._map(fresh)
            mark = mark.advance((_key_stamp(item) for item in fresh), ceiling)
            final = not (body.get("links") or {}).get("next")
            checkpoint = mark.sealed_by(vendor_now) if final else mark
            yield Page("contacts", records, errors, checkpoint=checkpoint.encode(), final=final)

    async def _pull_joins(self, stream: str, since: str | None) -> AsyncIterator[Page]:
        """Profiles that joined one purpose's list after the watermark ``since`` (by ``joined_group_at``),
        a page per hundred (the most one membership filter takes); the last page carries the cursor.

        Klaviyo's documents do not say whether joining a list moves a profile's ``updated``; this feed
        sees list grants either way (a list exit without an unsubscribe is seen by the next full pull).
        Its first pull reads no members: it places the cursor just before the vendor's clock, and the
        contacts stream, pulled after it, reads every earlier join as a membership.
        """
        list_id = self.purposes.list_purposes()[stream[len(JOINS) :]]
        mark = Watermark.decode(since)
        start = mark.after()
        if start is None:
            now = await self.client.vendor_now(list_id) or self.clock()
            placed = Watermark(now.replace(microsecond=0) - timedelta(seconds=1), sealed=True)
            yield Page(stream, (), (), checkpoint=placed.encode(), final=True)
            return
        ceiling = self.clock()
        members = await self.client.list_members(list_id, after_filter("joined_group_at", start))
        joined = {pid: at for pid, at in members.joined.items() if at is not None and mark.admits(pid, at)}
        # A joiner whose profile changed in or after the second it joined is read by the contacts stream,
        # in this run or already after that change, with the membership: only a join that left `updated`
        # behind is read here.
        ids = sorted(pid for pid, at in joined.items() if not _covered(members.updated.get(pid), at))
        size = min(self.page_size, 100)
        *earlier, last = [ids[i : i + size] for i in range(0, len(ids), size)] or [[]]
        for chunk in earlier:
            records, errors = await self._map(await self.client.profiles_by_id(chunk))
            yield Page(stream, records, errors, checkpoint=None, final=False)
        records, errors = await self._map(await self.client.profiles_by_id(last))
        mark = mark.advance(joined.items(), ceiling).sealed_by(members.vendor_now)
        yield Page(stream, records, errors, checkpoint=mark.encode(), final=True)

    async def _map(
        self, fresh: Sequence[dict[str, Any]]
    ) -> tuple[tuple[ContactRecord, ...], tuple[RecordError, ...]]:
        memberships = await self._memberships(fresh)
        records: list[ContactRecord] = []
        errors: list[RecordError] = []
        for item in fresh:
            mapped = to_contact(item, memberships.get(str(item.get("id")), {}), self.purposes)
            if isinstance(mapped, RecordError):
                log_skipped(log, mapped)
                errors.append(mapped)
            else:
                records.append(mapped)
        return tuple(records), tuple(errors)

    async def _memberships(self, profiles: Sequence[dict[str, Any]]) -> dict[str, dict[str, datetime | None]]:
        """profile id → {list purpose: joined_group_at} for this page's profiles, one call per list."""
        emails = [
            e for e in ((p.get("attributes") or {}).get("email") for p in profiles) if isinstance(e, str)
        ]
        lists = self.purposes.list_purposes()
        if not emails or not lists:
            return {}
        where = email_filter(emails)
        found = await asyncio.gather(*(self.client.list_members(lid, where) for lid in lists.values()))
        out: dict[str, dict[str, datetime | None]] = defaultdict(dict)
        for purpose, members in zip(lists, found, strict=True):
            for profile_id, joined in members.joined.items():
                out[profile_id][purpose] = joined
        return out

    async def push(self, changes: Sequence[Change]) -> list[PushResult]:
        results: list[PushResult] = []
        subscribes: dict[tuple[str | None, bool], list[Change]] = defaultdict(list)
        unsubscribes: list[Change] = []
        list_changes: dict[tuple[str, str], list[Change]] = defaultdict(list)  # (method, list id)
        erasures: list[Change] = []
        list_purposes = self.purposes.list_purposes()
        for raw in changes:
            try:
                change = _normalised(raw)
            except InvalidEmailError as error:
                results.append(_rejected(raw, f"invalid e-mail address: {error}"))
                continue
            if change.action is Action.ERASE:
                erasures.append(change)
            elif change.action in (Action.TAG, Action.UNTAG):
                results.append(_rejected(change, "Klaviyo profiles have no tags; map the purpose to a list"))
            elif change.purpose in self.purposes.consent_purposes:
                if change.action is Action.SUBSCRIBE:
                    key = (self.purposes.lists.get(change.purpose), change.consent_at is not None)
                    subscribes[key].append(change)
                else:
                    unsubscribes.append(change)  # R20: a consent-purpose withdrawal: the account-wide consent
            elif change.purpose in list_purposes:
                # A list purpose is left or joined through the list alone: an unsubscribe job with a list
                # would globally unsubscribe a profile not in that list (Klaviyo's warning, VENDOR-APIS 2.3).
                method = "POST" if change.action is Action.SUBSCRIBE else "DELETE"
                list_changes[(method, list_purposes[change.purpose])].append(change)
            else:
                results.append(_rejected(change, f"purpose {change.purpose!r} has no Klaviyo mapping"))

        # Withdrawals first, then grants, then erasures; batches within a phase run concurrently
        # (VendorHTTP bounds the concurrency, the endpoint budgets the rate).
        # Built lazily: if bad credentials stop one phase, the later phases are never started.
        withdrawals: list[Callable[[], Awaitable[list[PushResult]]]] = [
            partial(self._job, batch, UNSUBSCRIBE_PATH) for batch in _chunks(unsubscribes, UNSUBSCRIBE_MAX)
        ]
        grants: list[Callable[[], Awaitable[list[PushResult]]]] = [
            partial(self._job, batch, SUBSCRIBE_PATH, list_id, historical)
            for (list_id, historical), group in subscribes.items()
            for batch in _chunks(group, SUBSCRIBE_MAX)
        ]
        for (method, list_id), group in list_changes.items():
            phase = grants if method == "POST" else withdrawals
            phase.append(partial(self._list_change, method, list_id, group))
        erasing: list[Callable[[], Awaitable[list[PushResult]]]] = [
            partial(self._erase, change) for change in erasures
        ]
        for phase in (withdrawals, grants, erasing):
            for part in await asyncio.gather(*(start() for start in phase)):
                results += part
        log.info(
            "pushed",
            changes=len(changes),
            **{outcome.value: sum(r.outcome is outcome for r in results) for outcome in Outcome},
        )
        return results

    async def _job(
        self, batch: list[Change], path: str, list_id: str | None = None, historical: bool = False
    ) -> list[PushResult]:
        async def send(items: list[Change]) -> None:
            if path == SUBSCRIBE_PATH:
                profiles = [(c.email, c.consent_at if historical else None) for c in items]
                await self.client.post_job(path, subscribe_job(profiles, list_id, CUSTOM_SOURCE))
            else:
                await self.client.post_job(path, unsubscribe_job([c.email for c in items]))

        return await self._send_dropping(batch, send, JOB_ITEM)

    async def _send_dropping(
        self, batch: list[Change], send: Callable[[list[Change]], Awaitable[None]], item_pointer: str
    ) -> list[PushResult]:
        """Send a batch; when Klaviyo refuses it for some items (400 pointing at them), send the rest again.

        Klaviyo refuses a whole job or list call for one bad item; ``item_pointer`` is where an item's
        index sits in the error's ``source.pointer``.
        """
        results: list[PushResult] = []
        while batch:
            try:
                await send(batch)
            except RejectedError as error:
                bad = {i for i in rejected_indices(str(error), item_pointer) if i < len(batch)}
                if not bad:
                    return results + [_rejected(c, str(error)) for c in batch]
                results += [_rejected(batch[i], str(error)) for i in sorted(bad)]
                batch = [c for i, c in enumerate(batch) if i not in bad]
                continue
            except ConnectorError as error:
                return results + _failed(batch, error)
            return results + [_accepted(c) for c in batch]
        return results

    async def _list_change(self, method: str, list_id: str, group: list[Change]) -> list[PushResult]:
        results: list[PushResult] = []
        missing = sorted({c.email for c in group if not c.external_id})
        try:
            ids = await self.client.profile_ids(missing) if missing else {}
        except ConnectorError as error:
            return _failed(group, error)
        ready: list[tuple[Change, str]] = []
        for change in group:
            profile_id = change.external_id or ids.get(change.email)
            if profile_id:
                ready.append((change, profile_id))
            elif method == "DELETE":  # no profile, so not in the list: already what was asked
                results.append(PushResult(change.key, Outcome.ACCEPTED, reason="no Klaviyo profile"))
            else:  # joining a list needs a profile: create a bare one (no consent is written)
                try:
                    ids[change.email] = ids.get(change.email) or await self.client.create_profile(
                        change.email
                    )
                except ConnectorError as error:
                    results += _failed([change], error)
                    continue
                ready.append((change, ids[change.email]))
        profile_of = {change.key: profile_id for change, profile_id in ready}

        async def send(items: list[Change]) -> None:
            await self.client.change_list(method, list_id, [profile_of[c.key] for c in items])

        for batch in _chunks([c for c, _ in ready], LIST_MAX):
            results += await self._send_dropping(batch, send, LIST_ITEM)
        return results

    async def _erase(self, change: Change) -> list[PushResult]:
        async def send(_items: list[Change]) -> None:
            await self.client.request_deletion(change.email)

        return await self._send_dropping([change], send, JOB_ITEM)

    async def aclose(self) -> None:
        await self.client.aclose()


def _covered(updated: datetime | None, joined: datetime) -> bool:
    """Whether the contacts stream shows this join: the profile's ``updated`` is not older than it."""
    return updated is not None and updated >= joined


def _key_stamp(item: dict[str, Any]) -> tuple[str, datetime | None]:
    profile_id, stamp = profile_stamp(item)
    return str(profile_id), stamp


def _normalised(change: Change) -> Change:
    email = normalise_email(change.email)
    if email == change.email:
        return change
    return change._replace(email=email)


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def _accepted(change: Change) -> PushResult:
    return PushResult(change.key, Outcome.ACCEPTED, verify_on_pull=True)


def _rejected(change: Change, reason: str) -> PushResult:
    return PushResult(change.key, Outcome.REJECTED, reason=reason)


def _failed(batch: Sequence[Change], error: ConnectorError) -> list[PushResult]:
    if isinstance(error, AuthError):
        raise error  # bad credentials fail the whole push, never item by item
    outcome = Outcome.RETRY_LATER if isinstance(error, TransientError) else Outcome.REJECTED
    return [PushResult(c.key, outcome, reason=str(error)) for c in batch]
