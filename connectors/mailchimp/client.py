"""The Mailchimp Marketing API v3 calls the connector makes, through the shared VendorHTTP.

Error bodies are application/problem+json (``type, title, status, detail, instance``); ``describe`` is the
one place they are read, so every ConnectorError carries Mailchimp's own title and detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from connectors.errors import NotFoundError
from connectors.http import VendorHTTP, error_body
from connectors.mailchimp.mapping import format_time, subscriber_hash

PAGE_MAX = 1000  # `count` maximum on GET /lists/{id}/members
BATCH_MAX = 500  # members per POST /lists/{id}
SEGMENT_BATCH_MAX = 500  # addresses in each of members_to_add / members_to_remove of a static segment
MAX_CONNECTIONS = 10  # simultaneous connections per API key; the 11th gets a 429


def describe(response: httpx.Response) -> str:
    """Mailchimp's reason for a failed response: ``title: detail`` from its problem+json body."""
    body = error_body(response)
    if isinstance(body, str):
        return body
    title = body.get("title") or f"HTTP {response.status_code}"
    detail = body.get("detail")
    return f"{title}: {detail}" if detail else str(title)


class MailchimpClient:
    def __init__(self, http: VendorHTTP, list_id: str) -> None:
        self.http = http
        self.list_id = list_id

    def _member_path(self, email: str) -> str:
        return f"/lists/{self.list_id}/members/{subscriber_hash(email)}"

    async def audience_exists(self) -> bool:
        """Whether the audience (list) is there: a member path answers 404 for a missing audience too."""
        try:
            await self.http.request("GET", f"/lists/{self.list_id}", params={"fields": "id"})
        except NotFoundError:
            return False
        return True

    async def list_members(
        self, *, count: int, offset: int = 0, since_last_changed: datetime | None = None
    ) -> dict[str, Any]:
        # Sorted by last_changed ascending, so every page can checkpoint (the cursor only moves forward).
        params: dict[str, str | int] = {
            "count": count,
            "offset": offset,
            "sort_field": "last_changed",
            "sort_dir": "ASC",
        }
        if since_last_changed is not None:
            params["since_last_changed"] = format_time(since_last_changed)
        response = await self.http.request("GET", f"/lists/{self.list_id}/members", params=params)
        body: dict[str, Any] = response.json()
        return body

    async def batch_members(self, members: list[dict[str, Any]]) -> dict[str, Any]:
        """Batch subscribe/unsubscribe: 200 even when some members fail (their reasons are in ``errors``)."""
        response = await self.http.request(
            "POST", f"/lists/{self.list_id}", json={"members": members, "update_existing": True}
        )
        body: dict[str, Any] = response.json()
        return body

    async def static_segments(self) -> dict[str, int]:
        """Every static segment of the audience by name: Mailchimp's tags are its static segments."""
        found: dict[str, int] = {}
        offset = 0
        while True:
            params = {
                "type": "static",
                "count": PAGE_MAX,
                "offset": offset,
                "fields": "segments.id,segments.name",
            }
            response = await self.http.request("GET", f"/lists/{self.list_id}/segments", params=params)
            segments = response.json().get("segments") or []
            found.update({str(s["name"]): int(s["id"]) for s in segments})
            if len(segments) < PAGE_MAX:
                return found
            offset += len(segments)

    async def create_static_segment(self, name: str) -> int:
        """A new, empty static segment, which is a tag of that name."""
        body = {"name": name, "static_segment": []}
        response = await self.http.request("POST", f"/lists/{self.list_id}/segments", json=body)
        return int(response.json()["id"])

    async def update_segment(self, segment_id: int, add: list[str], remove: list[str]) -> dict[str, Any]:
        """Adds and removes up to 500 addresses each; 200 with per-address ``errors`` for those refused."""
        body: dict[str, list[str]] = {}
        if add:
            body["members_to_add"] = add
        if remove:
            body["members_to_remove"] = remove
        response = await self.http.request("POST", f"/lists/{self.list_id}/segments/{segment_id}", json=body)
        result: dict[str, Any] = response.json()
        return result

    async def update_permissions(self, email: str, permissions: Mapping[str, bool]) -> None:
        body = {
            "marketing_permissions": [
                {"marketing_permission_id": pid, "enabled": on} for pid, on in permissions.items()
            ]
        }
        await self.http.request("PATCH", self._member_path(email), json=body)

    async def delete_permanently(self, email: str) -> None:
        await self.http.request("POST", f"{self._member_path(email)}/actions/delete-permanent")

    async def aclose(self) -> None:
        await self.http.aclose()
