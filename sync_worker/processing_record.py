"""The Art. 30(1) GDPR record of processing, per configured purpose (RULES.md R36).

Everything here follows from the settings and from what the software does; nothing is read from the
ledger. Per purpose: the controller, the purpose's text and version, its legal basis, the data categories
the ledger holds for it, the recipients (each enabled connector as processor, where it maps the purpose),
retention and a summary of security measures. Secrets never appear: the database URL is masked as
``config check`` masks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from config import Settings
from config.display import masked_url, problems
from connectors.registry import connector_class

RULE = "R36"

# Shown when SYNC_POLICY__PURPOSE_TEXTS gives no text of its own for one of the default purposes.
DEFAULT_PURPOSE_TEXTS = {
    "newsletter": "E-mail newsletter of the controller: news, content and offers, sent to people who "
    "subscribed to it.",
    "promotions": "E-mail offers and promotions for the controller's own products: to people who consented, "
    "and to customers with a paid purchase for products similar to those they bought (soft opt-in, "
    "R12-R15) until they object.",
    "events": "E-mail invitations to the controller's events (R38). Confirmations and logistics for an event "
    "the person signed up for are transactional and not part of this purpose.",
    "lead_magnet": "A follow-up e-mail sequence after a requested download or other freebie (R37). Delivering "
    "the freebie itself is transactional and not part of this purpose.",
}

CONSENT_BASIS = {
    "basis": "consent",
    "law": "Art. 6(1)(a) GDPR; Art. 11.7(1) Telecommunicatiewet",
    "applies_to": "people who gave consent for this purpose, with its evidence (R1-R11)",
    "rules": ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11"],
}

# R12: soft opt-in is for promotions only; the decision core applies it to no other purpose.
SOFT_OPT_IN_PURPOSE = "promotions"


def soft_opt_in_basis(months: int) -> dict[str, Any]:
    return {
        "basis": "soft_opt_in",
        "law": "Art. 11.7(3) Telecommunicatiewet; Art. 6(1)(f) GDPR (direct marketing, Recital 47)",
        "applies_to": (
            "customers with a paid purchase from the controller, for products similar to those bought, "
            f"for {months} months after the last paid purchase, until they first object (R12-R15)"
        ),
        "rules": ["R12", "R13", "R14", "R15"],
    }


COMMON_CATEGORIES = (
    ("email_address", "E-mail address (normalised): the person's key in the ledger."),
    ("system_ids", "The person's record id in each connected system."),
    (
        "consent_events",
        "Consent events for the purpose (grant, withdrawal) and account-wide objections, spam complaints "
        "and erasures (R16-R21): event time, receive time, source system, method and collection point.",
    ),
    (
        "consent_evidence",
        "Evidence of each grant as the source gave it or its collection point declares it (R5): wording, "
        "notice and privacy-notice version, language, purpose version, affirmative action, double opt-in, "
        "and the IP address and user agent where the source gave them.",
    ),
    (
        "system_states",
        "The state each connected system last showed for the purpose, and the changes pushed to it with "
        "their outcome and rule (the reconciliation log).",
    ),
    (
        "suppression_entries",
        "Keyed hash (HMAC-SHA256) of erased addresses, with reason and date, on the suppression list; no "
        "address (R21). An erasure request keeps the address only until every connected system has "
        "deleted the person.",
    ),
)

PURCHASE_CATEGORY = (
    "purchases",
    "Purchases, for soft opt-in (R12-R15): order id, time, whether it was paid, product categories, whether "
    "the checkout offered an opt-out and whether it was used.",
)


def data_categories(purpose: str) -> list[dict[str, str]]:
    chosen = COMMON_CATEGORIES + ((PURCHASE_CATEGORY,) if purpose == SOFT_OPT_IN_PURPOSE else ())
    return [{"category": name, "description": text} for name, text in chosen]


def data_subjects(purpose: str) -> str:
    people = "People whose consent for this purpose was collected directly or through a connected system"
    customers = "; customers with a paid purchase (soft opt-in)" if purpose == SOFT_OPT_IN_PURPOSE else ""
    return f"{people}{customers}; people who withdrew, objected or asked for erasure."


def recipients(settings: Settings) -> dict[str, list[dict[str, str]]]:
    """Per purpose, every enabled connector that represents it, as processor (Capabilities.purposes)."""
    found: dict[str, list[dict[str, str]]] = {}
    for name in settings.enabled_vendors():
        vendor = settings.vendors()[name]
        for purpose, target in connector_class(name).purpose_targets(settings).items():
            found.setdefault(purpose, []).append(
                {
                    "system": name,
                    "vendor": vendor.title,
                    "kind": vendor.kind,
                    "role": "processor",
                    "maps_to": target,
                }
            )
    return found


def retention(settings: Settings) -> dict[str, Any]:
    years = settings.policy.evidence_retention_years
    return {
        "rule": "R35",
        "evidence_retention_years": years,
        "evidence": (
            f"Consent events and their evidence are kept while the grant is relied on, then {years} years "
            "(SYNC_POLICY__EVIDENCE_RETENTION_YEARS)."
        ),
        "evidence_deletion_applied": False,
        "evidence_deletion_note": (
            "Not applied yet: the ledger deletes no evidence automatically. Evidence and purchases are "
            "deleted only by an erasure (sync-worker erase, R21)."
        ),
        "suppression": "Suppression entries (keyed hashes, R21) are kept as long as the controller markets.",
    }


def database(url: str) -> dict[str, str]:
    scheme = url.partition("://")[0].partition("+")[0]
    kind = {"sqlite": "SQLite file", "postgresql": "PostgreSQL", "postgres": "PostgreSQL"}.get(scheme, scheme)
    return {"kind": kind, "location": masked_url(url)}


def security(settings: Settings) -> dict[str, Any]:
    emails_in_logs = (
        "shown in full (SYNC_LOG_SHOW_EMAILS is set)"
        if settings.log_show_emails
        else "masked as j***@example.com"
    )
    return {
        "ledger": "Append-only, hash-chained consent ledger (R32); `sync-worker ledger verify` finds any row "
        "altered, inserted or deleted.",
        "suppression_list": "Keyed hashes (HMAC-SHA256 with SYNC_SECRET_KEY) of addresses only (R21).",
        "suppression_key_set": bool(settings.secret_key),
        "secrets": "API keys, tokens and the hash key come from environment variables only and are never "
        "printed or logged.",
        "emails_in_logs": emails_in_logs,
        "database": database(settings.database_url),
    }


def warnings(settings: Settings) -> list[str]:
    found = []
    if not settings.controller:
        found.append("SYNC_CONTROLLER is not set: the record names no controller (R36)")
    purposes = settings.policy.purposes
    for purpose in purposes:
        if purpose_text(settings, purpose) is None:
            found.append(f"purpose {purpose!r} has no text: set it in SYNC_POLICY__PURPOSE_TEXTS (R36)")
    if not settings.enabled_vendors():
        found.append("no connector is enabled: the record lists no recipients")
    for name in settings.enabled_vendors():
        mapped = connector_class(name).purpose_targets(settings)
        if not mapped:
            found.append(f"{name} is enabled but maps no purpose: it is listed as no purpose's recipient")
        for purpose in mapped:
            if purpose not in purposes:
                found.append(f"{name} maps purpose {purpose!r}, which SYNC_POLICY__PURPOSES does not list")
    if settings.log_show_emails:
        found.append("SYNC_LOG_SHOW_EMAILS is set: logs show whole e-mail addresses")
    return found + problems(settings)


def purpose_text(settings: Settings, purpose: str) -> str | None:
    return settings.policy.purpose_texts.get(purpose) or DEFAULT_PURPOSE_TEXTS.get(purpose)


def record(settings: Settings, now: datetime) -> dict[str, Any]:
    """The record as one JSON-ready document with stable keys, one entry per configured purpose."""
    controller = settings.controller or None
    sent_to = recipients(settings)
    kept = retention(settings)
    secured = security(settings)
    entries = []
    for purpose in settings.policy.purposes:
        bases = [CONSENT_BASIS]
        if purpose == SOFT_OPT_IN_PURPOSE:
            bases.append(soft_opt_in_basis(settings.policy.soft_opt_in_months))
        entries.append(
            {
                "purpose": purpose,
                "controller": controller,
                "text": purpose_text(settings, purpose),
                "text_source": _text_source(settings, purpose),
                "version": settings.policy.purpose_versions.get(purpose),
                "legal_basis": bases,
                "data_subjects": data_subjects(purpose),
                "data_categories": data_categories(purpose),
                "recipients": sent_to.get(purpose, []),
                "retention": kept,
                "security": secured,
            }
        )
    return {
        "record": "Art. 30(1) GDPR record of processing activities: e-mail marketing purposes",
        "rule": RULE,
        "generated_at": now.isoformat(),
        "controller": controller,
        "purposes": entries,
        "warnings": warnings(settings),
    }


def _text_source(settings: Settings, purpose: str) -> str | None:
    if purpose in settings.policy.purpose_texts:
        return "SYNC_POLICY__PURPOSE_TEXTS"
    return "built-in" if purpose in DEFAULT_PURPOSE_TEXTS else None
