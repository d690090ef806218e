"""A faithful fake of the Klaviyo API subset the connector uses (VENDOR-APIS 2, spec revision 2026-07-15).

Paths, ``Klaviyo-API-Key`` auth, the required ``revision`` header, JSON:API bodies and error documents,
cursor paging with ``links.next``, the filters the connector sends, the subscription and list jobs with
their quirks (a list unsubscribe for a profile not in that list is a global unsubscribe), per-endpoint
burst/steady limits (429 + Retry-After; ``RateLimit-*`` headers otherwise) and fault injection.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
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
from connectors.klaviyo.sandbox_data import (
    LIST_MEMBER_FILTERS,
    PROFILE_FILTERS,
    PROFILE_SORTS,
    FilterError,
    Profile,
    decode_cursor,
    encode_cursor,
    parse_filter,
    stamp,
)
from connectors.sandbox import Clock, FaultInjector, Faults, recorder
from sync_worker.identity import InvalidEmailError, normalise_email

JSON_API = "application/vnd.api+json"
API_KEY = "pk_sandbox_5f0c2a7e9b1d4c3a8e6f0b2d4c6a8e0f"
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
# Endpoint budgets (burst per second, steady per minute) from the spec's x-klaviyo-ratelimit.
LIMITS = {"profiles": (75, 750), "lists": (10, 150), "privacy": (3, 60)}
TITLES = {
    400: ("invalid", "Invalid input."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    409: ("duplicate_profile", "Conflict."),
    429: ("throttled", "Request was throttled."),
    500: ("error", "A server error occurred."),
    503: ("error", "A server error occurred."),
}


def error_response(
    status: int, detail: str, retry_after: float | None = None, *, source: dict[str, str] | None = None
) -> Response:
    """Klaviyo's JSON:API error document (components/responses/ClientError, ServerError)."""
    code, title = TITLES.get(status, ("error", "Error."))
    error: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
    }
    if source:
        error["source"] = source
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return JSONResponse({"errors": [error]}, status_code=status, headers=headers, media_type=JSON_API)


