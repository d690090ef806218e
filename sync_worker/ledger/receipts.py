"""Art. 15 export of one person, with a consent receipt per grant (ISO/IEC TS 27560, Kantara CR v1.1)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from sync_worker.ledger.chain import as_utc
from sync_worker.ledger.facts import to_fact
from sync_worker.ledger.tables import EVENTS, EXTERNAL_IDS, PERSONS, PURCHASES
from sync_worker.policy import Policy, effective_evidence

RECEIPT_NAMESPACE = uuid.UUID("6f2f4f0e-3c57-4c35-9d0a-2f7b4c1f9a11")


def iso(moment: datetime | None) -> str | None:
    moment = as_utc(moment)
    return moment.isoformat() if moment is not None else None


def export_person(conn: Connection, email: str, policy: Policy) -> dict[str, Any] | None:
    """Everything held about the address, or None when nothing is held."""
    person = conn.execute(select(PERSONS).where(PERSONS.c.email == email)).one_or_none()
    if person is None:
        return None
    external = conn.execute(
        select(EXTERNAL_IDS.c.system, EXTERNAL_IDS.c.external_id).where(EXTERNAL_IDS.c.person_id == person.id)
    )
    events = [
        row._asdict()
        for row in conn.execute(select(EVENTS).where(EVENTS.c.person_id == person.id).order_by(EVENTS.c.id))
    ]
    purchases = conn.execute(
        select(PURCHASES).where(PURCHASES.c.person_id == person.id).order_by(PURCHASES.c.id)
    )
    return {
        "email": person.email,
        "first_seen": iso(person.created_at),
        "external_ids": [{"system": r.system, "id": r.external_id} for r in external],
        "consent_events": [_event(row) for row in events],
        "purchases": [
            {
                "order_id": p.order_id,
                "occurred_at": iso(p.occurred_at),
                "source": p.source,
                "paid": p.paid,
                "categories": p.categories,
            }
            for p in purchases
        ],
        "consent_receipts": [receipt(row, email, policy) for row in events if row["action"] == "grant"],
    }


def _event(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "action": row["action"],
        "purpose": row["purpose"],
        "occurred_at": iso(row["occurred_at"]),
        "recorded_at": iso(row["recorded_at"]),
        "source": row["source"],
        "source_event_id": row["source_event_id"],
        "method": row["method"],
        "collection_point": row["collection_point"],
        "evidence_level": row["evidence_level"],
        "evidence": row["evidence"],
    }


def receipt(row: dict[str, Any], email: str, policy: Policy) -> dict[str, Any]:
    """A consent receipt with the fields the ledger holds (Kantara CR v1.1.0 names, 27560 state)."""
    evidence = effective_evidence(to_fact(row), policy)
    moment = as_utc(row["occurred_at"])
    return {
        "version": "KI-CR-v1.1.0",
        "consentReceiptID": str(uuid.uuid5(RECEIPT_NAMESPACE, row["content_hash"])),
        "jurisdiction": evidence.jurisdiction,
        "consentTimestamp": int(moment.timestamp()) if moment else None,
        "collectionMethod": row["method"],
        "language": evidence.language,
        "piiPrincipalId": email,
        "piiControllers": [{"piiController": evidence.controller or policy.controller or None}],
        "policyUrl": evidence.form_url,
        "services": [
            {
                "service": row["source"],
                "purposes": [
                    {
                        "purpose": row["purpose"],
                        "purposeVersion": evidence.purpose_version,
                        "consentType": "EXPLICIT",
                        "noticeVersion": evidence.notice_version,
                        "privacyNoticeVersion": evidence.privacy_notice_version,
                        "termination": evidence.withdrawal_method,
                        "thirdPartyDisclosure": bool(evidence.third_party),
                    }
                ],
            }
        ],
        "sensitive": False,
        # ISO/IEC TS 27560 event fields.
        "eventType": "given",
        "evidenceLevel": row["evidence_level"],
        "collectionPoint": row["collection_point"],
        "sourceRecord": f"{row['source']}:{row['source_event_id']}",
    }
