"""Hypothesis properties through the real ledger (SQLite): arrival order and repetition change no decision."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_worker import db
from sync_worker.ledger.facts import load_facts
from sync_worker.ledger.ingest import append_events
from sync_worker.ledger.records import ConsentEventIn
from sync_worker.policy import decide_all
from tests.unit.consent_factories import POLICY

NOW = datetime(2026, 6, 1, tzinfo=UTC)
START = datetime(2026, 1, 1, tzinfo=UTC)
EMAIL = "jan@example.nl"


@st.composite
def event_lists(draw: st.DrawFn) -> list[ConsentEventIn]:
    count = draw(st.integers(min_value=1, max_value=8))
    events = []
    for i in range(count):
        action = draw(st.sampled_from(["grant", "grant", "confirm", "withdraw", "object", "complaint"]))
        events.append(
            ConsentEventIn(
                email=EMAIL,
                purpose=draw(st.sampled_from(["newsletter", "promotions", "events", "*"])),
                action=action,
                occurred_at=START + timedelta(minutes=draw(st.integers(0, 600))),
                source=draw(st.sampled_from(["website", "mailchimp"])),
                source_event_id=f"e-{i}",
                method=draw(st.sampled_from(["web_form", "import"])),
                collection_point=draw(st.sampled_from(["website:footer", "website:doi", None])),
                evidence=draw(st.sampled_from([{}, {"checkbox_prechecked": True}])),
            )
        )
    return events


def decisions_after(*batches: list[ConsentEventIn]) -> list[tuple[object, ...]]:
    with tempfile.TemporaryDirectory() as folder:
        engine = db.make_engine(f"sqlite:///{folder}/ledger.db")
        db.upgrade(engine)
        for batch in batches:
            with engine.begin() as conn:
                append_events(conn, batch, policy=POLICY, secret=b"k", now=NOW, chunk_size=3)
        with engine.connect() as conn:
            facts = load_facts(conn, [EMAIL], b"k")[EMAIL]
        engine.dispose()
    return [
        (d.purpose, d.allowed, d.basis, d.rule, d.code, d.quarantined) for d in decide_all(facts, POLICY, NOW)
    ]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_lists(), st.randoms(use_true_random=False))
def test_arrival_order_and_repeated_ingest_give_the_same_decisions(
    events: list[ConsentEventIn], rnd: object
) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert decisions_after(events) == decisions_after(shuffled, events, shuffled[:2])
