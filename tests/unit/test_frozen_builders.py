"""The hot paths' builders of frozen values (sync_worker.policy.frozen) build exactly what the constructors build."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import Action, Basis, Change, GlobalState, Status
from sync_worker.ledger.facts import _fact_of, _moment
from sync_worker.observe import Seen
from sync_worker.plan import PlannedChange, _new_change, _new_planned
from sync_worker.policy import ConsentFact, Evidence, PersonFacts
from sync_worker.policy.facts import Decision, new_decision, valid_until_of
from sync_worker.policy.frozen import draft_of, field_names, retype
from sync_worker.policy.grants import Grant, new_grant

texts = st.text(max_size=12)
maybe_texts = st.none() | texts


def assert_same_value(built: Any, expected: Any) -> None:
    """Equal, of the very class, every field set on the value itself, hashed alike, and still frozen."""
    assert type(built) is type(expected)
    assert built == expected
    # Every field is set on the value (a field left out would read as missing, or as the class default).
    own = vars(built) if hasattr(built, "__dict__") else {n: getattr(built, n) for n in built.__slots__}
    assert set(own) == set(field_names(type(expected)))
    try:
        assert hash(built) == hash(expected)
    except TypeError:  # a value holding a dict (Seen's statuses) is not hashable either way
        with pytest.raises(TypeError):
            hash(expected)
    with pytest.raises(FrozenInstanceError):
        built.__setattr__(fields(expected)[0].name, None)


@given(
    key=texts,
    system=texts,
    email=texts,
    action=st.sampled_from(list(Action)),
    purpose=maybe_texts,
    external_id=maybe_texts,
    basis=st.sampled_from(list(Basis)),
    slot=texts,
    before=texts,
    after=texts,
    rule=texts,
    reason=texts,
    event_ids=st.lists(texts, max_size=3).map(tuple),
)
def test_planned_changes_are_built_as_their_constructors_build_them(
    key: str,
    system: str,
    email: str,
    action: Action,
    purpose: str | None,
    external_id: str | None,
    basis: Basis,
    slot: str,
    before: str,
    after: str,
    rule: str,
    reason: str,
    event_ids: tuple[str, ...],
) -> None:
    change = _new_change(key, system, email, action, purpose, external_id, basis)
    assert_same_value(change, Change(key, system, email, action, purpose, external_id, basis))
    planned = _new_planned(change, slot, before, after, rule, reason, event_ids)
    assert_same_value(planned, PlannedChange(change, slot, before, after, rule, reason, event_ids))


stored_times = st.none() | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda moment: moment.isoformat(sep=" ", timespec="microseconds")
)
evidence_texts = st.sampled_from(
    [
        None,
        "{}",
        json.dumps({"double_opt_in": True, "ip": "192.0.2.1"}),
        json.dumps({"checkbox_prechecked": False}),
    ]
)


@given(
    event_id=st.integers(min_value=1),
    purpose=st.sampled_from(["newsletter", "promotions", "*"]),
    action=st.sampled_from(["grant", "confirm", "withdraw", "object", "complaint", "erasure"]),
    occurred=stored_times,
    recorded=stored_times.filter(lambda text: text is not None),
    source=texts,
    method=maybe_texts,
    point=maybe_texts,
    evidence=evidence_texts,
)
def test_a_ledger_row_becomes_the_fact_its_constructor_builds(
    event_id: int,
    purpose: str,
    action: str,
    occurred: str | None,
    recorded: str,
    source: str,
    method: str | None,
    point: str | None,
    evidence: str | None,
) -> None:
    row = (7, event_id, purpose, action, occurred, recorded, source, method, point, evidence)
    expected = ConsentFact(
        event_id=event_id,
        purpose=purpose,
        action=action,  # type: ignore[arg-type]
        occurred_at=_moment(occurred),
        recorded_at=_moment(recorded) or datetime.now(UTC),
        source=source,
        method=method or "",
        collection_point=point,
        evidence=Evidence(**json.loads(evidence or "{}")),
    )
    assert_same_value(_fact_of(row), expected)


moments = st.datetimes(timezones=st.just(UTC))
ids = st.lists(st.integers(min_value=1), max_size=3).map(tuple)


@given(
    purpose=texts,
    allowed=st.booleans(),
    basis=st.sampled_from(["consent", "soft_opt_in", "none"]),
    rule=texts,
    code=texts,
    reason=texts,
    extra=st.fixed_dictionaries(
        {},
        optional={
            "categories": st.lists(texts, max_size=2).map(tuple),
            "event_ids": ids,
            "purchase_ids": ids,
            "quarantined": st.booleans(),
            "valid_until": st.none() | moments,
        },
    ),
    until=moments,
)
def test_decisions_are_built_as_their_constructor_builds_them(
    purpose: str,
    allowed: bool,
    basis: Any,
    rule: str,
    code: str,
    reason: str,
    extra: dict[str, Any],
    until: datetime,
) -> None:
    decision = new_decision(purpose, allowed, basis, rule, code, reason, **extra)
    expected = Decision(purpose, allowed, basis, rule, code, reason, **extra)
    assert_same_value(decision, expected)
    assert_same_value(valid_until_of(decision, until), replace(expected, valid_until=until))


@given(
    effective_at=moments,
    level=st.sampled_from(["proven", "attested", "unproven"]),
    rule=st.none() | texts,
    code=texts,
    confirm_id=st.none() | st.integers(),
)
def test_grants_are_built_as_their_constructor_builds_them(
    effective_at: datetime, level: Any, rule: str | None, code: str, confirm_id: int | None
) -> None:
    fact = ConsentFact(1, "newsletter", "grant", effective_at, effective_at, "shop")
    expected = Grant(fact, effective_at, level, rule, code, confirm_id)
    assert_same_value(new_grant(fact, effective_at, level, rule, code, confirm_id), expected)
    assert_same_value(new_grant(fact, effective_at, level), Grant(fact, effective_at, level))


def test_drafts_of_slotted_and_plain_values_become_those_values() -> None:
    seen = draft_of(Seen)()
    seen.external_id, seen.statuses, seen.global_state, seen.tags = (
        "x",
        {"a": Status.PENDING},
        GlobalState.ACTIVE,
        frozenset(),
    )
    assert_same_value(retype(seen, Seen), Seen("x", {"a": Status.PENDING}, GlobalState.ACTIVE, frozenset()))
    person = draft_of(PersonFacts)()
    person.email, person.events, person.purchases, person.suppressed = "jan@example.nl", (), (), True
    assert_same_value(retype(person, PersonFacts), PersonFacts("jan@example.nl", suppressed=True))


def test_only_plain_dataclasses_have_drafts() -> None:
    @dataclass(frozen=True)
    class Base:
        name: str

    @dataclass(frozen=True)
    class Derived(Base):
        other: str

    with pytest.raises(TypeError):
        draft_of(Derived)
    with pytest.raises(TypeError):
        draft_of(str)
