"""The bulk hasher (Sealer) writes exactly the hashes that verify() recomputes, for any row content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from sync_worker.ledger.chain import Sealer, content_hash, link, personal_hash

texts = st.text(max_size=12)  # any Unicode, quotes, backslashes and control characters included
maybe_texts = st.none() | texts
moments = st.none() | st.datetimes(
    min_value=datetime(1990, 1, 1), timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])
)
evidence = st.dictionaries(
    st.sampled_from(["wording", "language", "bundled", "checkbox_prechecked"]), st.booleans() | texts
)


@given(
    email=texts, purpose=maybe_texts, occurred_at=moments, method=maybe_texts, collection_point=maybe_texts,
    evidence=evidence, evidence_level=maybe_texts, action=texts, source=texts, source_event_id=texts,
    recorded_at=st.datetimes(timezones=st.just(UTC)), previous=st.sampled_from(["", "ab" * 32]),
)  # fmt: skip
def test_sealer_hashes_rows_exactly_as_the_chain_verification_does(
    email: str,
    purpose: str | None,
    occurred_at: datetime | None,
    method: str | None,
    collection_point: str | None,
    evidence: dict[str, object],
    evidence_level: str | None,
    action: str,
    source: str,
    source_event_id: str,
    recorded_at: datetime,
    previous: str,
) -> None:
    row = {
        "email": email, "purpose": purpose, "occurred_at": occurred_at, "method": method,
        "collection_point": collection_point, "evidence": evidence, "evidence_level": evidence_level,
        "action": action, "recorded_at": recorded_at, "source": source, "source_event_id": source_event_id,
    }  # fmt: skip
    sealer = Sealer(previous, recorded_at)
    sealed = sealer.seal(
        email, purpose, occurred_at, method, collection_point, Sealer.evidence_json(evidence), evidence_level,
        action, source, source_event_id,
    )  # fmt: skip
    personal = personal_hash(row)
    content = content_hash(row, personal)
    assert sealed == (personal, content, link(previous, content))
    assert sealer.chain_hash == sealed[2]
