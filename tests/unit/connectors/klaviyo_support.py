"""Helpers shared by the Klaviyo tests: a connector wired to a sandbox, and the official spec's schemas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Coroutine
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from config.klaviyo import KlaviyoSettings
from connectors.base import ContactRecord, Page, Status
from connectors.http import RetryPolicy
from connectors.klaviyo.connector import KlaviyoConnector
from connectors.klaviyo.sandbox import API_KEY, KlaviyoSandbox
from connectors.sandbox import Clock

T = TypeVar("T")
ROOT = Path(__file__).parents[3]
SPEC_NAME = Path("specs") / "klaviyo" / "klaviyo-2026-07-15.stable.openapi.json"
# ../shared next to the checkout (a worktree one level deeper finds it at ../../shared).
SPEC = next(
    (
        path
        for path in (ROOT / ".." / "shared" / SPEC_NAME, ROOT / ".." / ".." / "shared" / SPEC_NAME)
        if path.exists()
    ),
    ROOT / ".." / "shared" / SPEC_NAME,
)
SPEC_URI = "urn:klaviyo:2026-07-15"
START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class Sleeps:
    """An injected sleep: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def retry_policy(sleeps: Sleeps, attempts: int = 6) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, sleep=sleeps)


def sandbox() -> KlaviyoSandbox:
    return KlaviyoSandbox(clock=Clock(START))


def settings_for(
    box: KlaviyoSandbox, base_url: str = "http://klaviyo.test", **overrides: Any
) -> KlaviyoSettings:
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": base_url,
        "lists": dict(box.purposes.lists),
        "consent_purposes": list(box.purposes.consent_purposes),
        **overrides,
    }
    return KlaviyoSettings(**values)


def connector(
    box: KlaviyoSandbox, *, sleeps: Sleeps | None = None, page_size: int = 100, **overrides: Any
) -> KlaviyoConnector:
    return KlaviyoConnector.from_settings(
        settings_for(box, page_size=page_size, **overrides),
        transport=httpx.ASGITransport(app=box.app),
        retry=retry_policy(sleeps or Sleeps()),
        clock=box.clock.now,
    )


async def pull_all(conn: KlaviyoConnector, since: str | None = None) -> list[Page]:
    return [page async for page in conn.pull("contacts", since)]


async def closing(conn: KlaviyoConnector, work: Awaitable[T]) -> T:
    try:
        return await work
    finally:
        await conn.aclose()


HEADERS = {"Authorization": f"Klaviyo-API-Key {API_KEY}", "revision": "2026-07-15"}


def people(box: KlaviyoSandbox, count: int) -> list[str]:
    emails = [f"person{i}@example.com" for i in range(count)]
    for i, email in enumerate(emails):
        box.add_contact(
            email,
            {
                "newsletter": Status.SUBSCRIBED,
                "promotions": Status.SUBSCRIBED if i % 2 else Status.NOT_SUBSCRIBED,
            },
        )
    return emails


def records(pages: list[Page]) -> list[ContactRecord]:
    return [r for page in pages for r in page.records]


def send(
    box: KlaviyoSandbox, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=box.app), base_url="http://k"
        ) as client:
            return await client.request(
                method, path, headers=HEADERS if headers is None else headers, **kwargs
            )

    return run(call())


def get(
    box: KlaviyoSandbox, path: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return send(box, "GET", path, headers, params=params)


# --- the official OpenAPI spec ------------------------------------------------------------------------


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema (jsonschema does not know the keyword)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "$ref" in out:
            ref = out.pop("$ref")
            return {"anyOf": [{"$ref": ref}, {"type": "null"}], **out}
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@cache
def _spec() -> dict[str, Any] | None:
    if not SPEC.exists():
        return None
    return _json_schema(json.loads(SPEC.read_text()))  # type: ignore[no-any-return]


def spec() -> dict[str, Any]:
    document = _spec()
    if document is None:
        print(f"skipped: the Klaviyo spec is not at {SPEC}")
        pytest.skip(f"the official Klaviyo spec is absent ({SPEC})")
    return document


def validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at ``pointer`` in the spec, e.g. ``/components/schemas/X``."""
    document = spec()
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(document))
    return Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry)


def response_schema(path: str, method: str, status: str) -> Draft202012Validator:
    response = spec()["paths"][path][method]["responses"][status]
    if "$ref" in response:
        return validator(response["$ref"].removeprefix("#") + "/content/application~1vnd.api+json/schema")
    return validator(
        _pointer("paths", path, method, "responses", status, "content", "application/vnd.api+json", "schema")
    )


def request_schema(path: str, method: str) -> Draft202012Validator:
    return validator(
        _pointer("paths", path, method, "requestBody", "content", "application/vnd.api+json", "schema")
    )


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def spec_profile(
    profile_id: str = "01GDDKASAP8TKDDA2GRZDSVP4H",
    email: str | None = "sarah.mason@klaviyo-demo.com",
    *,
    updated: str | None = "2023-02-21T20:07:38+00:00",
    consent: str = "SUBSCRIBED",
    suppression: list[dict[str, str]] | None = None,
    list_suppressions: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A profile as ``GET /api/profiles?additional-fields[profile]=subscriptions`` returns it.

    Field names and example values are the spec's (ProfileResponsePluralConversationsObjectResource,
    EmailMarketing, EmailMarketingSuppression); a test validates this fixture against the spec.
    """
    return {
        "type": "profile",
        "id": profile_id,
        "attributes": {
            "email": email,
            "phone_number": "+15005550006",
            "external_id": None,
            "first_name": "Sarah",
            "last_name": "Mason",
            "organization": "Example Corporation",
            "locale": "en-US",
            "title": "Regional Manager",
            "image": None,
            "created": "2022-11-08T00:00:00+00:00",
            "updated": updated,
            "last_event_date": None,
            "location": {},
            "properties": {},
            "subscriptions": {
                "email": {
                    "marketing": {
                        "can_receive_email_marketing": consent == "SUBSCRIBED" and not suppression,
                        "consent": consent,
                        "consent_timestamp": "2023-02-21T20:07:38+00:00",
                        "last_updated": "2023-02-21T20:07:38+00:00",
                        "method": "PREFERENCE_PAGE",
                        "method_detail": "mydomain.com/signup",
                        "custom_method_detail": "marketing drive",
                        "double_optin": True,
                        "suppression": suppression or [],
                        "list_suppressions": list_suppressions or [],
                    }
                }
            },
        },
        "relationships": {},
        "links": {"self": f"https://a.klaviyo.com/api/profiles/{profile_id}/"},
    }


def profiles_page(*profiles: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    links = {"self": "https://a.klaviyo.com/api/profiles/"}
    if next_url:
        links["next"] = next_url
    return {"data": list(profiles), "links": links}


def error_body(code: str, detail: str, pointer: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"id": "7f6c1e0a", "code": code, "title": "Invalid input.", "detail": detail}
    if pointer:
        error["source"] = {"pointer": pointer}
    return {"errors": [error]}
