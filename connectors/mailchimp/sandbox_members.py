"""The Mailchimp sandbox's member routes: list, read, create, update, archive and erase audience members.

``GET``/``POST /lists/{id}/members``, ``GET``/``PUT``/``PATCH``/``DELETE /lists/{id}/members/{ref}`` (``ref``
the e-mail or its subscriber hash), the batch upsert ``POST /lists/{id}`` with its 200-with-``errors``
partial failures, the member's ``tags``, and ``actions/delete-permanent``. The audience holds the state;
these routes give it Mailchimp's request and answer shapes.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.mailchimp.client import BATCH_MAX
from connectors.mailchimp.sandbox_data import Audience, MemberError, page_window, select_fields
from connectors.mailchimp.sandbox_segments import ReadJson


class Members:
    def __init__(self, audience: Audience, read_json: ReadJson) -> None:
        self.audience = audience
        self.read_json = read_json

    def _ref(self, request: Request) -> dict[str, Any]:
        member = self.audience.find(request.path_params["ref"])
        if member is None:
            raise MemberError("Resource Not Found", "The requested resource could not be found.", status=404)
        return member

    async def listing(self, request: Request) -> Response:
        params = dict(request.query_params)
        count, offset = page_window(params)
        found = self.audience.query(params)
        body = {
            "members": [dict(m, _links=[]) for m in found[offset : offset + count]],
            "list_id": self.audience.list_id,
            "total_items": len(found),
            "_links": [],
        }
        return JSONResponse(select_fields(body, params.get("fields"), params.get("exclude_fields")))

    async def create(self, request: Request) -> Response:
        member, _ = self.audience.upsert(await self.read_json(request), update_existing=False)
        return JSONResponse(member)

    async def member(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(self._ref(request))
        if request.method == "DELETE":
            member = self._ref(request)
            self.audience.set_member_status(member, "archived")
            return Response(status_code=204)
        body = await self.read_json(request)
        if request.method == "PATCH":
            body = {**body, "email_address": self._ref(request)["email_address"]}
        status_key = (
            "status_if_new"
            if request.method == "PUT" and self.audience.find(request.path_params["ref"]) is None
            else "status"
        )
        member, _ = self.audience.upsert(body, update_existing=True, status_key=status_key)
        return JSONResponse(member)

    async def batch(self, request: Request) -> Response:
        body = await self.read_json(request)
        members = body.get("members")
        if not isinstance(members, list):
            raise MemberError("Invalid Resource", "The resource submitted could not be validated.")
        if len(members) > BATCH_MAX:
            raise MemberError("Invalid Resource", f"You can only add up to {BATCH_MAX} members per batch.")
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        for item in members:
            try:
                member, new = self.audience.upsert(
                    dict(item), update_existing=bool(body.get("update_existing"))
                )
            except MemberError as error:
                errors.append(
                    {
                        "email_address": str(item.get("email_address", "")) if isinstance(item, dict) else "",
                        "error": error.detail,
                        "error_code": "ERROR_CONTACT_EXISTS"
                        if error.title == "Member Exists"
                        else "ERROR_GENERIC",
                        "field": error.field,
                        "field_message": error.title if error.field else "",
                    }
                )
                continue
            (created if new else updated).append(dict(member, _links=[]))
        return JSONResponse(
            {
                "new_members": created,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(created),
                "total_updated": len(updated),
                "error_count": len(errors),
                "_links": [],
            }
        )

    async def tags(self, request: Request) -> Response:
        member = self._ref(request)
        if request.method == "GET":
            return JSONResponse(
                {
                    "tags": [
                        {"id": t["id"], "name": t["name"], "date_added": member["last_changed"]}
                        for t in member["tags"]
                    ],
                    "total_items": len(member["tags"]),
                    "_links": [],
                }
            )
        body = await self.read_json(request)
        tags = body.get("tags")
        if not isinstance(tags, list):
            raise MemberError("Invalid Resource", "The resource submitted could not be validated.", "tags")
        self.audience.set_tags(member, tags)
        return Response(status_code=204)

    async def forget(self, request: Request) -> Response:
        self.audience.forget(self._ref(request))
        return Response(status_code=204)
