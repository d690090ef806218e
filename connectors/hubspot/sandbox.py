"""A faithful fake of the HubSpot API subset the connector uses (VENDOR-APIS.md section 4).

Paths, bearer-token auth (bad token: HubSpot's 401 body), contact listing (``after`` cursor, limit <= 100),
CRM search (filters, one sort, limit <= 200, offset ``after``, at most 10,000 results per query), v4
subscription statuses (batch read/write with 207 partial answers, unsubscribe-all, and the per-contact
endpoints; ``batch_enabled = False`` plays a portal without the Enterprise batch scopes: 403 MISSING_SCOPES),
GDPR delete (the address is blocked afterwards), HubSpot's error bodies, the ten-secondly rate limit and
search's own per-second limit (429 + Retry-After; HubSpot's documentation does not promise the header),
timestamps from the sandbox clock (each status change bumps the contact's lastmodifieddate, as HubSpot's
``hs_email_optout_<id>`` properties do), and fault injection. The CRM contact routes are in
``sandbox_contacts``; this module holds auth, rate limits and the communication preferences routes.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from connectors.base import Status
from connectors.hubspot.sandbox_contacts import ContactRoutes
from connectors.hubspot.sandbox_data import HubSpotState, iso, standard_error
from connectors.hubspot.sandbox_requests import (
    InvalidRequestError,
    batch_answer,
    check_status_request,
    email_inputs,
    envelope,
    error_response,
    invalid,
    json_body,
    missing_scopes,
    status_inputs,
)
from connectors.hubspot.sandbox_webhooks import TOPIC, events, optouts
from connectors.hubspot.sandbox_webhooks import build as build_webhook
from connectors.sandbox import Clock, FaultInjector, Faults, VendorDate, recorder
from connectors.webhook_sender import WebhookSender

TOKEN = "pat-eu1-sandbox-0000-0000-000000000000"  # noqa: S105 - the sandbox's own fake credential
SUBSCRIPTIONS = {"newsletter": 101, "promotions": 102, "events": 103, "lead_magnet": 104}
STATUS_STATE = {
    Status.SUBSCRIBED: "SUBSCRIBED",
    Status.UNSUBSCRIBED: "UNSUBSCRIBED",
    Status.NOT_SUBSCRIBED: "NOT_SPECIFIED",
}
STATE_STATUS = {state: status for status, state in STATUS_STATE.items()}
Handler = Callable[[Request], Awaitable[Response]]
STATUSES = "/communication-preferences/v4/statuses"
BATCH_SCOPE = "communication_preferences.statuses.batch"
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


class RateWindow:
    """A rolling window like HubSpot's: at most ``limit`` requests per ``period`` seconds."""

    def __init__(self, limit: int, period: float, policy: str, monotonic: Callable[[], float]) -> None:
        self.limit, self.period, self.policy, self.monotonic = limit, period, policy, monotonic
        self.stamps: deque[float] = deque()

    def admit(self) -> float | None:
        """None when admitted, else the seconds until a slot frees up."""
        now = self.monotonic()
        while self.stamps and self.stamps[0] <= now - self.period:
            self.stamps.popleft()
        if len(self.stamps) >= self.limit:
            return self.stamps[0] + self.period - now
        self.stamps.append(now)
        return None


