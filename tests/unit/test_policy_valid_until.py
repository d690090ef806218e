"""Each decision says until when time alone leaves it as it is (``valid_until``): exact per time-bound rule,
and a property that deciding at any earlier time gives the same decision."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sync_worker.policy import ConsentFact, PersonFacts, PurchaseFact, decide
from sync_worker.policy.months import add_months
from tests.unit.consent_factories import NOW, POLICY, T0, confirm, grant, negative, person, purchase

TICK = timedelta(microseconds=1)


def test_soft_opt_in_holds_until_just_after_the_window_of_the_last_purchase_r14() -> None:
    facts = person(purchase(1, T0), purchase(2, T0 + timedelta(days=40)))
    now = T0 + timedelta(days=50)
    allowed = decide(facts, "promotions", POLICY, now)
    end = add_months(T0 + timedelta(days=40), POLICY.soft_opt_in_months)
    assert (allowed.allowed, allowed.rule) == (True, "R12")
    # The first purchase leaves the window first: categories and cited purchases may change then.
    assert allowed.valid_until == add_months(T0, POLICY.soft_opt_in_months) + TICK
    later = decide(facts, "promotions", POLICY, allowed.valid_until)
    assert (later.allowed, later.purchase_ids) == (True, (2,))
    assert later.valid_until == end + TICK
    assert decide(facts, "promotions", POLICY, end) == later
    lapsed = decide(facts, "promotions", POLICY, end + TICK)
    assert (lapsed.allowed, lapsed.rule, lapsed.valid_until) == (False, "R14", None)


def test_pending_double_opt_in_lapses_just_after_its_deadline_r6() -> None:
    facts = person(grant(1, "newsletter", T0, point="website:doi"))
    pending = decide(facts, "newsletter", POLICY, T0 + timedelta(days=3))
    deadline = T0 + timedelta(days=POLICY.pending_expiry_days)
    assert (pending.rule, pending.code, pending.valid_until) == (
        "R6",
        "double_opt_in_pending",
        deadline + TICK,
    )
    assert decide(facts, "newsletter", POLICY, deadline) == pending
    lapsed = decide(facts, "newsletter", POLICY, deadline + TICK)
    assert (lapsed.code, lapsed.valid_until) == ("double_opt_in_lapsed", None)


def test_future_dated_withdrawal_takes_effect_at_its_own_time_r29() -> None:
    facts = person(
        grant(1, "newsletter", T0), negative(2, "withdraw", NOW + timedelta(hours=1), "newsletter")
    )
    allowed = decide(facts, "newsletter", POLICY, NOW)
    assert (allowed.allowed, allowed.valid_until) == (True, NOW + timedelta(hours=1))
    denied = decide(facts, "newsletter", POLICY, NOW + timedelta(hours=1))
    assert (denied.allowed, denied.rule, denied.valid_until) == (False, "R16", None)
    # Another purpose's withdrawal never changes this one: no instant from it.
    other = person(grant(1, "newsletter", T0), negative(2, "withdraw", NOW + timedelta(hours=1), "events"))
    assert decide(other, "newsletter", POLICY, NOW).valid_until is None


def test_future_dated_purchase_starts_soft_opt_in_at_its_time_r12() -> None:
    facts = person(purchase(1, NOW + timedelta(days=1)))
    before = decide(facts, "promotions", POLICY, NOW)
    assert (before.allowed, before.valid_until) == (False, NOW + timedelta(days=1))
    assert decide(facts, "promotions", POLICY, before.valid_until).allowed
    assert decide(facts, "newsletter", POLICY, NOW).valid_until is None  # soft opt-in is promotions only


def test_decisions_time_never_changes_carry_no_instant() -> None:
    consent = person(grant(1, "newsletter", T0))
    assert decide(consent, "newsletter", POLICY, NOW).valid_until is None
    suppressed = person(purchase(1, NOW + timedelta(days=1)), suppressed=True)
    assert decide(suppressed, "promotions", POLICY, NOW).valid_until is None  # R22 whatever the time


days = st.integers(min_value=0, max_value=900)
PURPOSES = ("newsletter", "promotions", "*")


@st.composite
def timed_facts(draw: st.DrawFn) -> PersonFacts:
    """Histories around the time-bound rules: double opt-in signups, confirms, withdrawals, purchases."""
    items: list[ConsentFact | PurchaseFact] = []
    for i in range(draw(st.integers(min_value=0, max_value=6))):
        when = T0 + timedelta(days=draw(days), minutes=draw(st.integers(0, 1440)))
        purpose = draw(st.sampled_from(PURPOSES))
        kind = draw(st.sampled_from(["doi", "grant", "confirm", "withdraw", "object"]))
        if kind == "doi":
            items.append(grant(i + 1, "newsletter", when, point="website:doi"))
        elif kind == "grant":
            items.append(grant(i + 1, purpose, when))
        elif kind == "confirm":
            items.append(confirm(i + 1, when))
        else:
            items.append(negative(i + 1, kind, when, purpose=purpose))
    for i in range(draw(st.integers(min_value=0, max_value=3))):
        when = T0 + timedelta(days=draw(days))
        items.append(purchase(100 + i, when, paid=draw(st.booleans()), opt_out_offered=draw(st.booleans())))
    return person(*items)


@st.composite
def moments_near(draw: st.DrawFn, facts: PersonFacts) -> datetime:
    """A time close to where a rule turns: near a fact, or near the end of a purchase's window."""
    anchors = [T0, *(e.occurred_at or e.recorded_at for e in facts.events)]
    anchors += [add_months(p.occurred_at, POLICY.soft_opt_in_months) for p in facts.purchases]
    anchors += [p.occurred_at for p in facts.purchases]
    offset = timedelta(days=draw(st.integers(-40, 40)), minutes=draw(st.integers(0, 1440)))
    return draw(st.sampled_from(anchors)) + offset


@given(
    st.data(), timed_facts(), st.sampled_from(("newsletter", "promotions")), st.floats(0, 1, exclude_max=True)
)
def test_deciding_before_the_instant_gives_the_same_decision(
    data: st.DataObject, facts: PersonFacts, purpose: str, fraction: float
) -> None:
    now = data.draw(moments_near(facts))
    decision = decide(facts, purpose, POLICY, now)
    until: datetime = decision.valid_until or now + timedelta(days=1500)
    assert until > now
    between = now + (until - now) * fraction
    # The last moment before the instant is where a late instant shows; one in between for the rest.
    assert decide(facts, purpose, POLICY, until - TICK) == decision
    assert decide(facts, purpose, POLICY, min(between, until - TICK)) == decision