class _Rejected(Exception):  # noqa: N818 - an early answer, not a failure of the sandbox
    def __init__(self, response: Response) -> None:
        self.response = response


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
            lists=dict(lists if lists is not None else {"promotions": "PrOm01", "events": "EvNt02"}),
            consent_purposes=consent_purposes,
        )
        self.profiles: dict[str, Profile] = {}
        self.members: dict[str, dict[str, datetime]] = {lid: {} for lid in self.purposes.lists.values()}
        self.jobs: list[dict[str, Any]] = []  # every accepted job body, for tests that inspect pushes
        self.limits_enabled = False  # the burst/steady windows; off unless a test turns them on
        self.ticks: Callable[[], float] = time.monotonic  # the rate windows' clock; tests may pin it
        self._windows: dict[tuple[str, int], tuple[int, int]] = {}  # (bucket, period) → (window, count)
        self._next_id = 0
        routes = [
            Route("/api/profiles", self.get_profiles, methods=["GET"]),
            Route("/api/profiles/", self.get_profiles, methods=["GET"]),
            Route("/api/profiles", self.create_profile, methods=["POST"]),
            Route("/api/profiles/", self.create_profile, methods=["POST"]),
            Route("/api/lists/{id}/profiles", self.get_list_profiles, methods=["GET"]),
            Route("/api/lists/{id}/profiles/", self.get_list_profiles, methods=["GET"]),
            Route("/api/lists/{id}/relationships/profiles", self.change_list, methods=["POST", "DELETE"]),
            Route("/api/lists/{id}/relationships/profiles/", self.change_list, methods=["POST", "DELETE"]),
            Route("/api/profile-subscription-bulk-create-jobs", self.subscribe, methods=["POST"]),
            Route("/api/profile-subscription-bulk-create-jobs/", self.subscribe, methods=["POST"]),
            Route("/api/profile-subscription-bulk-delete-jobs", self.unsubscribe, methods=["POST"]),
            Route("/api/profile-subscription-bulk-delete-jobs/", self.unsubscribe, methods=["POST"]),
            Route("/api/data-privacy-deletion-jobs", self.delete_profile, methods=["POST"]),
            Route("/api/data-privacy-deletion-jobs/", self.delete_profile, methods=["POST"]),
        ]
        inner = Starlette(
            routes=routes,
            middleware=[Middleware(BaseHTTPMiddleware, dispatch=recorder(self.requests))],
            exception_handlers={_Rejected: lambda _r, e: e.response},
        )
        self._app: ASGIApp = FaultInjector(inner, self.faults, error_response)

    @property
    def app(self) -> ASGIApp:
        return self._app

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
        profile = self._find(email) or self._create(email, now)
        for purpose, status in statuses.items():
            self._apply(profile, purpose, status, now)
        for key, value in vendor.items():
            setattr(profile, key, value)
        return profile.id

    def set_status(self, email: str, purpose: str, status: Status) -> None:
        profile = self._find(email)
        if profile is None:
            raise KeyError(f"no profile for {email!r}")
        self._apply(profile, purpose, status, self.clock.now())

    def status(self, email: str, purpose: str) -> Status | None:
        profile = self._find(email)
        if profile is None:
            return None
        joined = {p: self.members[lid].get(profile.id) for p, lid in self.purposes.list_purposes().items()}
        record = to_contact(
            profile.render("", subscriptions=True, fields=None),
            {p: at for p, at in joined.items() if at is not None},
            self.purposes,
        )
        return record.status_of(purpose) if isinstance(record, ContactRecord) else None

    def demo_people(self) -> list[dict[str, Any]]:
        """A small mixed audience for ``sync-worker sandbox klaviyo --seed demo``."""
        people: list[dict[str, Any]] = []
        for i in range(12):
            statuses = {"newsletter": ("subscribed", "unsubscribed", "not_subscribed")[i % 3]}
            if i % 2:
                statuses["promotions"] = "subscribed"
            if i % 5 == 4:
                statuses["events"] = "unsubscribed"
            people.append({"email": f"demo{i:02d}@example.com", "statuses": statuses})
        return people

    # --- state changes ------------------------------------------------------------------------------
    def _find(self, email: str) -> Profile | None:
        wanted = email.strip().lower()
        return next((p for p in self.profiles.values() if p.email.lower() == wanted), None)

    def _create(self, email: str, now: datetime) -> Profile:
        self._next_id += 1
        profile = Profile(id=f"01JSBX{self._next_id:020d}", email=email.strip(), created=now, updated=now)
        self.profiles[profile.id] = profile
        return profile

    def _apply(self, profile: Profile, purpose: str, status: Status, now: datetime) -> None:
        """What a person (a form, a preference page, an unsubscribe link) does to one purpose."""
        if purpose in self.purposes.consent_purposes:
            if status is Status.SUBSCRIBED:
                self._consent(profile, now, method="FORM", at=now)
            elif status is Status.UNSUBSCRIBED:
                self._global_unsubscribe(profile, now, method="PREFERENCE_PAGE")
            else:  # Klaviyo shows no pending state: a double opt-in not yet confirmed is "never subscribed"
                profile.consent, profile.consent_timestamp = "NEVER_SUBSCRIBED", None
                profile.suppression.pop("UNSUBSCRIBE", None)
        elif purpose in self.purposes.lists:
            list_id = self.purposes.lists[purpose]
            if status is Status.SUBSCRIBED:
                self.members[list_id].setdefault(profile.id, now)
                profile.list_suppressions.pop(list_id, None)
            else:
                self.members[list_id].pop(profile.id, None)
                if status is Status.UNSUBSCRIBED:
                    profile.list_suppressions[list_id] = ("UNSUBSCRIBE", now)
                else:
                    profile.list_suppressions.pop(list_id, None)
        else:
            raise KeyError(f"purpose {purpose!r} is not mapped in this sandbox")
        profile.updated = now

    def _consent(
        self, profile: Profile, now: datetime, *, method: str, at: datetime, detail: str = ""
    ) -> None:
        profile.consent, profile.consent_timestamp = "SUBSCRIBED", at
        profile.method, profile.method_detail = method, detail
        # Subscribing lifts UNSUBSCRIBE, SPAM_REPORT (SPAM_COMPLAINT) and USER_SUPPRESSED (spec text).
        for reason in ("UNSUBSCRIBE", "SPAM_COMPLAINT", "USER_SUPPRESSED"):
            profile.suppression.pop(reason, None)
        profile.updated = now

    def _global_unsubscribe(self, profile: Profile, now: datetime, *, method: str) -> None:
        profile.consent, profile.consent_timestamp, profile.method = "UNSUBSCRIBED", now, method
        profile.suppression["UNSUBSCRIBE"] = now
        profile.updated = now

    # --- request checks shared by every endpoint ----------------------------------------------------
    def _guard(self, request: Request, bucket: str) -> None:
        auth = request.headers.get("authorization")
        if not auth:
            raise _Rejected(error_response(401, "Missing or invalid authorization scheme."))
        if auth != f"Klaviyo-API-Key {API_KEY}":
            response = error_response(401, "Incorrect authentication credentials.")
            raise _Rejected(response)
        revision = request.headers.get("revision")
        if not revision or not REVISION.match(revision):
            detail = (
                "The 'revision' header is required." if not revision else f"Invalid revision {revision!r}."
            )
            raise _Rejected(error_response(400, detail, source={"parameter": "revision"}))
        if self.limits_enabled:
            self._count(bucket)

    def _count(self, bucket: str) -> None:
        now = self.ticks()
        burst, steady = LIMITS[bucket]
        for limit, period in ((burst, 1), (steady, 60)):
            window = int(now // period)
            seen_window, count = self._windows.get((bucket, period), (window, 0))
            count = count if seen_window == window else 0
            if count >= limit:
                wait = (window + 1) * period - now
                raise _Rejected(
                    error_response(
                        429,
                        f"Request was throttled. Expected available in {wait:.0f} second{'s' if wait >= 2 else ''}.",
                        wait,
                    )
                )
            self._windows[(bucket, period)] = (window, count + 1)

    def _rate_headers(self, response: Response, bucket: str) -> Response:
        """Non-429 answers carry the steady window's RateLimit-* headers (Klaviyo's rate-limit guide)."""
        steady = LIMITS[bucket][1]
        now = self.ticks()
        window, count = self._windows.get((bucket, 60), (int(now // 60), 0))
        response.headers["RateLimit-Limit"] = str(steady)
        response.headers["RateLimit-Remaining"] = str(max(0, steady - count))
        response.headers["RateLimit-Reset"] = str(max(0, int((window + 1) * 60 - now)))
        return response

    async def _body(self, request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            raise _Rejected(
                error_response(400, "Malformed JSON body.", source={"pointer": "/data"})
            ) from None

    # --- reading -------------------------------------------------------------------------------------
    async def get_profiles(self, request: Request) -> Response:
        self._guard(request, "profiles")
        q = request.query_params
        extra = _csv(q.get("additional-fields[profile]"))
        if not extra <= {"subscriptions", "predictive_analytics"}:
            raise _Rejected(
                error_response(
                    400, "Invalid additional field.", source={"parameter": "additional-fields[profile]"}
                )
            )
        sort = q.get("sort") or "id"
        if sort.lstrip("-") not in PROFILE_SORTS:
            raise _Rejected(
                error_response(400, f"'{sort}' is not a valid sort field.", source={"parameter": "sort"})
            )
        rows = [(p, _row(p)) for p in self.profiles.values()]
        page = self._page(request, rows, PROFILE_FILTERS, sort)
        base = str(request.base_url).rstrip("/")
        data = [
            p.render(
                base, subscriptions="subscriptions" in extra, fields=_csv(q.get("fields[profile]")) or None
            )
            for p, _ in page[0]
        ]
        return self._rate_headers(self._document(request, data, page[1]), "profiles")

    async def create_profile(self, request: Request) -> Response:
        self._guard(request, "profiles")
        body = await self._body(request)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile":
            raise _Rejected(error_response(400, "Expected type 'profile'.", source={"pointer": "/data/type"}))
        errors: list[tuple[str, str]] = []
        email = self._email(data, "/data/attributes", errors)
        if email is None:
            return _errors(errors)
        existing = self._find(email)
        if existing is not None:  # Klaviyo answers 409 and names the profile that already has the address
            response = error_response(409, "A profile already exists with one of these identifiers.")
            document = json.loads(bytes(response.body))
            document["errors"][0]["meta"] = {"duplicate_profile_id": existing.id}
            return JSONResponse(document, status_code=409, media_type=JSON_API)
        profile = self._create(email, self.clock.now())
        base = str(request.base_url).rstrip("/")
        document = {
            "data": profile.render(base, subscriptions=False, fields=None),
            "links": {"self": f"{base}/api/profiles/"},
        }
        return self._rate_headers(JSONResponse(document, status_code=201, media_type=JSON_API), "profiles")

    async def get_list_profiles(self, request: Request) -> Response:
        self._guard(request, "profiles")
        list_id = request.path_params["id"]
        if list_id not in self.members:
            raise _Rejected(error_response(404, f"A list with id {list_id} does not exist."))
        q = request.query_params
        sort = q.get("sort") or "joined_group_at"
        if sort.lstrip("-") != "joined_group_at":
            raise _Rejected(
                error_response(400, f"'{sort}' is not a valid sort field.", source={"parameter": "sort"})
            )
        rows = []
        for profile_id, joined in self.members[list_id].items():
            profile = self.profiles[profile_id]
            rows.append((profile, {**_row(profile), "joined_group_at": joined}))
        page = self._page(request, rows, LIST_MEMBER_FILTERS, sort)
        base = str(request.base_url).rstrip("/")
        fields = _csv(q.get("fields[profile]")) or None
        data = [
            p.render(
                base,
                subscriptions="subscriptions" in _csv(q.get("additional-fields[profile]")),
                fields=fields,
                extra={"joined_group_at": stamp(row["joined_group_at"])},
            )
            for p, row in page[0]
        ]
        return self._rate_headers(self._document(request, data, page[1]), "profiles")

    def _page(
        self,
        request: Request,
        rows: list[tuple[Profile, dict[str, Any]]],
        allowed: dict[str, set[str]],
        sort: str,
    ) -> tuple[list[tuple[Profile, dict[str, Any]]], str | None]:
        q = request.query_params
        try:
            size = int(q.get("page[size]", "20"))
        except ValueError:
            size = 0
        if not 1 <= size <= 100:
            raise _Rejected(
                error_response(
                    400, "Page size must be an integer between 1 and 100.", source={"parameter": "page[size]"}
                )
            )
        try:
            checks = parse_filter(q.get("filter"), allowed)
            after = decode_cursor(q["page[cursor]"]) if q.get("page[cursor]") else None
        except FilterError as error:
            parameter = "page[cursor]" if "cursor" in str(error) else "filter"
            raise _Rejected(error_response(400, str(error), source={"parameter": parameter})) from None
        field, descending = sort.lstrip("-"), sort.startswith("-")
        keyed = sorted(
            ((_sort_key(row[field]), p.id, p, row) for p, row in rows if all(c(row) for c in checks)),
            key=lambda item: (item[0], item[1]),
            reverse=descending,
        )
        if after is not None:
            position = (after[0], after[1])
            keyed = [k for k in keyed if ((k[0], k[1]) < position if descending else (k[0], k[1]) > position)]
        chosen = keyed[:size]
        more = len(keyed) > size
        token = encode_cursor([chosen[-1][0], chosen[-1][1]]) if more and chosen else None
        return [(p, row) for _, _, p, row in chosen], token

    def _document(self, request: Request, data: list[dict[str, Any]], token: str | None) -> Response:
        url = request.url
        links: dict[str, str] = {"self": str(url)}
        if token:
            links["next"] = str(url.include_query_params(**{"page[cursor]": token}))
        return JSONResponse({"data": data, "links": links}, media_type=JSON_API)

    # --- writing (subscription jobs, list relationships, deletion) ------------------------------------
    async def subscribe(self, request: Request) -> Response:
        self._guard(request, "profiles")
        body = await self._body(request)
        data, profiles, list_id = self._job(body, "profile-subscription-bulk-create-job", 1000)
        attributes = data.get("attributes") or {}
        historical = bool(attributes.get("historical_import"))
        now = self.clock.now()
        entries: list[tuple[str, datetime | None]] = []
        errors: list[tuple[str, str]] = []
        for index, item in enumerate(profiles):
            pointer = f"/data/attributes/profiles/data/{index}/attributes"
            email = self._email(item, pointer, errors)
            marketing = (((item.get("attributes") or {}).get("subscriptions") or {}).get("email") or {}).get(
                "marketing"
            )
            if not isinstance(marketing, dict) or marketing.get("consent") != "SUBSCRIBED":
                errors.append(
                    ("'consent' must be 'SUBSCRIBED'.", f"{pointer}/subscriptions/email/marketing/consent")
                )
                continue
            at = marketing.get("consented_at")
            moment = _moment(at) if at else None
            if historical and (moment is None or moment > now):
                errors.append(
                    (
                        "'consented_at' is required for a historical import and must be in the past.",
                        f"{pointer}/subscriptions/email/marketing/consented_at",
                    )
                )
                continue
            if email:
                entries.append((email, moment))
        if errors:
            return _errors(errors)
        for email, moment in entries:
            profile = self._find(email) or self._create(email, now)
            self._consent(
                profile,
                now,
                method="API",
                at=moment or now,
                detail=str(attributes.get("custom_source") or ""),
            )
            if list_id is not None:
                self.members[list_id].setdefault(profile.id, now)
                profile.list_suppressions.pop(list_id, None)
        self.jobs.append(body)
        return self._rate_headers(Response(status_code=202), "profiles")

    async def unsubscribe(self, request: Request) -> Response:
        self._guard(request, "profiles")
        body = await self._body(request)
        _, profiles, list_id = self._job(body, "profile-subscription-bulk-delete-job", 100)
        now = self.clock.now()
        errors: list[tuple[str, str]] = []
        emails = [
            self._email(item, f"/data/attributes/profiles/data/{i}/attributes", errors)
            for i, item in enumerate(profiles)
        ]
        if errors:
            return _errors(errors)
        for email in filter(None, emails):
            profile = self._find(email) or self._create(email, now)
            if list_id is not None and profile.id in self.members[list_id]:
                self.members[list_id].pop(profile.id)
                profile.list_suppressions[list_id] = ("UNSUBSCRIBE", now)
                profile.updated = now
            else:  # Klaviyo's warning: a profile not in the given list is unsubscribed globally
                self._global_unsubscribe(profile, now, method="API")
        self.jobs.append(body)
        return self._rate_headers(Response(status_code=202), "profiles")

    def _job(self, body: Any, kind: str, maximum: int) -> tuple[dict[str, Any], list[Any], str | None]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != kind:
            raise _Rejected(error_response(400, f"Expected type '{kind}'.", source={"pointer": "/data/type"}))
        profiles = ((data.get("attributes") or {}).get("profiles") or {}).get("data")
        if not isinstance(profiles, list) or not profiles:
            raise _Rejected(
                error_response(
                    400, "'profiles' is required.", source={"pointer": "/data/attributes/profiles"}
                )
            )
        if len(profiles) > maximum:
            raise _Rejected(
                error_response(
                    400,
                    f"At most {maximum} profiles per job.",
                    source={"pointer": "/data/attributes/profiles/data"},
                )
            )
        relation = ((data.get("relationships") or {}).get("list") or {}).get("data")
        list_id = relation.get("id") if isinstance(relation, dict) else None
        if list_id is not None and list_id not in self.members:
            raise _Rejected(error_response(404, f"A list with id {list_id} does not exist."))
        return data, profiles, list_id

    def _email(self, item: Any, pointer: str, errors: list[tuple[str, str]]) -> str | None:
        email = (item.get("attributes") or {}).get("email") if isinstance(item, dict) else None
        try:
            if isinstance(email, str):
                return normalise_email(email)
        except InvalidEmailError:
            errors.append((f"Invalid email address: {email!r}.", f"{pointer}/email"))
            return None
        errors.append(("'email' is required.", f"{pointer}/email"))
        return None

    async def change_list(self, request: Request) -> Response:
        self._guard(request, "lists")
        list_id = request.path_params["id"]
        if list_id not in self.members:
            raise _Rejected(error_response(404, f"A list with id {list_id} does not exist."))
        body = await self._body(request)
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or len(items) > 1000:
            raise _Rejected(
                error_response(400, "'data' must list 1 to 1000 profiles.", source={"pointer": "/data"})
            )
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
            return _errors(errors)
        now = self.clock.now()
        for item in items:
            profile = self.profiles[item["id"]]
            if request.method == "POST":
                self.members[list_id].setdefault(profile.id, now)
            else:
                self.members[list_id].pop(profile.id, None)
            profile.updated = now  # assumed: a membership change moves the profile's `updated`
        self.jobs.append({"method": request.method, "list": list_id, **body})
        return self._rate_headers(Response(status_code=204), "lists")

    async def delete_profile(self, request: Request) -> Response:
        self._guard(request, "privacy")
        body = await self._body(request)
        data = body.get("data") if isinstance(body, dict) else None
        target = (
            ((((data or {}).get("attributes") or {}).get("profile") or {}).get("data") or {})
            if isinstance(data, dict)
            else {}
        )
        if (
            not isinstance(data, dict)
            or data.get("type") != "data-privacy-deletion-job"
            or not isinstance(target, dict)
        ):
            raise _Rejected(
                error_response(
                    400, "Expected type 'data-privacy-deletion-job'.", source={"pointer": "/data/type"}
                )
            )
        email = (target.get("attributes") or {}).get("email")
        profile_id = target.get("id")
        doomed = [
            p
            for p in self.profiles.values()
            if (email and p.email.lower() == str(email).lower()) or p.id == profile_id
        ]
        for profile in doomed:
            del self.profiles[profile.id]
            for members in self.members.values():
                members.pop(profile.id, None)
        self.jobs.append(body)
        return self._rate_headers(Response(status_code=202), "privacy")


def _errors(items: list[tuple[str, str]]) -> Response:
    """One 400 for the whole job, one error object per bad item, each pointing at it."""
    errors = [
        {
            "id": str(uuid.uuid4()),
            "status": 400,
            "code": "invalid",
            "title": "Invalid input.",
            "detail": detail,
            "source": {"pointer": pointer},
        }
        for detail, pointer in items
    ]
    return JSONResponse({"errors": errors}, status_code=400, media_type=JSON_API)


def _csv(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def _row(profile: Profile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "email": profile.email,
        "external_id": profile.external_id,
        "created": profile.created,
        "updated": profile.updated,
    }


def _sort_key(value: Any) -> str:
    return stamp(value) if isinstance(value, datetime) else str(value or "").lower()


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
