"""How the HubSpot sandbox reads requests and writes answers: validation, search matching, error bodies.

HubSpot refuses a malformed request whole with 400 ``VALIDATION_ERROR`` naming the input (``errors[].in``);
a batch whose items are well-formed but partly impossible answers 207 with per-item ``errors``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from operator import eq, ge, gt, le, lt, ne
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.hubspot.sandbox_data import (
    DATE_PROPERTIES,
    LEGAL_BASES,
    STATES,
    Contact,
    correlation_id,
    iso,
    millis,
)


class InvalidRequestError(Exception):
    """A request HubSpot refuses whole with 400 VALIDATION_ERROR; ``field`` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


def error_response(status: int, message: str, retry_after: float | None = None, **extra: Any) -> Response:
    """HubSpot's error body: ``{"status": "error", "message", "correlationId", "category", ...}``."""
    categories = {
        400: "VALIDATION_ERROR",
        401: "INVALID_AUTHENTICATION",
        403: "MISSING_SCOPES",
        404: "OBJECT_NOT_FOUND",
        409: "CONFLICT",
    }
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": correlation_id()}
    if status == 429:
        # HubSpot's documented 429 body has errorType/policyName/requestId instead of a category.
        body |= {
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
            "requestId": correlation_id(),
        }
    else:
        body["category"] = categories.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
    body |= extra
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


