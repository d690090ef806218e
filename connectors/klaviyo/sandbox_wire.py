"""The Klaviyo sandbox's wire format: JSON:API error documents, credentials and revision checks, the
per-endpoint rate windows, Klaviyo's filter mini-language and keyset cursor paging.

Filters served: ``greater-than``, ``less-than``, ``greater-or-equal``, ``less-or-equal``, ``equals`` and
``any``, over the fields each endpoint allows in the spec.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.sandbox_changes import Queries

JSON_API = "application/vnd.api+json"
API_KEY = "pk_sandbox_5f0c2a7e9b1d4c3a8e6f0b2d4c6a8e0f"
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
# Endpoint budgets (burst per second, steady per minute) from the spec's x-klaviyo-ratelimit.
LIMITS = {"profiles": (75, 750), "lists": (10, 150), "privacy": (3, 60)}
TITLES = {
    400: ("invalid", "Invalid input."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    404: ("not_found", "Not found."),
    409: ("duplicate_profile", "Conflict."),
    429: ("throttled", "Request was throttled."),
    500: ("error", "A server error occurred."),
    503: ("error", "A server error occurred."),
}
PROFILE_FILTERS = {
    "id": {"any", "equals"},
    "email": {"any", "equals"},
    "external_id": {"any", "equals"},
    "created": {"greater-than", "less-than"},
    "updated": {"greater-than", "less-than"},
}
LIST_MEMBER_FILTERS = {
    "email": {"any", "equals"},
    "joined_group_at": {"greater-than", "less-than", "greater-or-equal", "less-or-equal"},
}
PROFILE_SORTS = {"created", "email", "id", "updated"}
_FILTER = re.compile(r"^(?P<op>[a-z-]+)\((?P<field>[a-z_.]+),(?P<value>.+)\)$")


class FilterError(ValueError):
    """A filter Klaviyo would refuse; the message is the error's ``detail``."""


def error_document(status: int, details: list[tuple[str, dict[str, str] | None]]) -> dict[str, Any]:
    """Klaviyo's JSON:API error document (components/responses/ClientError, ServerError)."""
    code, title = TITLES.get(status, ("error", "Error."))
    errors = []
    for detail, source in details:
        error: dict[str, Any] = {"id": str(uuid.uuid4()), "status": status, "code": code, "title": title}
        error["detail"] = detail
        if source:
            error["source"] = source
        errors.append(error)
    return {"errors": errors}


def error_response(status: int, detail: str, retry_after: float | None = None) -> Response:
    """One error; the signature FaultInjector expects for its injected 429 and 5xx answers."""
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    document = error_document(status, [(detail, None)])
    return JSONResponse(document, status_code=status, headers=headers, media_type=JSON_API)


def item_errors(items: list[tuple[str, str]]) -> Response:
    """One 400 for a whole job, with one error per bad item, each pointing at it."""
    document = error_document(400, [(detail, {"pointer": pointer}) for detail, pointer in items])
    return JSONResponse(document, status_code=400, media_type=JSON_API)


class Rejected(Exception):  # noqa: N818 - an early answer to the request, not a failure of the sandbox
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        source: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        document = error_document(status, [(detail, source)])
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
        self.response = JSONResponse(document, status_code=status, headers=headers, media_type=JSON_API)
        super().__init__(detail)


def check_credentials(request: Request) -> None:
    auth = request.headers.get("authorization")
    if not auth:
        raise Rejected(401, "Missing or invalid authorization scheme.")
    if auth != f"Klaviyo-API-Key {API_KEY}":
        raise Rejected(401, "Incorrect authentication credentials.")
    revision = request.headers.get("revision")
    if not revision or not REVISION.match(revision):
        detail = "The 'revision' header is required." if not revision else f"Invalid revision {revision!r}."
        raise Rejected(400, detail, source={"parameter": "revision"})


async def read_json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise Rejected(400, "Malformed JSON body.", source={"pointer": "/data"}) from None


