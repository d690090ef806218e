"""A faithful fake of the Mailchimp Marketing API v3 subset the connector uses.

Paths under ``/3.0``; HTTP Basic auth with the API key as password (any user name); problem+json error
bodies; ``count``/``offset`` paging with ``since_last_changed``/``before_last_changed``/``status`` filters and
``sort_field``/``sort_dir``; the batch endpoint's 200-with-``errors`` partial failures; member tags and
the static segments they are; marketing permissions; ``delete-permanent``; the compliance-state refusal;
and Mailchimp's only limit, 10 simultaneous connections (the 11th gets a 429). The member routes are in
``sandbox_members``, the segment routes in ``sandbox_segments``; this module holds auth, errors, the
connection limit and what a person or an admin does in Mailchimp's own UI.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.base import Status
from connectors.mailchimp.client import MAX_CONNECTIONS
from connectors.mailchimp.mapping import Construct, format_time, parse_purposes, parse_time, purpose_status
from connectors.mailchimp.sandbox_data import (
    INTERESTS,
    PERMISSIONS,
    Audience,
    MemberError,
    select_fields,
)
from connectors.mailchimp.sandbox_members import Members
from connectors.mailchimp.sandbox_segments import Segments
from connectors.mailchimp.sandbox_webhooks import build as build_webhook
from connectors.mailchimp.sandbox_webhooks import kind as webhook_kind
from connectors.mailchimp.sandbox_webhooks import validation
from connectors.sandbox import Clock, FaultInjector, Faults, VendorDate, recorder
from connectors.webhook_sender import WebhookSender

API_KEY = "5f4dcc3b5aa765d61d8327deb882cf99-us21"
ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
DEFAULT_PURPOSES = {
    "newsletter": "status",
    "promotions": f"interest:{next(iter(INTERESTS))}",
    "events": "tag:events",
    "lead_magnet": f"permission:{next(iter(PERMISSIONS))}",
}
STATUS_FOR = {
    Status.SUBSCRIBED: "subscribed",
    Status.UNSUBSCRIBED: "unsubscribed",
    Status.PENDING: "pending",
    Status.NOT_SUBSCRIBED: "transactional",
}
TIME_FIELDS = ("last_changed", "timestamp_opt", "timestamp_signup")
PERSON_UNSUBSCRIBE = "I no longer want to receive these emails"
Handler = Callable[[Request], Awaitable[Response]]


def problem(status: int, title: str, detail: str, retry_after: float | None = None) -> Response:
    """Mailchimp's error body: application/problem+json with type, title, status, detail, instance."""
    body = {
        "type": ERRORS_DOC,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def fault_response(status: int, title: str, retry_after: float | None) -> Response:
    detail = (
        f"You have exceeded the limit of {MAX_CONNECTIONS} simultaneous connections."
        if status == 429
        else "An unexpected internal error has occurred. Please contact Support for more information."
    )
    return problem(status, title, detail, retry_after)


def _stamp(value: datetime | str) -> str:
    """Timestamps are stored in one UTC form, so the audience can compare and sort them as strings."""
    moment = parse_time(value) if isinstance(value, str) else value
    return format_time(moment) if moment is not None else ""


class ConnectionLimit:
    """Mailchimp allows 10 simultaneous connections per API key; the next one is refused with a 429."""

    def __init__(self, app: ASGIApp, limit: int = MAX_CONNECTIONS) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.refused += 1
            await fault_response(429, "Too Many Requests", 1.0)(scope, receive, send)
            return
        self.in_flight += 1
        done = False

        def release() -> None:
            nonlocal done
            if not done:
                done = True
                self.in_flight -= 1

        async def send_and_release(message: Message) -> None:
            # The slot frees as the last byte goes out: the client may reuse it before this task resumes.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            release()


class MailchimpSandbox:
    name = "mailchimp"

    def __init__(self, clock: Clock | None = None, purposes: Mapping[str, str] | None = None) -> None:
        self.clock = clock or Clock()
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[tuple[str, str, Any]] = []  # (method, path, JSON body) of writes, for spec checks
        self.api_key = API_KEY
        self.purpose_specs = dict(purposes or DEFAULT_PURPOSES)
        self.purposes: dict[str, Construct] = parse_purposes(self.purpose_specs)
        self.audience = Audience(self.clock)
        self.webhooks = WebhookSender(self.name, validate=validation)
        self.members = Members(self.audience, self._json)
        self.segments = Segments(self.audience, self._json)
        routes = [
            Route("/_sandbox/health", self._health),
            Route("/3.0/ping", self._guard(self._ping)),
            Route("/3.0/lists/{list_id}", self._guard(self._list_info), methods=["GET"]),
            Route("/3.0/lists/{list_id}", self._guard(self.members.batch), methods=["POST"]),
            Route("/3.0/lists/{list_id}/members", self._guard(self.members.listing), methods=["GET"]),
            Route("/3.0/lists/{list_id}/members", self._guard(self.members.create), methods=["POST"]),
            Route(
                "/3.0/lists/{list_id}/members/{ref}",
                self._guard(self.members.member),
                methods=["GET", "PUT", "PATCH", "DELETE"],
            ),
            Route(
                "/3.0/lists/{list_id}/members/{ref}/tags",
                self._guard(self.members.tags),
                methods=["GET", "POST"],
            ),
            Route("/3.0/lists/{list_id}/segments", self._guard(self.segments.listing), methods=["GET"]),
            Route("/3.0/lists/{list_id}/segments", self._guard(self.segments.create), methods=["POST"]),
            Route(
                "/3.0/lists/{list_id}/segments/{segment_id}",
                self._guard(self.segments.members),
                methods=["POST"],
            ),
            Route(
                "/3.0/lists/{list_id}/members/{ref}/actions/delete-permanent",
                self._guard(self.members.forget),
                methods=["POST"],
            ),
        ]
        inner = Starlette(
            routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=recorder(self.requests))]
        )
        self.limit = ConnectionLimit(
            FaultInjector(VendorDate(inner, self.clock), self.faults, fault_response)
        )

    @property
    def app(self) -> ASGIApp:
        return self.limit

    def settings_env(self, base_url: str) -> dict[str, str]:
        return {
            "SYNC_MAILCHIMP__API_KEY": self.api_key,
            "SYNC_MAILCHIMP__LIST_ID": self.audience.list_id,
            "SYNC_MAILCHIMP__BASE_URL": f"{base_url.rstrip('/')}/3.0",
            "SYNC_MAILCHIMP__PURPOSES": json.dumps(self.purpose_specs),
        }

    # --- the Sandbox protocol: what a person or an admin does in Mailchimp's own UI -------------------

    def add_contact(self, email: str, statuses: Mapping[str, Status], **vendor: Any) -> str:
        by_kind = {self.purposes[p].kind: s for p, s in statuses.items() if p in self.purposes}
        if "status" in by_kind:
            status = STATUS_FOR[by_kind["status"]]
        else:
            present = set(statuses.values())
            order = (Status.SUBSCRIBED, Status.PENDING, Status.UNSUBSCRIBED)
            status = next((STATUS_FOR[s] for s in order if s in present), "transactional")
        stamp = format_time(self.clock.now())
        member = (
            self.audience.find(email)
            or self.audience.upsert({"email_address": email, "status": "subscribed"}, update_existing=True)[0]
        )
        member.update(
            status=status, timestamp_opt=stamp if status == "subscribed" else "", last_changed=stamp
        )
        if status == "unsubscribed":
            member["unsubscribe_reason"] = PERSON_UNSUBSCRIBE
        for purpose, state in statuses.items():
            if purpose in self.purposes:
                self._set_construct(
                    member, self.purposes[purpose], state in (Status.SUBSCRIBED, Status.PENDING)
                )
        for name, value in vendor.items():
            if name not in member and name not in ("tags", "unsubscribe_reason"):
                raise ValueError(f"{email}: {name!r} is not a Mailchimp member field")
            if name == "tags":
                self.audience.set_tags(member, [{"name": n, "status": "active"} for n in value])
            else:
                member[name] = _stamp(value) if name in TIME_FIELDS else value
        if "last_changed" not in vendor:
            member["last_changed"] = stamp
        return str(member["id"])

    def set_status(self, email: str, purpose: str, status: Status) -> None:
        member = self.audience.find(email)
        if member is None:
            self.add_contact(email, {purpose: status})
            return
        construct = self.purposes[purpose]
        before = member["status"]
        if construct.kind == "status":
            reason = PERSON_UNSUBSCRIBE if status is Status.UNSUBSCRIBED else None
            self.audience.set_member_status(member, STATUS_FOR[status], reason)
        else:
            self._set_construct(member, construct, status in (Status.SUBSCRIBED, Status.PENDING))
            if status is Status.SUBSCRIBED and member["status"] != "subscribed":
                self.audience.set_member_status(member, "subscribed")
        member["last_changed"] = format_time(self.clock.now())
        event = webhook_kind(before, member["status"])
        self.webhooks.fire(event, build_webhook(event, member, self.clock.now()))

    def delete_contact(self, email: str, *, permanently: bool = True) -> None:
        """An admin deletes the contact in Mailchimp's UI: for good (the address cannot be re-imported), or
        archived (it leaves every listing but the ``archived`` one, and can be added again)."""
        member = self.audience.find(email)
        if member is None:
            raise KeyError(f"{email} is not in the audience")
        if permanently:
            self.audience.forget(member)
        else:
            self.audience.set_member_status(member, "archived")

    def status(self, email: str, purpose: str) -> Status | None:
        member = self.audience.find(email)
        construct = self.purposes.get(purpose)
        if member is None or construct is None or member["status"] == "archived":
            return None
        return purpose_status(member, construct)

    def _set_construct(self, member: dict[str, Any], construct: Construct, on: bool) -> None:
        if construct.kind == "interest":
            member["interests"][construct.ref] = on
        elif construct.kind == "tag":
            self.audience.set_tags(
                member, [{"name": construct.ref, "status": "active" if on else "inactive"}]
            )
        elif construct.kind == "permission":
            for perm in member["marketing_permissions"]:
                if perm["marketing_permission_id"] == construct.ref:
                    perm["enabled"] = on

    # --- HTTP ---------------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            _, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return password == self.api_key

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if "Authorization" not in request.headers:
                return problem(401, "API Key Missing", "Your request did not include an API key.")
            if not self._authorised(request):
                return problem(
                    401,
                    "API Key Invalid",
                    "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
                )
            list_id = request.path_params.get("list_id")
            if list_id is not None and list_id != self.audience.list_id:
                return problem(404, "Resource Not Found", "The requested resource could not be found.")
            try:
                return await handler(request)
            except MemberError as error:
                return problem(error.status, error.title, error.detail)

        return guarded

    async def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as error:
            raise MemberError(
                "JSON Parse Exception", "We encountered an unspecified JSON parsing error."
            ) from error
        if not isinstance(body, dict):
            raise MemberError("Invalid Resource", "The resource submitted could not be validated.")
        self.bodies.append((request.method, request.url.path, body))
        return body

    async def _health(self, _request: Request) -> Response:
        return JSONResponse({"sandbox": self.name, "members": len(self.audience.members)})

    async def _list_info(self, request: Request) -> Response:
        """``GET /lists/{id}``: the audience (an unknown id is answered 404 by the guard)."""
        body = {
            "id": self.audience.list_id,
            "name": "Sandbox audience",
            "stats": {"member_count": len(self.audience.members)},
        }
        return JSONResponse(select_fields(body, request.query_params.get("fields"), None))

    async def _ping(self, _request: Request) -> Response:
        return JSONResponse({"health_status": "Everything's Chimpy!"})