class HubSpotSandbox:
    name = "hubspot"

    def __init__(self, clock: Clock | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock or Clock()
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.token = TOKEN
        self.purposes = dict(SUBSCRIPTIONS)
        self.state = HubSpotState(
            self.clock, {sid: purpose.replace("_", " ").title() for purpose, sid in SUBSCRIPTIONS.items()}
        )
        self.search_cap = 10_000  # one search query never returns more (VENDOR-APIS 4.2)
        self.gdpr_enabled = True  # the portal requires a legalBasis on subscribe
        self.batch_enabled = True  # False: a portal without Enterprise, whose batch status calls get 403
        self.ten_secondly = RateWindow(100, 10.0, "TEN_SECONDLY_ROLLING", monotonic)
        self.search_limit = RateWindow(5, 1.0, "SECONDLY", monotonic)
        self._app: ASGIApp | None = None
        self.webhooks = WebhookSender(self.name)
        self.contacts = ContactRoutes(self)

    # -- the Sandbox protocol

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            route = self._route
            routes = [
                route("/crm/v3/objects/contacts", self.contacts.listing, methods=["GET"]),
                route("/crm/v3/objects/contacts", self.contacts.create, methods=["POST"]),
                route("/crm/v3/objects/contacts/search", self.contacts.search, methods=["POST"]),
                route("/crm/v3/objects/contacts/gdpr-delete", self.contacts.gdpr_delete, methods=["POST"]),
                route("/communication-preferences/v4/definitions", self.definitions, methods=["GET"]),
                route(f"{STATUSES}/batch/read", self.batch_read, ["POST"], f"{BATCH_SCOPE}.read"),
                route(f"{STATUSES}/batch/write", self.batch_write, ["POST"], f"{BATCH_SCOPE}.write"),
                route(
                    f"{STATUSES}/batch/unsubscribe-all",
                    self.batch_unsubscribe_all,
                    ["POST"],
                    f"{BATCH_SCOPE}.write",
                ),
                route(
                    f"{STATUSES}/batch/unsubscribe-all/read",
                    self.batch_read_wide,
                    ["POST"],
                    f"{BATCH_SCOPE}.read",
                ),
                route(f"{STATUSES}/{{email}}", self.read_one, ["GET"]),
                route(f"{STATUSES}/{{email}}/unsubscribe-all", self.read_wide_one, ["GET"]),
                route(f"{STATUSES}/{{email}}", self.write_one, ["POST"]),
                route(f"{STATUSES}/{{email}}/unsubscribe-all", self.unsubscribe_all_one, ["POST"]),
            ]
            app = Starlette(
                routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=recorder(self.requests))]
            )
            self._app = FaultInjector(VendorDate(self._guard(app), self.clock), self.faults, error_response)
        return self._app

    def settings_env(self, base_url: str) -> dict[str, str]:
        return {
            "SYNC_HUBSPOT__ACCESS_TOKEN": self.token,
            "SYNC_HUBSPOT__BASE_URL": base_url,
            "SYNC_HUBSPOT__SUBSCRIPTIONS": json.dumps({p: str(s) for p, s in self.purposes.items()}),
        }

    def add_contact(self, email: str, statuses: Mapping[str, Status], **vendor: Any) -> str:
        """Vendor extras: ``opted_out_all=True``, ``legal_basis=...``, ``properties={...}``."""
        for purpose, status in statuses.items():  # refuse before creating anything: no half-added contact
            if status not in STATUS_STATE or purpose not in self.purposes:
                raise ValueError(f"HubSpot has no {status.value} state for purpose {purpose!r}")
        contact = self.state.find(email) or self.state.create(email, vendor.get("properties"))
        for purpose, status in statuses.items():
            self.set_status(
                email, purpose, status, legal_basis=vendor.get("legal_basis", "CONSENT_WITH_NOTICE")
            )
        if vendor.get("opted_out_all"):
            self.state.unsubscribe_all(email, source="Self Service")
        return str(contact.id)

    def set_status(self, email: str, purpose: str, status: Status, legal_basis: str | None = None) -> None:
        if status not in STATUS_STATE:
            raise ValueError(f"HubSpot has no {status.value} state for a subscription")
        before = optouts(self.state.find(email))
        self.state.write(
            email,
            self.purposes[purpose],
            STATUS_STATE[status],
            legal_basis=legal_basis,
            source="Self Service",
        )
        self._notify(email, before)

    def delete_contact(self, email: str) -> None:
        """Staff delete the contact in HubSpot's UI: the contact and the statuses of its address go (unlike a
        GDPR delete, the address is not blocked and may come back)."""
        if self.state.find(email) is None:
            raise KeyError(f"{email} is not a HubSpot contact")
        self.state.delete(email)

    def unsubscribe_from_all(self, email: str) -> None:
        """The person opts out of all email (hs_email_optout becomes true), e.g. on the preference page."""
        before = optouts(self.state.find(email))
        self.state.unsubscribe_all(email, source="Self Service")
        self._notify(email, before)

    def _notify(self, email: str, before: dict[str, str]) -> None:
        contact = self.state.find(email)
        batch = events(contact, before, self.clock.now(), "CRM_UI") if contact is not None else []
        if batch:
            self.webhooks.fire(TOPIC, build_webhook(batch, self.clock.now()))

    def status(self, email: str, purpose: str) -> Status | None:
        if not self.state.known(email):
            return None
        return STATE_STATUS[self.state.public_status(email, self.purposes[purpose])["status"]]

    def _route(self, path: str, handler: Handler, methods: list[str], scope: str | None = None) -> Route:
        """A route whose malformed requests get HubSpot's 400 VALIDATION_ERROR naming the input.

        ``scope``: a batch status scope, which only Marketing Hub Enterprise portals grant (``batch_enabled``).
        """

        async def endpoint(request: Request) -> Response:
            if scope is not None and not self.batch_enabled:
                return missing_scopes(scope)
            try:
                return await handler(request)
            except InvalidRequestError as error:
                return invalid(error)

        return Route(path, endpoint, methods=methods)

    # -- auth and rate limits

    def _guard(self, app: ASGIApp) -> ASGIApp:
        sandbox = self

        async def guarded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and not scope["path"].startswith("/_sandbox"):
                headers = dict(scope.get("headers") or [])
                if headers.get(b"authorization", b"").decode() != f"Bearer {sandbox.token}":
                    await error_response(401, AUTH_MESSAGE)(scope, receive, send)
                    return
                search = scope["path"].endswith("/search")
                window = sandbox.search_limit if search else sandbox.ten_secondly
                wait = window.admit()
                if wait is not None:
                    reply = error_response(
                        429,
                        f"You have reached your {window.policy.lower()} limit.",
                        wait,
                        policyName=window.policy,
                    )
                    await reply(scope, receive, send)
                    return
            await app(scope, receive, send)

        return guarded

    # -- communication preferences v4

    async def definitions(self, _request: Request) -> Response:
        created = iso(self.clock.now())
        results = [
            {
                "id": str(sid),
                "name": name,
                "description": f"{name} e-mails",
                "purpose": "Marketing",
                "communicationMethod": "Email",
                "isActive": True,
                "isDefault": False,
                "isInternal": False,
                "businessUnitId": 0,
                "createdAt": created,
                "updatedAt": created,
            }
            for sid, name in sorted(self.state.definitions.items())
        ]
        return JSONResponse(envelope(results, created))

    async def read_one(self, request: Request) -> Response:
        if request.query_params.get("channel") != "EMAIL":
            raise InvalidRequestError("channel is required and must be EMAIL", "channel")
        email = request.path_params["email"]
        if not self.state.known(email):
            return error_response(404, f"No subscriber found for {email}")
        return JSONResponse(envelope(self.state.all_statuses(email), iso(self.clock.now())))

    async def batch_read(self, request: Request) -> Response:
        return await self._batch_lookup(request, "statuses", self.state.all_statuses)

    async def batch_read_wide(self, request: Request) -> Response:
        return await self._batch_lookup(request, "wideStatuses", self.state.wide_statuses)

    async def _batch_lookup(
        self, request: Request, field: str, lookup: Callable[[str], list[Any]]
    ) -> Response:
        """A batch read by address: known ones answered under ``field``, unknown ones as item errors (207)."""
        results, errors = [], []
        for email in await email_inputs(request):
            if self.state.known(email):
                results.append({"subscriberIdString": email.lower(), field: lookup(email)})
            else:
                context = {"subscriberIdString": [email]}
                errors.append(standard_error("OBJECT_NOT_FOUND", f"No subscriber found for {email}", context))
        return batch_answer(results, errors, iso(self.clock.now()))

    async def read_wide_one(self, request: Request) -> Response:
        if request.query_params.get("channel") != "EMAIL":
            raise InvalidRequestError("channel is required and must be EMAIL", "channel")
        # HubSpot answers an empty ``results`` for an address that has not opted out of all email.
        return JSONResponse(
            envelope(self.state.wide_statuses(request.path_params["email"]), iso(self.clock.now()))
        )

    async def batch_write(self, request: Request) -> Response:
        results, errors = [], []
        for item in status_inputs(await json_body(request)):
            result, error = self._write(item)
            results += [result] if result else []
            errors += [error] if error else []
        return batch_answer(results, errors, iso(self.clock.now()))

    async def write_one(self, request: Request) -> Response:
        item = {**await json_body(request), "subscriberIdString": request.path_params["email"]}
        check_status_request(item, "")
        result, error = self._write(item)
        if error is not None:
            status = 404 if error["category"] == "OBJECT_NOT_FOUND" else 400
            return error_response(status, error["message"], category=error["category"])
        return JSONResponse(envelope([result], iso(self.clock.now())))

    def _write(self, item: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Apply one well-formed status request: HubSpot's PublicStatus, or the item's error."""
        email, sid, state = item["subscriberIdString"], item["subscriptionId"], item["statusState"]
        context = {"subscriberIdString": [email], "subscriptionId": [str(sid)]}
        if sid not in self.state.definitions:
            return None, standard_error("OBJECT_NOT_FOUND", f"Subscription {sid} does not exist", context)
        if "@" not in email:
            return None, standard_error("VALIDATION_ERROR", f"{email} is not a valid email address", context)
        if email.lower() in self.state.blocked:
            # GDPR-deleted: HubSpot blocks the address so it cannot be used again (VENDOR-APIS 4.8). That a
            # status write for it is refused, and in these words, is an assumption: HubSpot does not say.
            message = f"{email} was permanently deleted and is blocked: it cannot be used again"
            return None, standard_error("VALIDATION_ERROR", message, context)
        if not self.state.known(email):
            # No contact and no status of the address (e.g. its contact was deleted): nobody to set a status
            # of. The error names the address alone, as the batch read's does for an unknown address.
            found = {"subscriberIdString": [email]}
            return None, standard_error("OBJECT_NOT_FOUND", f"No subscriber found for {email}", found)
        if self.gdpr_enabled and state == "SUBSCRIBED" and not item.get("legalBasis"):
            message = "legalBasis is required: this portal has data privacy settings turned on"
            return None, standard_error("VALIDATION_ERROR", message, context)
        basis, explanation = item.get("legalBasis"), item.get("legalBasisExplanation")
        return self.state.write(email, sid, state, legal_basis=basis, explanation=explanation), None

    async def batch_unsubscribe_all(self, request: Request) -> Response:
        emails = await email_inputs(request)
        verbose = request.query_params.get("verbose") == "true"
        results = []
        for email in emails:
            statuses = self.state.unsubscribe_all(email)
            results.append(
                {"subscriberIdString": email.lower(), **({"statuses": statuses} if verbose else {})}
            )
        return batch_answer(results, [], iso(self.clock.now()))

    async def unsubscribe_all_one(self, request: Request) -> Response:
        if request.query_params.get("channel") != "EMAIL":
            raise InvalidRequestError("channel is required and must be EMAIL", "channel")
        statuses = self.state.unsubscribe_all(request.path_params["email"])
        return JSONResponse(envelope(statuses, iso(self.clock.now())))

    def seed_demo(self) -> None:
        """A handful of contacts in every state the connector maps."""
        self.add_contact("anna@example.com", {"newsletter": Status.SUBSCRIBED})
        self.add_contact(
            "bram@example.com", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED}
        )
        self.add_contact("cor@example.com", {"newsletter": Status.UNSUBSCRIBED})
        self.add_contact("dina@example.com", {}, opted_out_all=True)
        self.add_contact(
            "eva@example.com", {"promotions": Status.SUBSCRIBED}, legal_basis="LEGITIMATE_INTEREST_CLIENT"
        )