class RateWindows:
    """Fixed burst (1 s) and steady (60 s) windows per endpoint bucket, as Klaviyo counts them per account."""

    def __init__(self) -> None:
        self.enabled = False  # off unless a test turns them on: injected faults cover ordinary runs
        self.ticks: Callable[[], float] = time.monotonic  # the windows' clock; tests may pin it
        self._counts: dict[tuple[str, int], tuple[int, int]] = {}  # (bucket, period) → (window, count)

    def count(self, bucket: str) -> None:
        if not self.enabled:
            return
        now = self.ticks()
        burst, steady = LIMITS[bucket]
        for limit, period in ((burst, 1), (steady, 60)):
            window = int(now // period)
            seen_window, count = self._counts.get((bucket, period), (window, 0))
            count = count if seen_window == window else 0
            if count >= limit:
                wait = (window + 1) * period - now
                raise Rejected(
                    429,
                    f"Request was throttled. Expected available in {wait:.0f} second(s).",
                    retry_after=wait,
                )
            self._counts[(bucket, period)] = (window, count + 1)

    def headed(self, response: Response, bucket: str) -> Response:
        """Non-429 answers carry the steady window's RateLimit-* headers (Klaviyo's rate-limit guide)."""
        steady = LIMITS[bucket][1]
        now = self.ticks()
        window, count = self._counts.get((bucket, 60), (int(now // 60), 0))
        response.headers["RateLimit-Limit"] = str(steady)
        response.headers["RateLimit-Remaining"] = str(max(0, steady - count))
        response.headers["RateLimit-Reset"] = str(max(0, int((window + 1) * 60 - now)))
        return response


Row = tuple[Any, dict[str, Any]]  # (item, the fields filters and sorts look at)


Keyed = tuple[str, str, Any, dict[str, Any]]  # (sort key, id, item, row): a row in a list's order
_position = itemgetter(0, 1)  # (sort key, id): unique, and what a cursor holds


def page(
    request: Request,
    rows: Callable[[set[str] | None], Iterable[Row]],
    allowed: dict[str, set[str]],
    sort: str,
    *,
    queries: Queries,
    scope: str,
) -> tuple[list[Row], str | None]:
    """One page of the rows after filter, sort and ``page[cursor]``; and the next page's cursor.

    ``rows(emails)`` yields the rows to consider (``scope`` names them: the profiles, or one list's
    members): every row, or (given lower-cased addresses, when the filter names them with
    ``equals``/``any`` on ``email``) at least every row with one of those addresses, so that a lookup of
    a page's hundred addresses reads those hundred and not the whole account. A list read page by page
    is filtered and sorted once; its next pages are cut from that (``queries``) until the account changes.
    """
    q = request.query_params
    try:
        size = int(q.get("page[size]", "20"))
    except ValueError:
        size = 0
    if not 1 <= size <= 100:
        raise Rejected(
            400, "Page size must be an integer between 1 and 100.", source={"parameter": "page[size]"}
        )
    try:
        terms = parse_filter(q.get("filter"), allowed)
    except FilterError as error:
        raise Rejected(400, str(error), source={"parameter": "filter"}) from None
    after = decode_cursor(q["page[cursor]"]) if q.get("page[cursor]") else None
    field, descending = sort.lstrip("-"), sort.startswith("-")
    checks = [term.test for term in terms]
    emails = email_lookup(terms)

    def ordered() -> list[Keyed]:
        keyed = [
            (sort_key(row[field]), str(row["id"]), item, row)
            for item, row in rows(emails)
            if all(c(row) for c in checks)
        ]
        keyed.sort(key=_position)
        return keyed

    ascending = ordered() if emails is not None else queries.get((scope, q.get("filter"), field), ordered)
    # The page and the one row that tells whether another follows.
    if descending:
        end = bisect.bisect_left(ascending, after, key=_position) if after is not None else len(ascending)
        chosen = ascending[max(0, end - size - 1) : end][::-1]
    else:
        start = bisect.bisect_right(ascending, after, key=_position) if after is not None else 0
        chosen = ascending[start : start + size + 1]
    token = encode_cursor(chosen[size - 1][0], chosen[size - 1][1]) if len(chosen) > size else None
    return [(item, row) for _, _, item, row in chosen[:size]], token


def email_lookup(terms: list[Term]) -> set[str] | None:
    """The lower-cased addresses every match must have, if an ``equals``/``any`` term on email says so."""
    found: set[str] | None = None
    for term in terms:
        if term.name == "email" and term.op in ("equals", "any"):
            values = term.value if term.op == "any" else [term.value]
            wanted = {str(v).lower() for v in values}
            found = wanted if found is None else found & wanted
    return found


def document(request: Request, data: list[dict[str, Any]], token: str | None) -> Response:
    links: dict[str, str] = {"self": str(request.url)}
    if token:
        links["next"] = str(request.url.include_query_params(**{"page[cursor]": token}))
    return JSONResponse({"data": data, "links": links}, media_type=JSON_API)


def csv(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def sort_key(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "").lower()


class Term(NamedTuple):
    """One ``op(field,value)`` filter term and its test of a row."""

    op: str
    name: str
    value: Any
    test: Callable[[dict[str, Any]], bool]


def parse_filter(text: str | None, allowed: dict[str, set[str]]) -> list[Term]:
    """Klaviyo's ``op(field,value)`` terms, joined by commas at top level (``and`` is implied)."""
    if not text:
        return []
    terms = []
    for term in _split_terms(text):
        match = _FILTER.match(term.strip())
        if not match:
            raise FilterError(f"Invalid filter provided: {term!r}")
        op, name, raw = match["op"], match["field"], match["value"]
        if name not in allowed:
            raise FilterError(f"'{name}' is not a valid field for the resource")
        if op not in allowed[name]:
            raise FilterError(f"'{op}' is not a valid operator for '{name}'")
        value = _value(raw, op)
        terms.append(Term(op, name, value, _check(op, name, value)))
    return terms


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses, brackets and quotes."""
    terms, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote and text[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _value(raw: str, op: str) -> Any:
    raw = raw.strip()
    if op == "any":
        try:  # double-quoted values are JSON; single-quoted ones (Klaviyo allows both) are not
            values = json.loads(raw)
        except ValueError:
            try:
                values = json.loads(raw.replace("'", '"'))
            except ValueError:
                raise FilterError(f"Invalid list in filter: {raw[:60]!r}") from None
        if not isinstance(values, list) or len(values) > 100:
            raise FilterError("'any' takes a list of at most 100 values")
        return values
    if raw[:1] in "\"'":
        return raw[1:-1]
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"Invalid date-time in filter: {raw!r}") from None


def _check(op: str, name: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    # Made once per request, not once per row: a filter is tried on every row of the account.
    lowered = {str(v).lower() for v in value} if op == "any" else set()

    def compare(row: dict[str, Any]) -> bool:
        have = row.get(name)
        if op == "equals":
            return bool(have == value or (isinstance(have, str) and have.lower() == str(value).lower()))
        if op == "any":
            return isinstance(have, str) and have.lower() in lowered
        if have is None:
            return False
        if op == "greater-than":
            return bool(have > value)
        if op == "less-than":
            return bool(have < value)
        if op == "greater-or-equal":
            return bool(have >= value)
        return bool(have <= value)

    return compare


def encode_cursor(key: str, item_id: str) -> str:
    """An opaque keyset cursor: the sort key and id of the last item served."""
    return base64.urlsafe_b64encode(json.dumps([key, item_id]).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[str, str]:
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != 2 or not all(isinstance(v, str) for v in values):
        raise Rejected(400, "Invalid page cursor.", source={"parameter": "page[cursor]"})
    return values[0], values[1]
