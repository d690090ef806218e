"""The ledger on SQLite and PostgreSQL: idempotent ingest, hash chain, suppressions, erasure, facts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select, text, update

from sync_worker import db
from sync_worker.ledger.chain import verify
from sync_worker.ledger.erasure import erase, mark_erasure_pushed, pending_erasures
from sync_worker.ledger.facts import load_facts
from sync_worker.ledger.ingest import append_events, append_purchases
from sync_worker.ledger.records import ConsentEventIn, PurchaseIn
from sync_worker.ledger.suppression import MissingSecretKeyError, is_suppressed
from sync_worker.ledger.tables import EVENTS, PERSONS, PURCHASES
from sync_worker.policy import decide, decide_all
from tests.unit.consent_factories import POLICY

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SECRET = b"test-secret"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


def event(
    n: int, email: str = "jan@example.nl", action: str = "grant", purpose: str = "newsletter", **kw: object
) -> ConsentEventIn:
    data: dict[str, object] = {
        "email": email,
        "purpose": purpose,
        "action": action,
        "occurred_at": f"2026-01-{n % 28 + 1:02d}T10:00:00Z",
        "source": "website",
        "source_event_id": f"f-{n}",
        "method": "web_form",
        "collection_point": "website:footer",
    }
    return ConsentEventIn.model_validate(data | kw)


def ingest(engine: Engine, *events: ConsentEventIn, chunk_size: int = 1000) -> tuple[int, int, int]:
    with engine.begin() as conn:
        result = append_events(conn, events, policy=POLICY, secret=SECRET, now=NOW, chunk_size=chunk_size)
    return result.inserted, result.duplicates, result.suppressed


def facts_of(engine: Engine, email: str = "jan@example.nl"):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return load_facts(conn, [email], SECRET)[email]


def test_ingesting_twice_stores_each_event_once(engine: Engine) -> None:
    events = [event(i, f"p{i % 7}@example.nl") for i in range(50)]
    assert ingest(engine, *events, chunk_size=16) == (50, 0, 0)
    assert ingest(engine, *events, events[0], chunk_size=16) == (0, 51, 0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EVENTS)).scalar() == 50
        assert conn.execute(select(func.count()).select_from(PERSONS)).scalar() == 7
        assert verify(conn).ok


def test_r32_replayed_ledger_gives_the_same_decisions(engine: Engine) -> None:
    ingest(engine, event(1), event(2, action="withdraw", purpose="promotions"))
    before = decide_all(facts_of(engine), POLICY, NOW)
    ingest(engine, event(1), event(2, action="withdraw", purpose="promotions"))
    assert decide_all(facts_of(engine), POLICY, NOW) == before


def test_grant_is_stored_with_its_evidence_level_and_decides(engine: Engine) -> None:
    ingest(engine, event(1, evidence={"checkbox_prechecked": False, "ip": "192.0.2.1"}))
    with engine.connect() as conn:
        row = conn.execute(select(EVENTS)).one()
    assert (row.evidence_level, row.evidence) == (
        "attested",
        {"checkbox_prechecked": False, "ip": "192.0.2.1"},
    )
    facts = facts_of(engine)
    assert facts.events[0].occurred_at == datetime(2026, 1, 2, 10, tzinfo=UTC)
    assert decide(facts, "newsletter", POLICY, NOW).allowed


def test_r11_age_evidence_is_stored_hashed_and_read_back(engine: Engine) -> None:
    ingest(engine, event(1, evidence={"birth_date": "2010-06-30", "parental_consent": False}))
    with engine.connect() as conn:
        assert conn.execute(select(EVENTS.c.evidence)).scalar() == {
            "birth_date": "2010-06-30",
            "parental_consent": False,
        }
        assert verify(conn).ok
    facts = facts_of(engine)
    assert facts.events[0].evidence.birth_date == date(2010, 6, 30)
    assert decide(facts, "newsletter", POLICY, NOW).rule == "R11"  # 15 at the grant (2026-01-02)
    with engine.begin() as conn:  # the birth date is part of the hashed evidence
        conn.execute(update(EVENTS).values(evidence={"birth_date": "2000-06-30", "parental_consent": False}))
        assert verify(conn).broken_at == 1


def test_events_without_age_evidence_hash_as_before(engine: Engine) -> None:
    """Fields left unstated stay out of the stored evidence: rows hash as they did before R11's fields."""
    grant = event(1, evidence={"checkbox_prechecked": False, "notice_version": "v1", "ip": "192.0.2.1"})
    withdrawal = ConsentEventIn(
        email="jan@example.nl",
        action="withdraw",
        occurred_at=datetime(2026, 2, 2, 10, tzinfo=UTC),
        source="website",
        source_event_id="u-1",
    )
    ingest(engine, grant, withdrawal)
    with engine.connect() as conn:
        hashes = conn.execute(select(EVENTS.c.content_hash, EVENTS.c.chain_hash).order_by(EVENTS.c.id)).all()
    # Computed by the ledger before Evidence had age, birth_date and parental_consent.
    assert [tuple(h) for h in hashes] == [
        (
            "f443fdf361cb7f15aa9cb0c3987f891b20c83fc1661fb527df4a8e7e0f5d11a9",
            "8367348423ff0aa3237433f97b35d929b26e69f9ae414869d8786079ccefa93a",
        ),
        (
            "35918a5f54b307e8009cee3630de1af7ee082a62c97b67b9eaadf708cb6c43a1",
            "8a9f3fb9c1dcac1ef2daa97ac9d114687fcfc554200cd6bb4b070ba3d94b8848",
        ),
    ]


