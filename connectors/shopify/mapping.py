"""Pure translation between Shopify Admin GraphQL nodes and canonical records (no I/O).

Purpose mapping (config ``purposes``): the value ``"consent"`` means the customer's e-mail marketing consent
(Shopify's only consent flag); any other value is a customer tag whose presence means subscribed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors import fields
from connectors.base import (
    Action,
    ContactRecord,
    Evidence,
    GlobalState,
    PurchaseRecord,
    PurposeState,
    RecordError,
    Status,
)
from connectors.fields import FieldError, email_field, time_field

SYSTEM = "shopify"
CONSENT = "consent"  # purpose mapping value meaning "the customer's e-mail marketing consent"

STATE_STATUS = {
    "SUBSCRIBED": Status.SUBSCRIBED,
    "PENDING": Status.PENDING,
    "UNSUBSCRIBED": Status.UNSUBSCRIBED,
    "NOT_SUBSCRIBED": Status.NOT_SUBSCRIBED,
    # Facts Shopify sets itself: no subscription either way, the account-wide state says why.
    "REDACTED": Status.NOT_SUBSCRIBED,
    "INVALID": Status.NOT_SUBSCRIBED,
}
STATE_GLOBAL = {"REDACTED": GlobalState.ERASED, "INVALID": GlobalState.BOUNCED}
READ_ONLY_STATES = frozenset(STATE_GLOBAL)
# Paid at least in part: the ground for soft opt-in (R12a). Refunded, voided, pending and the like are not.
PAID_STATES = frozenset({"PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED"})
# Shopify's userError for a customer id that no longer resolves (deleted by staff), per mutation:
# (code or None where the error has none, field path, message), as the live Admin API answers them
# (consent: 2026-04; tags: 2025-01). The consent mutation's code INVALID also marks payload errors at the
# same path ("Customer must have an email address" in the sandbox), so path and message must match too.
CUSTOMER_GONE = {
    "customerEmailMarketingConsentUpdate": ("INVALID", ["input", "customerId"], "Customer not found"),
    "tagsAdd": (None, ["id"], "Customer does not exist"),
    "tagsRemove": (None, ["id"], "Customer does not exist"),
}
CHECKOUT_POINT = "shopify:checkout"
CONFIRMED_POINT = "shopify:confirmed-opt-in"


def format_time(moment: datetime) -> str:
    """Shopify's DateTime: ISO 8601 in UTC to the second, with a Z."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def read_time(text: str) -> datetime:
    """A Shopify DateTime (or any ISO 8601 stamp; one without an offset is UTC); ValueError when it is none."""
    return fields.read_time(text, naive_utc=True)


def stamp_of(node: Mapping[str, Any]) -> tuple[str, datetime] | None:
    """(id, updatedAt) of a node for the incremental watermark, when both are readable."""
    try:
        moment = time_field(node.get("updatedAt"), "updatedAt", required=True, naive_utc=True)
    except FieldError:
        return None
    node_id = node.get("id")
    return (node_id, moment) if isinstance(node_id, str) else None


def _evidence(
    consent: Mapping[str, Any], consent_at: datetime | None, checkout_preselected: bool
) -> Evidence:
    """Shopify records no collection point; an unconfirmed opt-in is taken as the checkout box. When that
    box is pre-selected, the grant shows a pre-ticked box and grants nothing (R3); a confirmed (double)
    opt-in was an act of its own."""
    level = consent.get("marketingOptInLevel")
    confirmed = level == "CONFIRMED_OPT_IN"
    return Evidence(
        consent_at=consent_at,
        method="double_opt_in" if confirmed else "checkout",
        collection_point=CONFIRMED_POINT if confirmed else CHECKOUT_POINT,
        double_opt_in=None if level in (None, "UNKNOWN") else confirmed,
        prechecked=False if confirmed else checkout_preselected,
        detail=f"marketingOptInLevel={level}",
    )


