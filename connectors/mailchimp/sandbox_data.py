"""The Mailchimp sandbox's audience: members as the Marketing API v3 shows them, and its write rules.

Member fields and enums follow the official spec (marketing 3.0.55, ``ListMembers2``); the rules the spec
does not state come from VENDOR-APIS.md section 1: an unsubscribed or cleaned member cannot be set to
``subscribed`` ("Member In Compliance State"), and a permanently deleted address cannot be re-added
("Forgotten Email Not Subscribed").
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from connectors.mailchimp.client import PAGE_MAX
from connectors.mailchimp.mapping import (
    MEMBER_STATUSES,
    WRITABLE_STATUSES,
    format_time,
    parse_time,
    subscriber_hash,
)
from connectors.sandbox import Clock
from sync_worker.identity import InvalidEmailError, normalise_email

LIST_ID = "b1f2e3d4c5"
INTEREST_CATEGORY_ID = "c7d8e9f0a1"
INTERESTS = {"9143cf3bd1": "Promotions", "3a2b1c0d9e": "Product news"}
PERMISSIONS = {"a1b2c3d4e5": "Email", "f6e5d4c3b2": "Customized online advertising"}
ADMIN_UNSUBSCRIBE = "N/A (Unsubscribed by an admin)"


class MemberError(ValueError):
    """A write Mailchimp refuses: ``title`` as in its problem+json body, ``field`` when one is at fault."""

    def __init__(self, title: str, detail: str, field: str = "", status: int = 400) -> None:
        self.title = title
        self.detail = detail
        self.field = field
        self.status = status
        super().__init__(detail)


def _stable_id(*parts: str, length: int = 10) -> str:
    return hashlib.sha1("/".join(parts).encode(), usedforsecurity=False).hexdigest()[:length]


@dataclass
class Audience:
    clock: Clock
    list_id: str = LIST_ID
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # subscriber hash -> member
    forgotten: set[str] = field(default_factory=set)  # hashes removed with delete-permanent
    tag_ids: dict[str, int] = field(default_factory=dict)
    _web_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(101))

    def find(self, ref: str) -> dict[str, Any] | None:
        """Members are addressed by subscriber hash, or by the address itself (as Mailchimp allows)."""
        return self.members.get(ref) or self.members.get(subscriber_hash(ref))

    def _new_member(self, email: str, stamp: str) -> dict[str, Any]:
        hashed = subscriber_hash(email)
        return {
            "id": hashed,
            "email_address": email,
            "unique_email_id": _stable_id("unique", hashed),
            "contact_id": _stable_id("contact", hashed, length=32),
            "full_name": "",
            "web_id": next(self._web_ids),
            "email_type": "html",
            "status": "subscribed",
            "merge_fields": {"FNAME": "", "LNAME": ""},
            "interests": dict.fromkeys(INTERESTS, False),
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": "",
            "timestamp_signup": "",
            "ip_opt": "",
            "timestamp_opt": "",
            "member_rating": 2,
            "last_changed": stamp,
            "language": "",
            "vip": False,
            "email_client": "",
            "location": {
                "latitude": 0,
                "longitude": 0,
                "gmtoff": 0,
                "dstoff": 0,
                "country_code": "",
                "timezone": "",
            },
            "marketing_permissions": [
                {"marketing_permission_id": pid, "text": text, "enabled": False}
                for pid, text in PERMISSIONS.items()
            ],
            "source": "API - Generic",
            "tags_count": 0,
            "tags": [],
            "list_id": self.list_id,
        }

    def upsert(
        self, body: dict[str, Any], *, update_existing: bool, status_key: str = "status"
    ) -> tuple[dict[str, Any], bool]:
        """Create or update one member from a write body; returns (member, created)."""
        raw = body.get("email_address")
        if not isinstance(raw, str):
            raise MemberError(
                "Invalid Resource", "The resource submitted could not be validated.", "email_address"
            )
        try:
            email = normalise_email(raw)
        except InvalidEmailError as error:
            raise MemberError(
                "Invalid Resource",
                f"{raw} looks fake or invalid, please enter a real email address.",
                "email_address",
            ) from error
        status = body.get(status_key) or body.get("status")
        if status is not None and status not in WRITABLE_STATUSES:
            raise MemberError("Invalid Resource", f"The status {status!r} is not allowed.", "status")
        hashed = subscriber_hash(email)
        stamp = format_time(self.clock.now())
        member = self.members.get(hashed)
        created = member is None or member["status"] == "archived"
        if member is None:
            if hashed in self.forgotten:
                raise MemberError(
                    "Forgotten Email Not Subscribed",
                    f"{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list.",
                )
            if status is None:
                raise MemberError(
                    "Invalid Resource", "The resource submitted could not be validated.", "status"
                )
            member = self._new_member(email, stamp)
            member["status"] = status
            member["timestamp_signup"] = stamp
            member["timestamp_opt"] = stamp if status == "subscribed" else ""
        elif not update_existing and member["status"] != "archived":
            raise MemberError(
                "Member Exists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        if (
            status is not None
            and not created
            and status == "subscribed"
            and member["status"] in ("unsubscribed", "cleaned")
        ):
            raise MemberError(
                "Member In Compliance State",
                f"{email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed.",
            )
        self._apply(member, body, status, stamp)
        self.members[hashed] = member
        return member, created

    def _apply(self, member: dict[str, Any], body: dict[str, Any], status: str | None, stamp: str) -> None:
        before = repr(member)
        for name, value in (body.get("interests") or {}).items():
            if name not in INTERESTS:
                raise MemberError("Invalid Resource", f"Invalid interest ID: '{name}'.", "interests")
            member["interests"][name] = bool(value)
        for perm in body.get("marketing_permissions") or []:
            pid = perm.get("marketing_permission_id")
            match = next(
                (p for p in member["marketing_permissions"] if p["marketing_permission_id"] == pid), None
            )
            if match is None:
                raise MemberError(
                    "Invalid Resource", f"Invalid marketing permission ID: '{pid}'.", "marketing_permissions"
                )
            match["enabled"] = bool(perm.get("enabled"))
        for name in (
            "merge_fields",
            "language",
            "vip",
            "email_type",
            "ip_signup",
            "ip_opt",
            "timestamp_signup",
            "timestamp_opt",
        ):
            if name in body:
                member[name] = body[name] if name != "merge_fields" else {**member[name], **body[name]}
        if status is not None and status != member["status"]:
            self.set_member_status(member, status, ADMIN_UNSUBSCRIBE if status == "unsubscribed" else None)
        if repr(member) != before:
            member["last_changed"] = stamp

    def set_member_status(self, member: dict[str, Any], status: str, reason: str | None = None) -> None:
        if status not in MEMBER_STATUSES:
            raise ValueError(f"unknown member status {status!r}")
        stamp = format_time(self.clock.now())
        member["status"] = status
        member["last_changed"] = stamp
        if status == "subscribed":
            member["timestamp_opt"] = stamp
        if status == "unsubscribed":
            member["unsubscribe_reason"] = reason or ADMIN_UNSUBSCRIBE
        else:
            member.pop("unsubscribe_reason", None)

    def set_tags(self, member: dict[str, Any], tags: list[dict[str, Any]]) -> None:
        names = [t["name"] for t in member["tags"]]
        for tag in tags:
            name = tag.get("name")
            if not isinstance(name, str) or not name or tag.get("status") not in ("active", "inactive"):
                raise MemberError(
                    "Invalid Resource", "The resource submitted could not be validated.", "tags"
                )
            if tag["status"] == "active" and name not in names:
                names.append(name)
            elif tag["status"] == "inactive" and name in names:
                names.remove(name)
        if names != [t["name"] for t in member["tags"]]:
            member["tags"] = [
                {"id": self.tag_ids.setdefault(n, 1000 + len(self.tag_ids)), "name": n} for n in names
            ]
            member["tags_count"] = len(names)
            member["last_changed"] = format_time(self.clock.now())

    def forget(self, member: dict[str, Any]) -> None:
        del self.members[member["id"]]
        self.forgotten.add(member["id"])

    def query(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Members matching the list filters the connector and the SDK use, in the requested order."""
        found = [
            m
            for m in self.members.values()
            if m["status"] != "archived" or params.get("status") == "archived"
        ]
        if "status" in params:
            found = [m for m in found if m["status"] == params["status"]]
        for name, after in (("since_last_changed", True), ("before_last_changed", False)):
            if name in params:
                try:
                    bound = parse_time(params[name])
                except (TypeError, ValueError) as error:
                    raise MemberError("Invalid Resource", f"{name}: not an ISO 8601 time", name) from error
                if bound is not None:
                    # Stored stamps are all in format_time's UTC form, so strings compare as times.
                    edge = format_time(bound)
                    found = [
                        m for m in found if (m["last_changed"] > edge if after else m["last_changed"] < edge)
                    ]
        sort_field = params.get("sort_field")
        if sort_field:
            # Equal stamps keep insertion order, so offsets inside one second are stable.
            found.sort(key=lambda m: m.get(sort_field) or "", reverse=params.get("sort_dir") == "DESC")
        return found


