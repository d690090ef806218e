"""The Mailchimp sandbox's static segments, which are the audience's tags.

In Mailchimp a tag is a static segment of the same name: ``GET /lists/{id}/segments?type=static`` lists the
tags, ``POST /lists/{id}/segments`` with ``static_segment`` creates one, and
``POST /lists/{id}/segments/{segment_id}`` adds and removes up to 500 addresses each (VENDOR-APIS.md 1.3;
shapes from the official spec, marketing 3.0.55). Membership is the members' ``tags``, so the per-member
tags endpoint and these routes see one state. Addresses that are not in the audience are left out and
reported in ``errors``, grouped by reason as the spec's ``errors[{email_addresses, error}]`` shape has it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.mailchimp.client import SEGMENT_BATCH_MAX
from connectors.mailchimp.mapping import format_time
from connectors.mailchimp.sandbox_data import Audience, MemberError, page_window, select_fields
from sync_worker.identity import InvalidEmailError, normalise_email

ReadJson = Callable[[Request], Awaitable[dict[str, Any]]]
NOT_IN_AUDIENCE = "Email address is not a member of this list"


class Segments:
    def __init__(self, audience: Audience, read_json: ReadJson) -> None:
        self.audience = audience
        self.read_json = read_json
        self.created_at: dict[int, str] = {}  # segment id -> when it was created (or first used as a tag)

    def _segment(self, name: str, segment_id: int) -> dict[str, Any]:
        members = sum(
            1 for m in self.audience.members.values() if any(t["id"] == segment_id for t in m["tags"])
        )
        stamp = self.created_at.setdefault(segment_id, format_time(self.audience.clock.now()))
        return {
            "id": segment_id,
            "name": name,
            "member_count": members,
            "type": "static",
            "created_at": stamp,
            "updated_at": stamp,
            "options": {"match": "any", "conditions": []},
            "list_id": self.audience.list_id,
            "_links": [],
        }

    def _name_of(self, request: Request) -> tuple[str, int]:
        try:
            segment_id = int(request.path_params["segment_id"])
        except ValueError:
            segment_id = -1
        name = next((n for n, i in self.audience.tag_ids.items() if i == segment_id), None)
        if name is None:
            raise MemberError("Resource Not Found", "The requested resource could not be found.", status=404)
        return name, segment_id

    async def listing(self, request: Request) -> Response:
        params = dict(request.query_params)
        count, offset = page_window(params)
        # Every segment here is static; asking for saved or fuzzy ones finds none.
        found = [] if params.get("type", "static") != "static" else sorted(self.audience.tag_ids.items())
        body = {
            "segments": [self._segment(n, i) for n, i in found[offset : offset + count]],
            "list_id": self.audience.list_id,
            "total_items": len(found),
            "_links": [],
        }
        return JSONResponse(select_fields(body, params.get("fields"), params.get("exclude_fields")))

    async def create(self, request: Request) -> Response:
        body = await self.read_json(request)
        name, emails = body.get("name"), body.get("static_segment", [])
        if not isinstance(name, str) or not name.strip() or not isinstance(emails, list):
            raise MemberError("Invalid Resource", "The resource submitted could not be validated.", "name")
        if name in self.audience.tag_ids:
            # Tag names are unique in an audience: a second segment of one name could not be a tag.
            raise MemberError("Invalid Resource", f"A tag or segment named {name!r} already exists.", "name")
        segment_id = self.audience.tag_ids.setdefault(name, 1000 + len(self.audience.tag_ids))
        self._apply(name, [str(e) for e in emails], "active")
        return JSONResponse(self._segment(name, segment_id))

    async def members(self, request: Request) -> Response:
        name, _ = self._name_of(request)
        body = await self.read_json(request)
        add, remove = body.get("members_to_add", []), body.get("members_to_remove", [])
        if not isinstance(add, list) or not isinstance(remove, list):
            raise MemberError("Invalid Resource", "The resource submitted could not be validated.")
        if len(add) > SEGMENT_BATCH_MAX or len(remove) > SEGMENT_BATCH_MAX:
            raise MemberError(
                "Invalid Resource", f"You can only add or remove up to {SEGMENT_BATCH_MAX} members at a time."
            )
        added, add_errors = self._apply(name, [str(e) for e in add], "active")
        removed, remove_errors = self._apply(name, [str(e) for e in remove], "inactive")
        errors = [
            {"email_addresses": found, "error": NOT_IN_AUDIENCE}
            for found in (add_errors + remove_errors,)
            if found
        ]
        return JSONResponse(
            {
                "members_added": [dict(m, _links=[]) for m in added],
                "members_removed": [dict(m, _links=[]) for m in removed],
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": sum(len(e["email_addresses"]) for e in errors),
                "_links": [],
            }
        )

    def _apply(self, name: str, emails: list[str], status: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Sets or clears the tag on each address; returns the members changed and the addresses not found."""
        changed: list[dict[str, Any]] = []
        missing: list[str] = []
        for email in emails:
            member = _find(self.audience, email)
            if member is None:
                missing.append(email)
                continue
            before = [t["name"] for t in member["tags"]]
            self.audience.set_tags(member, [{"name": name, "status": status}])
            if [t["name"] for t in member["tags"]] != before:
                changed.append(member)
        return changed, missing


def _find(audience: Audience, email: str) -> dict[str, Any] | None:
    try:
        return audience.find(normalise_email(email))
    except InvalidEmailError:
        return None