@pytest.mark.parametrize(
    ("evidence", "problem"),
    [
        ({"age": -1}, "age must be 0 to 130"),
        ({"age": True}, "age must be a whole number of years"),
        ({"birth_date": "2026-02-01"}, "is after the event"),
    ],
)
def test_r11_implausible_age_evidence_is_rejected_naming_the_field(
    evidence: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError) as error:
        event(1, evidence=evidence)
    assert error.value.errors()[0]["loc"] == ("evidence",)
    assert problem in str(error.value)


def test_r9_consent_stays_with_the_address_it_was_given_for(engine: Engine) -> None:
    ingest(
        engine,
        event(1, "jan@example.nl", external_id="crm-1"),
        event(2, "jan.de.vries@example.nl", action="withdraw", external_id="crm-1"),
    )
    assert decide(facts_of(engine, "jan@example.nl"), "newsletter", POLICY, NOW).allowed
    assert decide(facts_of(engine, "jan.de.vries@example.nl"), "newsletter", POLICY, NOW).rule == "R16"


def test_purchases_are_idempotent_and_allow_soft_opt_in(engine: Engine) -> None:
    order = PurchaseIn.model_validate(
        {
            "email": "jan@example.nl",
            "occurred_at": "2026-02-01T09:00:00Z",
            "source": "shopify",
            "source_event_id": "order-1001",
            "paid": True,
            "categories": ["phones"],
        }
    )
    with engine.begin() as conn:
        assert append_purchases(conn, [order, order], secret=SECRET, now=NOW).inserted == 1
        assert append_purchases(conn, [order], secret=SECRET, now=NOW).duplicates == 1
        assert conn.execute(select(func.count()).select_from(PURCHASES)).scalar() == 1
    decision = decide(facts_of(engine), "promotions", POLICY, NOW)
    assert (decision.basis, decision.categories) == ("soft_opt_in", ("phone-cases", "phones"))


def test_load_facts_answers_for_many_people_in_chunks(engine: Engine) -> None:
    ingest(engine, *(event(i, f"p{i}@example.nl") for i in range(30)))
    emails = [f"p{i}@example.nl" for i in range(30)] + ["nobody@example.nl"]
    with engine.connect() as conn:
        facts = load_facts(conn, emails, SECRET, chunk_size=7)
    assert len(facts) == 31
    assert all(len(facts[f"p{i}@example.nl"].events) == 1 for i in range(30))
    assert facts["nobody@example.nl"].events == ()


