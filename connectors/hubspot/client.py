"""HubSpot's HTTP calls: CRM contacts v3 and communication preferences v4, through VendorHTTP.

Every response error is read in one place (``describe``): HubSpot answers errors with
``{"status": "error", "message", "correlationId", "category", "errors": [...]}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from connectors.errors import ConnectorError
from connectors.http import RateBudget, RetryPolicy, Sleep, VendorHTTP, error_body, make_client
from connectors.hubspot.mapping import CONTACT_PROPERTIES, to_millis

SYSTEM = "hubspot"
CONTACTS = "/crm/v3/objects/contacts"
STATUSES = "/communication-preferences/v4/statuses"
EMAIL = {"channel": "EMAIL"}

JSON = dict[str, Any]


def describe(response: httpx.Response) -> str:
    """HubSpot's own reason for a failed response: category, message and field details."""
    body = error_body(response)
    if isinstance(body, str):
        return body
    parts = [str(body.get("category") or body.get("errorType") or f"HTTP {response.status_code}")]
    if body.get("message"):
        parts.append(str(body["message"]))
    details = [
        f"{detail.get('in', '')}: {detail.get('message', '')}".strip(": ")
        for detail in body.get("errors") or []
        if isinstance(detail, dict)
    ]
    if details:
        parts.append("; ".join(details))
    if body.get("correlationId"):
        parts.append(f"correlationId {body['correlationId']}")
    return " - ".join(parts)


class HubSpotClient:
    """Typed-enough wrappers over the endpoints the connector uses; bodies stay vendor JSON."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 4,
        requests_per_10s: int = 100,
        searches_per_second: int = 4,
        budget_clock: Callable[[], float] = time.monotonic,
        budget_sleep: Sleep = asyncio.sleep,
    ) -> None:
        client = make_client(
            base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            max_connections=concurrency,
            transport=transport,
        )

        def vendor_http(limit: int, period: float) -> VendorHTTP:
            budget = RateBudget([(limit, period)], clock=budget_clock, sleep=budget_sleep)
            return VendorHTTP(SYSTEM, client, describe, retry=retry, concurrency=concurrency, budget=budget)

        self.http = vendor_http(requests_per_10s, 10.0)
        # Search is exempt from the ten-secondly limit and has its own per-second one, so it gets its own
        # budget; both share one connection bound.
        self.search_http = vendor_http(searches_per_second, 1.0)
        self.search_http.semaphore = self.http.semaphore

    async def list_contacts(self, after: str | None, limit: int) -> JSON:
        params: dict[str, Any] = {
            "limit": limit,
            "properties": ",".join(CONTACT_PROPERTIES),
            "archived": "false",
        }
        if after:
            params["after"] = after
        return await self._json("GET", CONTACTS, params=params)

    async def search_contacts(
        self, since: datetime | None, after: str | None, limit: int, *, inclusive: bool = True
    ) -> JSON:
        """Contacts modified at or after ``since`` (after it, if not ``inclusive``), oldest first (HubSpot
        caps one search at 10,000 results)."""
        filters = (
            [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE" if inclusive else "GT",
                            "value": str(to_millis(since)),
                        }
                    ]
                }
            ]
            if since is not None
            else []
        )
        body = {
            "filterGroups": filters,
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": list(CONTACT_PROPERTIES),
            "limit": limit,
            "after": after or "0",
        }
        response = await self.search_http.request("POST", f"{CONTACTS}/search", json=body)
        return _body(response)

    async def read_statuses(self, emails: Sequence[str]) -> JSON:
        """v4 batch read: 200, or 207 with ``errors`` for addresses HubSpot could not answer for."""
        return await self._json("POST", f"{STATUSES}/batch/read", params=EMAIL, json={"inputs": list(emails)})

    async def read_wide_statuses(self, emails: Sequence[str]) -> JSON:
        """Batch read of "opted out of all email" (portal- or brand-wide status) with its timestamp."""
        return await self._json(
            "POST", f"{STATUSES}/batch/unsubscribe-all/read", params=EMAIL, json={"inputs": list(emails)}
        )

    async def write_statuses(self, inputs: Sequence[JSON]) -> JSON:
        return await self._json("POST", f"{STATUSES}/batch/write", json={"inputs": list(inputs)})

    async def unsubscribe_all(self, emails: Sequence[str]) -> JSON:
        return await self._json(
            "POST", f"{STATUSES}/batch/unsubscribe-all", params=EMAIL, json={"inputs": list(emails)}
        )

    # The per-contact endpoints: for portals whose plan does not include the batch status scopes.

    async def read_status(self, email: str) -> JSON:
        return await self._json("GET", f"{STATUSES}/{quote(email, safe='@')}", params=EMAIL)

    async def read_wide_status(self, email: str) -> JSON:
        return await self._json("GET", f"{STATUSES}/{quote(email, safe='@')}/unsubscribe-all", params=EMAIL)

    async def write_status(self, email: str, item: JSON) -> JSON:
        partial = {k: v for k, v in item.items() if k != "subscriberIdString"}
        return await self._json("POST", f"{STATUSES}/{quote(email, safe='@')}", json=partial)

    async def unsubscribe_all_one(self, email: str) -> JSON:
        return await self._json("POST", f"{STATUSES}/{quote(email, safe='@')}/unsubscribe-all", params=EMAIL)

    async def gdpr_delete(self, email: str) -> None:
        """Permanent deletion; HubSpot also blocks the address when it finds no contact for it."""
        await self.http.request(
            "POST", f"{CONTACTS}/gdpr-delete", json={"objectId": email, "idProperty": "email"}
        )

    async def _json(self, method: str, url: str, **kwargs: Any) -> JSON:
        return _body(await self.http.request(method, url, **kwargs))

    async def aclose(self) -> None:
        await self.http.aclose()


def _body(response: httpx.Response) -> JSON:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ConnectorError(
            SYSTEM, f"{response.request.url.path} answered {response.status_code} without a JSON object"
        )
    return body
