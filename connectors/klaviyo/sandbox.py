"""A faithful fake of the Klaviyo API subset the connector uses (VENDOR-APIS 2, spec revision 2026-07-15).

Paths, ``Klaviyo-API-Key`` auth, the required ``revision`` header, JSON:API bodies and error documents,
cursor paging with ``links.next``, the filters the connector sends, the subscription and list jobs with
their quirks (a list unsubscribe for a profile not in that list is a global unsubscribe), per-endpoint
burst/steady limits (429 + Retry-After; ``RateLimit-*`` headers otherwise) and fault injection.
Jobs that Klaviyo runs asynchronously take effect at once here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from connectors.base import ContactRecord, Status
from connectors.klaviyo.mapping import PurposeMap, to_contact
from connectors.klaviyo.sandbox_data import CHANGES, Audience, Profile, stamp
from connectors.klaviyo.sandbox_webhooks import build as build_webhook
from connectors.klaviyo.sandbox_webhooks import item as webhook_item
from connectors.klaviyo.sandbox_webhooks import topic as webhook_topic
from connectors.klaviyo.sandbox_wire import (
    API_KEY,
    JSON_API,
    LIST_MEMBER_FILTERS,
    PROFILE_FILTERS,
    PROFILE_SORTS,
    RateWindows,
    Rejected,
    check_credentials,
    csv,
    document,
    error_document,
    error_response,
    item_errors,
    page,
    read_json,
)
from connectors.sandbox import Clock, FaultInjector, Faults, VendorDate, recorder
from connectors.sandbox_changes import Queries
from connectors.webhook_sender import WebhookSender
from sync_worker.identity import InvalidEmailError, normalise_email

__all__ = ["API_KEY", "KlaviyoSandbox"]
MARKETING = "subscriptions/email/marketing"
# Every default purpose that is not the account-wide consent is a list in the sandbox's account.
DEFAULT_LISTS = {"promotions": "PrOm01", "events": "EvNt02", "lead_magnet": "LeAd03"}


class KlaviyoSandbox:
    name = "klaviyo"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        faults: Faults | None = None,
        lists: Mapping[str, str] | None = None,
        consent_purposes: tuple[str, ...] = ("newsletter",),
    ) -> None:
        self.clock = clock or Clock()
        self.faults = faults or Faults()
        self.requests: list[tuple[str, str]] = []
        self.purposes = PurposeMap(
            lists=dict(lists if lists is not None else DEFAULT_LISTS),
            consent_purposes=consent_purposes,
        )
        self.audience = Audience(self.purposes)
        self.queries = Queries(CHANGES)  # list answers, kept while nothing in the account changes
        self.limits = RateWindows()
        self.jobs: list[dict[str, Any]] = []  # every accepted write body, for tests that inspect pushes
        self.webhooks = WebhookSender(self.name)
        routes = []
        for path, endpoint, methods in (
            ("/api/profiles", self.get_profiles, ["GET"]),
            ("/api/profiles", self.create_profile, ["POST"]),
            ("/api/lists/{id}/profiles", self.get_list_profiles, ["GET"]),
            ("/api/lists/{id}/relationships/profiles", self.change_list, ["POST", "DELETE"]),
            ("/api/profile-subscription-bulk-create-jobs", self.subscribe, ["POST"]),
            ("/api/profile-subscription-bulk-delete-jobs", self.unsubscribe, ["POST"]),
            ("/api/data-privacy-deletion-jobs", self.delete_profile, ["POST"]),
        ):
            # Klaviyo answers with and without the trailing slash.
            routes += [Route(path, endpoint, methods=methods), Route(f"{path}/", endpoint, methods=methods)]
        inner = Starlette(
            routes=routes,
            middleware=[Middleware(BaseHTTPMiddleware, dispatch=recorder(self.requests))],
            exception_handlers={Rejected: lambda _request, error: error.response},
        )
        self._app: ASGIApp = FaultInjector(VendorDate(inner, self.clock), self.faults, error_response)

    @property
    def app(self) -> ASGIApp:
        return self._app

    @property
    def profiles(self) -> dict[str, Profile]:
        return self.audience.profiles

    # --- the Sandbox protocol -------------------------------------------------------------------
    def settings_env(self, base_url: str) -> dict[str, str]:
        return {
            "SYNC_KLAVIYO__API_KEY": API_KEY,
            "SYNC_KLAVIYO__BASE_URL": base_url,
            "SYNC_KLAVIYO__LISTS": json.dumps(dict(self.purposes.lists)),
            "SYNC_KLAVIYO__CONSENT_PURPOSES": json.dumps(list(self.purposes.consent_purposes)),
        }

    def add_contact(self, email: str, statuses: Mapping[str, Status], **vendor: Any) -> str:
        """A profile as if created by a sign-up; ``vendor`` sets Profile fields (e.g. ``suppression``)."""
        now = self.clock.now()
        profile = self.audience.find_or_create(email, now)
        for purpose, status in statuses.items():
            self.audience.apply(profile, purpose, status, now)
        for key, value in vendor.items():
            setattr(profile, key, value)
        return profile.id

    def set_status(self, email: str, purpose: str, status: Status) -> None:
        profile = self.audience.find(email)
        if profile is None:
            raise KeyError(f"no profile for {email!r}")
        now = self.clock.now()
        self.audience.apply(profile, purpose, status, now)
        consent = purpose in self.purposes.consent_purposes
        event_topic = webhook_topic(consent, status)
        if event_topic is not None:
            entry = webhook_item(event_topic, profile, now, None if consent else self.purposes.lists[purpose])
            self.webhooks.fire(event_topic, build_webhook(entry, now))

    def status(self, email: str, purpose: str) -> Status | None:
        """Read back through the connector's own mapping: the sandbox's truth in canonical terms."""
        profile = self.audience.find(email)
        if profile is None:
            return None
        rendered = profile.render("", subscriptions=True, fields=None)
        record = to_contact(rendered, self.audience.memberships(profile), self.purposes)
        return record.status_of(purpose) if isinstance(record, ContactRecord) else None

    def _enter(self, request: Request, bucket: str) -> None:
        check_credentials(request)
        self.limits.count(bucket)

    # --- reading -------------------------------------------------------------------------------------
    async def get_profiles(self, request: Request) -> Response:
        self._enter(request, "profiles")
        q = request.query_params
        extra = csv(q.get("additional-fields[profile]"))
        if not extra <= {"subscriptions", "predictive_analytics"}:
            raise Rejected(
                400, "Invalid additional field.", source={"parameter": "additional-fields[profile]"}
            )
        sort = q.get("sort") or "id"
        if sort.lstrip("-") not in PROFILE_SORTS:
            raise Rejected(400, f"'{sort}' is not a valid sort field.", source={"parameter": "sort"})
        chosen, token = page(
            request, self.profile_rows, PROFILE_FILTERS, sort, queries=self.queries, scope="profiles"
        )
        base = str(request.base_url).rstrip("/")
        fields = csv(q.get("fields[profile]")) or None
        data = [p.render(base, subscriptions="subscriptions" in extra, fields=fields) for p, _ in chosen]
        return self.limits.headed(document(request, data, token), "profiles")

    async def get_list_profiles(self, request: Request) -> Response:
        self._enter(request, "profiles")
        list_id = self._list(request)
        q = request.query_params
        sort = q.get("sort") or "joined_group_at"
        if sort.lstrip("-") != "joined_group_at":
            raise Rejected(400, f"'{sort}' is not a valid sort field.", source={"parameter": "sort"})
        chosen, token = page(
            request,
            partial(self.member_rows, list_id),
            LIST_MEMBER_FILTERS,
            sort,
            queries=self.queries,
            scope=f"list {list_id}",
        )
        base = str(request.base_url).rstrip("/")
        fields = csv(q.get("fields[profile]")) or None
        subscriptions = "subscriptions" in csv(q.get("additional-fields[profile]"))
        data = [
            p.render(
                base,
                subscriptions=subscriptions,
                fields=fields,
                extra={"joined_group_at": stamp(row["joined_group_at"])},
            )
            for p, row in chosen
        ]
        return self.limits.headed(document(request, data, token), "profiles")

    def profile_rows(self, emails: set[str] | None) -> Iterator[tuple[Profile, dict[str, Any]]]:
        """Every profile with the fields filters and sorts read; or those with one of ``emails``."""
        profiles = self.profiles.values() if emails is None else self.audience.with_emails(emails)
        return ((p, _row(p)) for p in profiles)

    def member_rows(self, list_id: str, emails: set[str] | None) -> Iterator[tuple[Profile, dict[str, Any]]]:
        """A list's members with their ``joined_group_at``; or those with one of ``emails``."""
        members = self.audience.members[list_id]
        joined: Iterable[tuple[str, datetime]] = members.items()
        if emails is not None:
            found = self.audience.with_emails(emails)
            joined = ((p.id, members[p.id]) for p in found if p.id in members)
        return (
            (self.profiles[pid], {**_row(self.profiles[pid]), "joined_group_at": at}) for pid, at in joined
        )

    # --- writing -------------------------------------------------------------------------------------
    async def create_profile(self, request: Request) -> Response:
        self._enter(request, "profiles")
        body = await read_json(request)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile":
            raise Rejected(400, "Expected type 'profile'.", source={"pointer": "/data/type"})
        errors: list[tuple[str, str]] = []
        email = _email(data, "/data/attributes", errors)
        if email is None:
            return item_errors(errors)
        existing = self.audience.find(email)
        if existing is not None:  # Klaviyo answers 409 and names the profile that already has the address
            conflict = error_document(
                409, [("A profile already exists with one of these identifiers.", None)]
            )
            conflict["errors"][0]["meta"] = {"duplicate_profile_id": existing.id}
            return JSONResponse(conflict, status_code=409, media_type=JSON_API)
        profile = self.audience.create(email, self.clock.now())
        base = str(request.base_url).rstrip("/")
        created = {
            "data": profile.render(base, subscriptions=False, fields=None),
            "links": {"self": f"{base}/api/profiles/"},
        }
        self.jobs.append(body)
        return self.limits.headed(JSONResponse(created, status_code=201, media_type=JSON_API), "profiles")

    async def subscribe(self, request: Request) -> Response:
        self._enter(request, "profiles")
        body = await read_json(request)
        data, profiles, list_id = self._job(body, "profile-subscription-bulk-create-job", 1000)
        attributes = data.get("attributes") or {}
        historical = bool(attributes.get("historical_import"))
        now = self.clock.now()
        entries: list[tuple[str, datetime | None]] = []
        errors: list[tuple[str, str]] = []
        for index, item in enumerate(profiles):
            pointer = f"/data/attributes/profiles/data/{index}/attributes"
            email = _email(item, pointer, errors)
            marketing = _marketing(item)
            if not isinstance(marketing, dict) or marketing.get("consent") != "SUBSCRIBED":
                errors.append(("'consent' must be 'SUBSCRIBED'.", f"{pointer}/{MARKETING}/consent"))
                continue
            moment = _moment(marketing.get("consented_at"))
            if historical and (moment is None or moment > now):
                detail = "'consented_at' is required for a historical import and must be in the past."
                errors.append((detail, f"{pointer}/{MARKETING}/consented_at"))
            elif email:
                entries.append((email, moment))
        if errors:
            return item_errors(errors)
        source = str(attributes.get("custom_source") or "")
        for email, moment in entries:
            profile = self.audience.find_or_create(email, now)
            self.audience.consent(profile, now, method="API", at=moment or now, detail=source)
            if list_id is not None:
                self.audience.join(profile, list_id, now)
        self.jobs.append(body)
        return self.limits.headed(Response(status_code=202), "profiles")

    async def unsubscribe(self, request: Request) -> Response:
        self._enter(request, "profiles")
        body = await read_json(request)
        _, profiles, list_id = self._job(body, "profile-subscription-bulk-delete-job", 100)
        now = self.clock.now()
        errors: list[tuple[str, str]] = []
        emails = [
            _email(item, f"/data/attributes/profiles/data/{i}/attributes", errors)
            for i, item in enumerate(profiles)
        ]
        if errors:
            return item_errors(errors)
        for email in filter(None, emails):
            profile = self.audience.find_or_create(email, now)
            if list_id is not None and profile.id in self.audience.members[list_id]:
                self.audience.leave(profile, list_id, now)
                profile.list_suppressions[list_id] = ("UNSUBSCRIBE", now)
            else:  # Klaviyo's warning: a profile not in the given list is unsubscribed globally
                self.audience.unsubscribe_globally(profile, now, method="API")
        self.jobs.append(body)
        return self.limits.headed(Response(status_code=202), "profiles")

    async def change_list(self, request: Request) -> Response:
        self._enter(request, "lists")
        list_id = self._list(request)
        body = await read_json(request)
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= 1000:
            raise Rejected(400, "'data' must list 1 to 1000 profiles.", source={"pointer": "/data"})
        errors = [
            (
                f"Profile {item.get('id') if isinstance(item, dict) else item!r} does not exist.",
                f"/data/{i}/id",
            )
            for i, item in enumerate(items)
            if not isinstance(item, dict)
            or item.get("type") != "profile"
            or item.get("id") not in self.profiles
        ]
        if errors:
            return item_errors(errors)
        now = self.clock.now()
        for item in items:
            profile = self.profiles[item["id"]]
            if request.method == "POST":
                self.audience.join(profile, list_id, now)
            else:
                self.audience.leave(profile, list_id, now)
        self.jobs.append({"method": request.method, "list": list_id, **body})
        return self.limits.headed(Response(status_code=204), "lists")

    async def delete_profile(self, request: Request) -> Response:
        self._enter(request, "privacy")
        body = await read_json(request)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "data-privacy-deletion-job":
            raise Rejected(
                400, "Expected type 'data-privacy-deletion-job'.", source={"pointer": "/data/type"}
            )
        target = ((data.get("attributes") or {}).get("profile") or {}).get("data")
        if not isinstance(target, dict):
            raise Rejected(400, "'profile' is required.", source={"pointer": "/data/attributes/profile"})
        email = (target.get("attributes") or {}).get("email")
        if not email and not target.get("id"):
            raise Rejected(
                400,
                "Give one of email, phone_number or id.",
                source={"pointer": "/data/attributes/profile/data"},
            )
        self.audience.erase(email, target.get("id"))
        self.jobs.append(body)
        return self.limits.headed(Response(status_code=202), "privacy")

    def _list(self, request: Request) -> str:
        list_id: str = request.path_params["id"]
        if list_id not in self.audience.members:
            raise Rejected(404, f"A list with id {list_id} does not exist.")
        return list_id

    def _job(self, body: Any, kind: str, maximum: int) -> tuple[dict[str, Any], list[Any], str | None]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != kind:
            raise Rejected(400, f"Expected type '{kind}'.", source={"pointer": "/data/type"})
        profiles = ((data.get("attributes") or {}).get("profiles") or {}).get("data")
        if not isinstance(profiles, list) or not profiles:
            raise Rejected(400, "'profiles' is required.", source={"pointer": "/data/attributes/profiles"})
        if len(profiles) > maximum:
            pointer = "/data/attributes/profiles/data"
            raise Rejected(400, f"At most {maximum} profiles per job.", source={"pointer": pointer})
        relation = ((data.get("relationships") or {}).get("list") or {}).get("data")
        list_id = relation.get("id") if isinstance(relation, dict) else None
        if list_id is not None and list_id not in self.audience.members:
            raise Rejected(404, f"A list with id {list_id} does not exist.")
        return data, profiles, list_id


def _email(item: Any, pointer: str, errors: list[tuple[str, str]]) -> str | None:
    email = (item.get("attributes") or {}).get("email") if isinstance(item, dict) else None
    if not isinstance(email, str):
        errors.append(("'email' is required.", f"{pointer}/email"))
        return None
    try:
        return normalise_email(email)
    except InvalidEmailError:
        errors.append((f"Invalid email address: {email!r}.", f"{pointer}/email"))
        return None


def _marketing(item: Any) -> Any:
    attributes = item.get("attributes") if isinstance(item, dict) else None
    subscriptions = (attributes or {}).get("subscriptions") or {}
    return (subscriptions.get("email") or {}).get("marketing") if isinstance(subscriptions, dict) else None


def _row(profile: Profile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "email": profile.email,
        "external_id": profile.external_id,
        "created": profile.created,
        "updated": profile.updated,
    }


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