def missing_scopes(scope: str) -> Response:
    """HubSpot's 403 for a token without a scope (the batch status scopes need Marketing Hub Enterprise)."""
    return error_response(
        403,
        "This app hasn't been granted all required scopes to make this call. "
        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as error:
        raise InvalidRequestError(f"Invalid input JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidRequestError("Invalid input JSON: expected an object")
    return body


async def email_inputs(request: Request) -> list[str]:
    if request.query_params.get("channel") != "EMAIL":
        raise InvalidRequestError("channel is required and must be EMAIL", "channel")
    body = await json_body(request)
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise InvalidRequestError("inputs must be an array of strings", "inputs")
    return inputs


def check_status_request(item: Any, where: str) -> None:
    """PublicStatusRequest: channel, statusState, subscriberIdString and an int64 subscriptionId are required."""
    if not isinstance(item, dict):
        raise InvalidRequestError("must be an object", where or "body")
    where = f"{where}." if where else ""
    if item.get("channel") != "EMAIL":
        raise InvalidRequestError("channel must be EMAIL", f"{where}channel")
    if item.get("statusState") not in STATES:
        raise InvalidRequestError(f"statusState must be one of {', '.join(STATES)}", f"{where}statusState")
    if not isinstance(item.get("subscriberIdString"), str):
        raise InvalidRequestError("subscriberIdString is required", f"{where}subscriberIdString")
    if not isinstance(item.get("subscriptionId"), int) or isinstance(item.get("subscriptionId"), bool):
        raise InvalidRequestError("subscriptionId must be an integer", f"{where}subscriptionId")
    if "legalBasis" in item and item["legalBasis"] not in LEGAL_BASES:
        raise InvalidRequestError(f"legalBasis must be one of {', '.join(LEGAL_BASES)}", f"{where}legalBasis")


def search_request(body: Mapping[str, Any]) -> tuple[list[list[Mapping[str, Any]]], int, int]:
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) > 5:
        raise InvalidRequestError("at most 5 filterGroups are allowed", "filterGroups")
    filters = [g.get("filters") or [] for g in groups if isinstance(g, dict)]
    if len(filters) != len(groups) or sum(len(f) for f in filters) > 25:
        raise InvalidRequestError("at most 25 filters in all are allowed", "filterGroups")
    for group in filters:
        for item in group:
            if item.get("operator") not in OPERATORS or not item.get("propertyName"):
                raise InvalidRequestError(f"unsupported filter {item!r}", "filterGroups.filters")
    limit = parse_int(str(body.get("limit", 10)), "limit", 1, 200)
    offset = parse_int(str(body.get("after") or "0"), "after", 0, None)
    return filters, limit, offset


def parse_int(value: str, name: str, low: int, high: int | None) -> int:
    if not value.isdigit() or int(value) < low or (high is not None and int(value) > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidRequestError(f"{name} must be an integer {bounds}, got {value!r}", name)
    return int(value)


def property_names(raw: list[str]) -> list[str]:
    return [name for chunk in raw for name in chunk.split(",") if name]


def sortable(contact: Contact, name: str) -> tuple[int, str]:
    if name in ("lastmodifieddate", "createdate"):
        return millis(contact.updated if name == "lastmodifieddate" else contact.created), ""
    if name == "hs_object_id":
        return contact.id, ""
    return 0, (contact.value(name) or "").lower()


def invalid(error: InvalidRequestError) -> Response:
    details = [{"message": str(error), "in": error.field}] if error.field else []
    return error_response(400, str(error), errors=details)


def envelope(results: list[Any], now: str) -> dict[str, Any]:
    return {
        "status": "COMPLETE",
        "results": results,
        "requestedAt": now,
        "startedAt": now,
        "completedAt": now,
    }


def batch_answer(results: list[Any], errors: list[Any], now: str) -> Response:
    """200 when every item went through; 207 with ``errors`` and ``numErrors`` when some did not."""
    body = envelope(results, now)
    if errors:
        body |= {"errors": errors, "numErrors": len(errors)}
    return JSONResponse(body, status_code=207 if errors else 200)


# -- CRM search (POST /crm/v3/objects/contacts/search)

OPERATORS = frozenset(
    {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
)


COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "EQ": eq,
    "NEQ": ne,
    "LT": lt,
    "LTE": le,
    "GT": gt,
    "GTE": ge,
}


# A search tries its filters on every contact of the portal, for every page: a filter's own value, and the
# dates contacts share (stamped by the second), are read once instead of once per contact.
@functools.lru_cache(maxsize=1 << 16)
def _comparable(name: str, value: str | None) -> str | int | None:
    """Dates compare as epoch milliseconds (HubSpot takes either millis or ISO in filters); text case-blind."""
    if value is None:
        return None
    if name in DATE_PROPERTIES:
        if value.lstrip("-").isdigit():
            return int(value)
        return millis(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return value.lower()


def _stamp(contact: Contact, name: str) -> int | str | None:
    """``_comparable`` of a date property's value, without writing and parsing its text per contact."""
    moment = contact.created if name == "createdate" else contact.updated
    return _stamp_of(moment, moment.utcoffset())


@functools.lru_cache(maxsize=1 << 16)
def _stamp_of(moment: datetime, _offset: timedelta | None) -> int | str | None:
    # The offset is in the key: equal moments in other zones are equal keys, but their text differs.
    return _comparable("lastmodifieddate", iso(moment))


def matches(contact: Contact, search_filter: Mapping[str, Any]) -> bool:
    name = str(search_filter["propertyName"])
    operator = str(search_filter["operator"])
    have = _stamp(contact, name) if name in DATE_PROPERTIES else _comparable(name, contact.value(name))
    if operator == "HAS_PROPERTY":
        return have is not None
    if operator == "NOT_HAS_PROPERTY":
        return have is None
    if operator in ("IN", "NOT_IN"):
        values = {_comparable(name, str(v)) for v in search_filter.get("values") or []}
        return bool((have in values) == (operator == "IN"))
    if have is None:
        return bool(operator == "NEQ")
    want = _comparable(name, str(search_filter.get("value")))
    if operator == "BETWEEN":
        high = _comparable(name, str(search_filter.get("highValue")))
        return want <= have <= high  # type: ignore[operator]
    return bool(COMPARISONS[operator](have, want))


def sort_key(sorts: list[Any]) -> tuple[str, bool]:
    """The one sort HubSpot applies: ``{"propertyName", "direction"}`` (docs) or a bare property name (spec)."""
    if not sorts:
        return "hs_object_id", False
    first = sorts[0]
    if isinstance(first, str):
        return first.lstrip("-"), first.startswith("-")
    return str(first.get("propertyName")), first.get("direction") == "DESCENDING"


def contact_properties(body: Mapping[str, Any]) -> dict[str, str]:
    properties = body.get("properties")
    if not isinstance(properties, dict) or not all(isinstance(v, str) for v in properties.values()):
        raise InvalidRequestError("properties must be an object of strings", "properties")
    return properties


def gdpr_object_id(body: Mapping[str, Any]) -> str:
    object_id = body.get("objectId")
    if not isinstance(object_id, str) or not object_id:
        raise InvalidRequestError("objectId is required", "objectId")
    return object_id


def status_inputs(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise InvalidRequestError("inputs must be an array", "inputs")
    for index, item in enumerate(inputs):
        check_status_request(item, f"inputs[{index}]")
    return inputs
