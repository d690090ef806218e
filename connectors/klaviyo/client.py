"""Klaviyo's HTTP calls: headers, per-endpoint rate budgets, and the one place its errors are read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from connectors.fields import time_field
from connectors.http import RateBudget, RetryPolicy, VendorHTTP, make_client
from connectors.klaviyo.mapping import (
    SYSTEM,
    deletion_job,
    email_filter,
    error_detail,
    relationship_body,
)
from connectors.pagination import follow_tokens

JSON_API = "application/vnd.api+json"

# Per-endpoint burst and steady limits from the spec's x-klaviyo-ratelimit (VENDOR-APIS 2.5).
PROFILES_LIMITS = [(75, 1.0), (750, 60.0)]  # profiles GET, list members GET, subscription jobs
LIST_LIMITS = [(10, 1.0), (150, 60.0)]  # list relationship POST/DELETE
PRIVACY_LIMITS = [(3, 1.0), (60, 60.0)]  # data-privacy-deletion-jobs


def describe(response: httpx.Response) -> str:
    """A Klaviyo error response in one line, from its JSON:API ``errors`` body."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return f"HTTP {response.status_code}: {error_detail(body)}"


class KlaviyoClient:
    """Thin async wrapper over the Klaviyo endpoints the connector uses; one AsyncClient, three budgets."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        revision: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 8,
    ) -> None:
        headers = {
            "Authorization": f"Klaviyo-API-Key {api_key}",
            "revision": revision,
            "Accept": JSON_API,
            "Content-Type": JSON_API,
        }
        self.client = make_client(base_url, headers=headers, max_connections=concurrency, transport=transport)
        retry = retry or RetryPolicy()
        semaphore = asyncio.Semaphore(concurrency)

        def vendor_http(limits: list[tuple[int, float]]) -> VendorHTTP:
            http = VendorHTTP(
                SYSTEM, self.client, describe, retry=retry, budget=RateBudget(limits, sleep=retry.sleep)
            )
            http.semaphore = semaphore  # one concurrency bound across the endpoint budgets
            return http

        self.profiles = vendor_http(PROFILES_LIMITS)
        self.lists = vendor_http(LIST_LIMITS)
        self.privacy = vendor_http(PRIVACY_LIMITS)

    def counters(self) -> dict[str, int]:
        parts = (self.profiles.counters, self.lists.counters, self.privacy.counters)
        return {
            "requests": sum(c.requests for c in parts),
            "retries": sum(c.retries for c in parts),
            "rate_limited": sum(c.rate_limited for c in parts),
        }

    async def get_page(self, url: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        response = await self.profiles.request("GET", url, params=params)
        body: dict[str, Any] = response.json()
        return body

    async def list_members(self, list_id: str, where: str) -> ListMembers:
        """Members of the list matching the filter ``where``, and the vendor's clock at the first answer."""
        members = ListMembers()

        async def fetch(url: str | None) -> tuple[list[Any], str | None]:
            if url is None:
                params: dict[str, str | int] = {
                    "filter": where,
                    "fields[profile]": "email,joined_group_at,updated",
                    "page[size]": 100,
                }
                body = await self.get_page(f"/api/lists/{list_id}/profiles", params)
                members.vendor_now = self.profiles.vendor_date
            else:
                body = await self.get_page(url)
            return body.get("data") or [], (body.get("links") or {}).get("next")

        async for data in follow_tokens(SYSTEM, fetch):
            for item in data:
                attributes = item.get("attributes") or {}
                # Membership is the fact; the times are niceties a damaged answer may lack.
                members.joined[item["id"]] = _time_or_none(attributes.get("joined_group_at"))
                members.updated[item["id"]] = _time_or_none(attributes.get("updated"))
        return members

    async def vendor_now(self, list_id: str) -> datetime | None:
        """The vendor's clock, from the Date of the cheapest read there is: one member of a list."""
        await self.get_page(f"/api/lists/{list_id}/profiles", {"page[size]": 1, "fields[profile]": "id"})
        return self.profiles.vendor_date

    async def profiles_by_id(self, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Whole profiles, with their consent, for the given ids (100 per request)."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(profile_ids), 100):
            chunk = list(profile_ids[start : start + 100])
            params: dict[str, str | int] = {
                "filter": f"any(id,{json.dumps(chunk, separators=(',', ':'))})",
                "additional-fields[profile]": "subscriptions",
                "page[size]": 100,
            }
            body = await self.get_page("/api/profiles", params)
            found += [item for item in body.get("data") or [] if isinstance(item, dict)]
        return found

    async def profile_ids(self, emails: Sequence[str]) -> dict[str, str]:
        """Normalised e-mail → profile id, for the addresses Klaviyo knows."""
        found: dict[str, str] = {}
        for start in range(0, len(emails), 100):
            chunk = emails[start : start + 100]
            params: dict[str, str | int] = {
                "filter": email_filter(chunk),
                "fields[profile]": "email",
                "page[size]": 100,
            }
            body = await self.get_page("/api/profiles", params)
            for item in body.get("data") or []:
                email = (item.get("attributes") or {}).get("email")
                if isinstance(email, str):
                    found[email.strip().lower()] = item["id"]
        return found

    async def create_profile(self, email: str) -> str:
        """``POST /api/profiles`` (201): a bare profile, so that it can join a list; returns its id."""
        body = {"data": {"type": "profile", "attributes": {"email": email}}}
        response = await self.profiles.request("POST", "/api/profiles", json=body)
        profile_id: str = response.json()["data"]["id"]
        return profile_id

    async def post_job(self, path: str, body: Mapping[str, Any]) -> None:
        """Subscription jobs: 202 with no body and no per-item result."""
        await self.profiles.request("POST", path, json=body)

    async def change_list(self, method: str, list_id: str, profile_ids: Sequence[str]) -> None:
        await self.lists.request(
            method, f"/api/lists/{list_id}/relationships/profiles", json=relationship_body(profile_ids)
        )

    async def request_deletion(self, email: str) -> None:
        await self.privacy.request("POST", "/api/data-privacy-deletion-jobs", json=deletion_job(email))

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class ListMembers:
    """Members of one list: when each joined and when each profile last changed (profile id → time),
    and the vendor's clock at the first answer (its Date header: it seals a watermark)."""

    joined: dict[str, datetime | None] = field(default_factory=dict)
    updated: dict[str, datetime | None] = field(default_factory=dict)
    vendor_now: datetime | None = None


def _time_or_none(value: object) -> datetime | None:
    try:
        return time_field(value, "attributes")
    except ValueError:
        return None