def _contact(
    node: Mapping[str, Any], purposes: Mapping[str, str], checkout_preselected: bool
) -> ContactRecord:
    external_id = node["id"]
    email = email_field(
        (node.get("defaultEmailAddress") or {}).get("emailAddress"), "defaultEmailAddress.emailAddress"
    )
    updated_at = time_field(node.get("updatedAt"), "updatedAt", required=True, naive_utc=True)
    consent = node.get("emailMarketingConsent") or {}
    state = consent.get("marketingState", "NOT_SUBSCRIBED")
    if state not in STATE_STATUS:
        raise FieldError("emailMarketingConsent.marketingState", f"unknown state {state!r}")
    consent_at = time_field(
        consent.get("consentUpdatedAt"), "emailMarketingConsent.consentUpdatedAt", naive_utc=True
    )
    tags = node.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise FieldError("tags", "expected a list of strings")
    present = {t.strip().lower() for t in tags}
    states = []
    for purpose, target in purposes.items():
        if target == CONSENT:
            states.append(PurposeState(purpose, STATE_STATUS[state], consent_at))
        else:
            held = Status.SUBSCRIBED if target.lower() in present else Status.NOT_SUBSCRIBED
            states.append(PurposeState(purpose, held))
    granted = state in ("SUBSCRIBED", "PENDING")
    return ContactRecord(
        system=SYSTEM,
        external_id=external_id,
        email=email,
        updated_at=updated_at,
        purposes=tuple(states),
        global_state=STATE_GLOBAL.get(state, GlobalState.ACTIVE),
        global_changed_at=consent_at if state in STATE_GLOBAL else None,
        reason=f"Shopify marketingState {state}" if state in STATE_GLOBAL else None,
        evidence=_evidence(consent, consent_at, checkout_preselected) if granted else None,
        tags=frozenset(tags),
    )


def to_contact(
    node: Mapping[str, Any], purposes: Mapping[str, str], *, checkout_preselected: bool
) -> ContactRecord | RecordError:
    """A customer node as a ContactRecord, or a RecordError naming the customer and the field."""
    node_id = node.get("id")
    if not isinstance(node_id, str):
        return RecordError(SYSTEM, None, "id", "customer without an id")
    try:
        return _contact(node, purposes, checkout_preselected)
    except FieldError as error:
        return error.for_record(SYSTEM, node_id)


def _categories(lines: Any, category_map: Mapping[str, str]) -> tuple[str, ...]:
    """R12c: product type (mapped, or as is) and product tags that the category map names."""
    found: set[str] = set()
    for line in (lines or {}).get("nodes") or []:
        product = (line or {}).get("product") or {}
        product_type = (product.get("productType") or "").strip()
        if product_type:
            found.add(category_map.get(product_type, product_type))
        found.update(category_map[tag] for tag in product.get("tags") or [] if tag in category_map)
    return tuple(sorted(found))


def to_purchase(node: Mapping[str, Any], category_map: Mapping[str, str]) -> PurchaseRecord | RecordError:
    node_id = node.get("id")
    if not isinstance(node_id, str):
        return RecordError(SYSTEM, None, "id", "order without an id")
    try:
        email = email_field(node.get("email"), "email")
        occurred_at = time_field(node.get("processedAt"), "processedAt", required=True, naive_utc=True)
    except FieldError as error:
        return error.for_record(SYSTEM, node_id)
    return PurchaseRecord(
        system=SYSTEM,
        order_id=node_id,
        email=email,
        occurred_at=occurred_at,
        paid=node.get("displayFinancialStatus") in PAID_STATES,
        categories=_categories(node.get("lineItems"), category_map),
        customer_id=(node.get("customer") or {}).get("id"),
    )


def consent_input(action: Action, consent_at: datetime | None) -> dict[str, Any]:
    """CustomerEmailMarketingConsentInput. An opt-out is written UNSUBSCRIBED: NOT_SUBSCRIBED cannot be set."""
    state = "SUBSCRIBED" if action is Action.SUBSCRIBE else "UNSUBSCRIBED"
    out: dict[str, Any] = {"marketingState": state}
    if action is Action.SUBSCRIBE:
        out["marketingOptInLevel"] = "SINGLE_OPT_IN"
    if action is Action.SUBSCRIBE and consent_at is not None:
        out["consentUpdatedAt"] = format_time(consent_at)
    return out


def customer_gone(mutation: str, payload: Mapping[str, Any]) -> bool:
    """Whether a mutation's answer says the customer no longer exists: one userError, exactly Shopify's
    "not found" for that mutation, and no customer (or node) in the payload."""
    expected = CUSTOMER_GONE.get(mutation)
    problems = payload.get("userErrors") or []
    if expected is None or len(problems) != 1 or payload.get("customer") or payload.get("node"):
        return False
    code, path, message = expected
    problem = problems[0]
    return (
        (code is None or problem.get("code") == code)
        and list(problem.get("field") or []) == path
        and problem.get("message") == message
    )
