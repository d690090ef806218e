"""The Klaviyo sandbox's state: profiles, lists, and their JSON:API rendering (shapes from the 2026-07-15 spec).

Also Klaviyo's filter mini-language, as far as the sandbox serves it: ``greater-than``, ``less-than``,
``greater-or-equal``, ``less-or-equal``, ``equals`` and ``any`` over the fields each endpoint allows.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PROFILE_FILTERS = {
    "id": {"any", "equals"},
    "email": {"any", "equals"},
    "external_id": {"any", "equals"},
    "created": {"greater-than", "less-than"},
    "updated": {"greater-than", "less-than"},
}
LIST_MEMBER_FILTERS = {
    "email": {"any", "equals"},
    "joined_group_at": {"greater-than", "less-than", "greater-or-equal", "less-or-equal"},
}
PROFILE_SORTS = {"created", "email", "id", "updated"}
_FILTER = re.compile(r"^(?P<op>[a-z-]+)\((?P<field>[a-z_.]+),(?P<value>.+)\)$")


class FilterError(ValueError):
    """A filter Klaviyo would refuse; the message is the error's ``detail``."""


def stamp(moment: datetime) -> str:
    """Klaviyo's timestamp style: ``2024-05-01T08:00:00+00:00``."""
    return moment.isoformat()


@dataclass
class Profile:
    id: str
    email: str
    created: datetime
    updated: datetime
    first_name: str | None = None
    last_name: str | None = None
    external_id: str | None = None
    consent: str = "NEVER_SUBSCRIBED"
    consent_timestamp: datetime | None = None
    method: str | None = None
    method_detail: str | None = None
    double_optin: bool | None = None
    suppression: dict[str, datetime] = field(default_factory=dict)  # reason → timestamp
    list_suppressions: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # list id → (reason, at)

    def marketing(self) -> dict[str, Any]:
        return {
            "can_receive_email_marketing": self.consent == "SUBSCRIBED" and not self.suppression,
            "consent": self.consent,
            "consent_timestamp": stamp(self.consent_timestamp) if self.consent_timestamp else None,
            "last_updated": stamp(self.updated),
            "method": self.method,
            "method_detail": self.method_detail or "",
            "custom_method_detail": None,
            "double_optin": self.double_optin,
            "suppression": [
                {"reason": r, "timestamp": stamp(t)} for r, t in sorted(self.suppression.items())
            ],
            "list_suppressions": [
                {"list_id": lid, "reason": reason, "timestamp": stamp(at)}
                for lid, (reason, at) in sorted(self.list_suppressions.items())
            ],
        }

    def attributes(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "phone_number": None,
            "external_id": self.external_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "organization": None,
            "locale": None,
            "title": None,
            "image": None,
            "created": stamp(self.created),
            "updated": stamp(self.updated),
            "last_event_date": None,
            "location": {},
            "properties": {},
        }

    def render(
        self, base: str, *, subscriptions: bool, fields: set[str] | None, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        attributes = {**self.attributes(), **(extra or {})}
        if fields:
            attributes = {k: v for k, v in attributes.items() if k in fields}
        if subscriptions:
            attributes["subscriptions"] = {"email": {"marketing": self.marketing()}}
        return {
            "type": "profile",
            "id": self.id,
            "attributes": attributes,
            "relationships": {
                "lists": {"links": _rel_links(base, self.id, "lists")},
                "segments": {"links": _rel_links(base, self.id, "segments")},
            },
            "links": {"self": f"{base}/api/profiles/{self.id}/"},
        }


def _rel_links(base: str, profile_id: str, name: str) -> dict[str, str]:
    return {
        "self": f"{base}/api/profiles/{profile_id}/relationships/{name}/",
        "related": f"{base}/api/profiles/{profile_id}/{name}/",
    }


def parse_filter(text: str | None, allowed: dict[str, set[str]]) -> list[Callable[[dict[str, Any]], bool]]:
    """Klaviyo's ``op(field,value)`` terms, joined by commas at top level (``and`` is implied)."""
    if not text:
        return []
    checks = []
    for term in _split_terms(text):
        match = _FILTER.match(term.strip())
        if not match:
            raise FilterError(f"Invalid filter provided: {term!r}")
        op, name, raw = match["op"], match["field"], match["value"]
        if name not in allowed:
            raise FilterError(f"'{name}' is not a valid field for the resource")
        if op not in allowed[name]:
            raise FilterError(f"'{op}' is not a valid operator for '{name}'")
        checks.append(_check(op, name, _value(raw, op)))
    return checks


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses, brackets and quotes."""
    terms, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote and text[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _value(raw: str, op: str) -> Any:
    raw = raw.strip()
    if op == "any":
        try:
            values = json.loads(raw.replace("'", '"'))
        except ValueError:
            raise FilterError(f"Invalid list in filter: {raw[:60]!r}") from None
        if not isinstance(values, list) or len(values) > 100:
            raise FilterError("'any' takes a list of at most 100 values")
        return values
    if raw[:1] in "\"'":
        return raw[1:-1]
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"Invalid date-time in filter: {raw!r}") from None


def _check(op: str, name: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    def compare(row: dict[str, Any]) -> bool:
        have = row.get(name)
        if op == "equals":
            return bool(have == value or (isinstance(have, str) and have.lower() == str(value).lower()))
        if op == "any":
            lowered = {str(v).lower() for v in value}
            return isinstance(have, str) and have.lower() in lowered
        if have is None:
            return False
        if op == "greater-than":
            return bool(have > value)
        if op == "less-than":
            return bool(have < value)
        if op == "greater-or-equal":
            return bool(have >= value)
        return bool(have <= value)

    return compare


def encode_cursor(position: list[str]) -> str:
    """An opaque keyset cursor: the sort key and id of the last item served."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> list[str]:
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except ValueError:
        raise FilterError("Invalid page cursor") from None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise FilterError("Invalid page cursor")
    return values