@pytest.mark.parametrize(
    ("tamper", "broken_at"),
    [
        ("UPDATE consent_events SET purpose = 'promotions' WHERE id = 2", 2),
        ("UPDATE consent_events SET chain_hash = content_hash WHERE id = 3", 3),
        ("DELETE FROM consent_events WHERE id = 2", 3),
        ("DELETE FROM consent_events WHERE id = 4", 4),
        ("UPDATE persons SET email = 'eve@example.nl'", 1),
    ],
)
def test_verify_reports_the_first_broken_link(engine: Engine, tamper: str, broken_at: int) -> None:
    ingest(engine, *(event(i) for i in range(1, 5)))
    with engine.begin() as conn:
        assert verify(conn).ok
        conn.execute(text(tamper))
    with engine.connect() as conn:
        result = verify(conn)
    assert (result.ok, result.broken_at) == (False, broken_at), result.problem


def test_erasure_keeps_the_chain_valid_and_still_catches_tampering(engine: Engine) -> None:
    ingest(engine, event(1), event(2, "other@example.nl"), event(3))
    with engine.begin() as conn:
        erased = erase(conn, "jan@example.nl", secret=SECRET, now=NOW)
    assert erased.events_erased == 2
    with engine.begin() as conn:
        assert verify(conn).ok
        assert conn.execute(select(EVENTS.c.evidence, EVENTS.c.person_id).where(EVENTS.c.id == 1)).one() == (
            None,
            None,
        )
        assert conn.execute(select(func.count()).select_from(PERSONS)).scalar() == 1
        conn.execute(text("UPDATE consent_events SET source = 'elsewhere' WHERE id = 2"))
    with engine.connect() as conn:
        assert verify(conn).broken_at == 2


def test_verify_catches_an_altered_tombstone(engine: Engine) -> None:
    ingest(engine, event(1), event(2, action="withdraw"))
    with engine.begin() as conn:
        erase(conn, "jan@example.nl", secret=SECRET, now=NOW)
        conn.execute(text("UPDATE consent_events SET action = 'grant' WHERE id = 2"))
    with engine.connect() as conn:
        assert verify(conn).broken_at == 2


def test_r21_erased_address_is_suppressed_and_never_re_added(engine: Engine) -> None:
    ingest(engine, event(1))
    with engine.begin() as conn:
        erase(conn, "jan@example.nl", secret=SECRET, now=NOW)
        assert is_suppressed(conn, "jan@example.nl", SECRET)
    assert ingest(engine, event(5, "JAN@example.nl")) == (0, 0, 1)
    facts = facts_of(engine)
    assert facts.suppressed
    assert decide(facts, "newsletter", POLICY, NOW).rule == "R22"


def test_erasure_queues_a_deletion_for_every_connected_system(engine: Engine) -> None:
    ingest(engine, event(1))
    with engine.begin() as conn:
        request = erase(conn, "jan@example.nl", secret=SECRET, now=NOW)
        assert pending_erasures(conn) == [(request.request_id, "jan@example.nl")]
        mark_erasure_pushed(conn, request.request_id, NOW)
        assert pending_erasures(conn) == []
        assert conn.execute(text("SELECT email FROM erasure_requests")).scalar() is None


def test_suppressions_need_the_secret_key(engine: Engine) -> None:
    ingest(engine, event(1))
    with engine.begin() as conn, pytest.raises(MissingSecretKeyError, match="SYNC_SECRET_KEY"):
        erase(conn, "jan@example.nl", secret=None, now=NOW)
    with engine.begin() as conn:
        erase(conn, "jan@example.nl", secret=SECRET, now=NOW)
    with engine.begin() as conn, pytest.raises(MissingSecretKeyError, match="SYNC_SECRET_KEY"):
        append_events(conn, [event(9)], policy=POLICY, secret=None, now=NOW)
