"""Hypothesis properties of the policy core (RULES.md R29, R30, R32; R1/R8 for unproven grants; R11)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_worker.policy import ConsentFact, PersonFacts, decide, decide_all
from sync_worker.policy.decide import concerns, decide_on_record
from tests.unit.consent_factories import NOW, POLICY, T0, confirm, grant, negative, person, purchase

PURPOSES = ("newsletter", "promotions", "events", "lead_magnet", "*")
minutes = st.integers(min_value=0, max_value=60 * 24 * 60)


@st.composite
def consent_events(draw: st.DrawFn, event_id: int) -> ConsentFact:
    when = T0 + timedelta(minutes=draw(minutes))
    purpose = draw(st.sampled_from(PURPOSES))
    kind = draw(
        st.sampled_from(["grant", "grant_bad", "grant_flag", "confirm", "withdraw", "object", "complaint"])
    )
    source = draw(st.sampled_from(["website", "mailchimp", "shopify"]))
    if kind == "grant":
        return grant(
            event_id, purpose, when, source=source, method=draw(st.sampled_from(["web_form", "import"]))
        )
    if kind == "grant_bad":
        return grant(event_id, purpose, when, source=source, checkbox_prechecked=True)
    if kind == "grant_flag":
        return grant(event_id, purpose, when, point=None, method="sync", source=source)
    if kind == "confirm":
        return confirm(event_id, when, purpose)
    return negative(event_id, kind, when, purpose=purpose, source=source)


@st.composite
def histories(draw: st.DrawFn) -> PersonFacts:
    count = draw(st.integers(min_value=0, max_value=8))
    events = [draw(consent_events(i + 1)) for i in range(count)]
    purchases = [
        purchase(100 + i, T0 + timedelta(minutes=draw(minutes)), paid=draw(st.booleans()))
        for i in range(draw(st.integers(min_value=0, max_value=2)))
    ]
    return person(*events, *purchases)


@given(histories(), st.randoms(use_true_random=False))
def test_same_events_in_any_arrival_order_give_the_same_decisions(facts: PersonFacts, rnd: object) -> None:
    events, purchases = list(facts.events), list(facts.purchases)
    rnd.shuffle(events)  # type: ignore[attr-defined]
    rnd.shuffle(purchases)  # type: ignore[attr-defined]
    shuffled = facts._replace(events=tuple(events), purchases=tuple(purchases))
    assert decide_all(shuffled, POLICY, NOW) == decide_all(facts, POLICY, NOW)


@given(histories())
def test_repeating_events_changes_no_decision(facts: PersonFacts) -> None:
    doubled = facts._replace(events=facts.events + facts.events)
    assert [d.allowed for d in decide_all(doubled, POLICY, NOW)] == [
        d.allowed for d in decide_all(facts, POLICY, NOW)
    ]


@given(histories(), st.sampled_from(PURPOSES[:-1]), st.integers(min_value=0, max_value=60 * 24 * 60))
def test_withdrawal_is_never_undone_by_an_earlier_or_equal_grant(
    facts: PersonFacts, purpose: str, offset: int
) -> None:
    """R29/R30: append a withdrawal later than or equal to every grant: nothing allows consent."""
    latest = max((e.occurred_at for e in facts.events if e.occurred_at), default=T0)
    when = max(latest, T0 + timedelta(minutes=offset))
    withdrawn = facts._replace(events=(*facts.events, negative(999, "withdraw", when, purpose=purpose)))
    decision = decide(withdrawn, purpose, POLICY, NOW)
    assert decision.basis != "consent"


@given(histories(), st.sampled_from(PURPOSES[:-1]))
def test_unproven_grants_never_allow_mailing(facts: PersonFacts, purpose: str) -> None:
    """R1/R8: with only evidence-less grants (and no purchase), nothing is ever allowed."""
    flags = tuple(
        grant(e.event_id, e.purpose, e.occurred_at, point=None, method="sync") if e.action == "grant" else e
        for e in facts.events
    )
    decision = decide(facts._replace(events=flags, purchases=()), purpose, POLICY, NOW)
    assert not decision.allowed


@settings(max_examples=300)
@given(histories(), st.sampled_from(PURPOSES[:-1]), minutes, st.booleans())
def test_deciding_from_the_purposes_own_events_equals_judging_every_event(
    facts: PersonFacts, purpose: str, offset: int, none_concern_it: bool
) -> None:
    """``decide`` reads only the events that concern the purpose, and answers a purpose with none of them
    (and no purchase for promotions) at once: the same decision as the full rules over all events."""
    if none_concern_it:  # the shortcut's case, drawn often enough to meet purchases and other purposes
        facts = facts._replace(events=tuple(e for e in facts.events if not concerns(e, purpose)))
    now = T0 + timedelta(minutes=offset)  # events and purchases on both sides of ``now``
    everything = decide_on_record(facts, purpose, POLICY, now, list(facts.events))
    assert decide(facts, purpose, POLICY, now) == everything


@given(histories(), minutes, st.booleans())
def test_deciding_all_purposes_at_once_equals_deciding_each(
    facts: PersonFacts, offset: int, suppressed: bool
) -> None:
    facts = facts._replace(suppressed=suppressed)  # decide_all answers suppressed people apart
    now = T0 + timedelta(minutes=offset)
    decided = decide_all(facts, POLICY, now)
    assert decided == tuple(decide(facts, p, POLICY, now) for p in POLICY.purposes)
    # In the policy's order, one per purpose: SqlLedger.decide pairs them with the purposes by position.
    assert tuple(d.purpose for d in decided) == POLICY.purposes


@st.composite
def minors_grant(draw: st.DrawFn, fact: ConsentFact) -> ConsentFact:
    """``fact`` (a grant of any kind) with evidence showing a person under 16 at its time, no parental consent."""
    assert fact.occurred_at is not None
    granted_on = fact.occurred_at.date()
    if draw(st.booleans()):
        shown = {"age": draw(st.integers(min_value=0, max_value=15))}
    else:  # born up to 5840 days before the grant (16 years are never fewer than 5843 days)
        shown = {"birth_date": granted_on - timedelta(days=draw(st.integers(min_value=0, max_value=5840)))}
    parental = draw(st.sampled_from([None, False]))
    return fact._replace(evidence=replace(fact.evidence, **shown, parental_consent=parental))


@st.composite
def minors_histories(draw: st.DrawFn) -> PersonFacts:
    """Any consent history (no purchases) in which every grant shows a minor without parental consent."""
    facts = draw(histories())
    events = tuple(draw(minors_grant(e)) if e.action == "grant" else e for e in facts.events)
    return facts._replace(events=events, purchases=())


@given(minors_histories(), st.sampled_from(PURPOSES[:-1]), minutes, st.data())
def test_r11_a_minors_grants_without_parental_consent_never_allow_mailing(
    facts: PersonFacts, purpose: str, offset: int, data: st.DataObject
) -> None:
    """Whatever confirmations, withdrawals or other grants of the minor's come with them, and at any time:
    no mail, and never a re-permission mail either. (Purchases are left out: soft opt-in (R12) is no
    grant, and a purchase states no age.)"""
    now = NOW + timedelta(minutes=offset)
    assert not decide(facts, purpose, POLICY, now).allowed
    # A bare subscribed flag (R8, no age stated) would list anyone else for re-permission.
    flag = grant(998, purpose, T0, point=None, method="sync", source="mailchimp")
    child = data.draw(minors_grant(grant(997, data.draw(st.sampled_from(PURPOSES)), T0 + timedelta(days=1))))
    assert not any(
        d.quarantined for d in decide_all(facts._replace(events=(*facts.events, flag, child)), POLICY, now)
    )


@given(minors_histories(), st.sampled_from(PURPOSES[:-1]), st.integers(min_value=16, max_value=99))
def test_r11_a_later_grant_given_as_an_adult_allows(facts: PersonFacts, purpose: str, age: int) -> None:
    """R11 judges each grant at its own time: a fresh grant as an adult, after everything else, counts."""
    latest = max((e.occurred_at for e in facts.events if e.occurred_at), default=T0)
    point = "website:ebook" if purpose == "lead_magnet" else "website:footer"  # where it is asked (R2, R37)
    adult = grant(999, purpose, latest + timedelta(days=1), point=point, age=age)
    decision = decide(
        facts._replace(events=(*facts.events, adult)), purpose, POLICY, NOW + timedelta(days=90)
    )
    assert (decision.allowed, decision.event_ids) == (True, (999,))