def page_window(params: dict[str, str]) -> tuple[int, int]:
    """``count`` (default 10, at most 1000) and ``offset`` of a collection request, as Mailchimp checks them."""
    try:
        count, offset = int(params.get("count", 10)), int(params.get("offset", 0))
    except ValueError as error:
        raise MemberError("Invalid Resource", "count and offset must be integers.") from error
    if not 0 <= count <= PAGE_MAX or offset < 0:
        raise MemberError(
            "Invalid Resource", f"count must be between 0 and {PAGE_MAX}; offset must not be negative."
        )
    return count, offset


def select_fields(body: Any, fields: str | None, exclude: str | None) -> Any:
    """Mailchimp's ``fields`` / ``exclude_fields``: comma-separated dot paths, applied inside lists too."""
    if fields:
        body = _pick(body, [f.strip().split(".") for f in fields.split(",") if f.strip()])
    if exclude:
        body = copy.deepcopy(body)  # nested dicts are the audience's own: never edit them in place
    for path in (exclude or "").split(","):
        if path.strip():
            _drop(body, path.strip().split("."))
    return body


def _pick(value: Any, paths: list[list[str]]) -> Any:
    if isinstance(value, list):
        return [_pick(item, paths) for item in value]
    if not isinstance(value, dict) or any(not path for path in paths):
        return value
    picked = {}
    for head in dict.fromkeys(path[0] for path in paths):
        if head in value:
            picked[head] = _pick(value[head], [path[1:] for path in paths if path[0] == head])
    return picked


def _drop(value: Any, path: list[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _drop(item, path)
    elif isinstance(value, dict) and path[0] in value:
        if len(path) == 1:
            del value[path[0]]
        else:
            _drop(value[path[0]], path[1:])
