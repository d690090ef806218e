"""plan(): desired state per system minus observed state; fail closed, quarantine, convergence."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import Action, Capabilities, GlobalState, Status, StreamInfo
from sync_worker.ledger_port import Verdict
from sync_worker.observe import ACCOUNT, Seen, tag_slot
from sync_worker.plan import (
    REPERMISSION_TAG,
    Person,
    PlannedChange,
    _align,
    _erase,
    _repermission,
    _representable,
    apply,
    plan,
    plan_person,
)

PURPOSES = ("newsletter", "promotions", "events", "lead_magnet")
ALL = frozenset(Action)


def caps(system: str, purposes: tuple[str, ...] = PURPOSES, actions: frozenset[Action] = ALL) -> Capabilities:
    return Capabilities(
        system, (StreamInfo("contacts", True, True, 100),), actions, frozenset(purposes), {}, 4
    )


CAPS = {
    "mailchimp": caps("mailchimp", ("newsletter", "promotions")),
    "klaviyo": caps("klaviyo"),
    "shopify": caps("shopify", ("newsletter",), frozenset({Action.SUBSCRIBE, Action.UNSUBSCRIBE})),
}
ALLOW = Verdict(True, "consent", "R5", "double opt-in on the website form", ("e-1",))
WITHDRAWN = Verdict(False, "none", "R16", "unsubscribed in Mailchimp", ("e-2",))
NO_BASIS = Verdict(False, "none", "R1", "no consent recorded")


def person(decisions: dict[str, Verdict], seen: dict[str, Seen], **kw: object) -> Person:
    return Person("jan@example.nl", decisions, seen, **kw)  # type: ignore[arg-type]


def test_withdrawal_unsubscribes_everywhere_the_person_is_subscribed() -> None:
    seen = {
        "mailchimp": Seen("m", {"newsletter": Status.UNSUBSCRIBED}),
        "klaviyo": Seen("k", {"newsletter": Status.SUBSCRIBED}),
        "shopify": Seen("s", {"newsletter": Status.SUBSCRIBED}),
    }
    changes = plan_person(person({"newsletter": WITHDRAWN}, seen), CAPS, "run1")
    assert {(c.change.system, c.change.action, c.slot) for c in changes} == {
        ("klaviyo", Action.UNSUBSCRIBE, "newsletter"),
        ("shopify", Action.UNSUBSCRIBE, "newsletter"),
    }
    assert all(c.rule == "R16" and "R27" in c.reason and c.event_ids == ("e-2",) for c in changes)


def test_not_allowed_is_pushed_as_unsubscribed_r27() -> None:
    seen = {"klaviyo": Seen("k", {"events": Status.SUBSCRIBED})}
    [change] = plan_person(person({"events": NO_BASIS}, seen), CAPS, "run1")
    assert (change.change.action, change.before, change.after, change.rule) == (
        Action.UNSUBSCRIBE,
        "subscribed",
        "unsubscribed",
        "R1",
    )


def test_allowed_purpose_is_subscribed_where_the_person_is_not() -> None:
    seen = {"klaviyo": Seen("k", {"newsletter": Status.NOT_SUBSCRIBED})}
    [change] = plan_person(person({"newsletter": ALLOW}, seen), CAPS, "run1")
    assert change.change.action == Action.SUBSCRIBE
    assert change.change.basis.value == "consent"


def test_pending_confirmation_is_left_to_the_vendor() -> None:
    seen = {"mailchimp": Seen("m", {"newsletter": Status.PENDING})}
    assert plan_person(person({"newsletter": ALLOW}, seen), CAPS, "run1") == []


def test_vendor_side_block_is_never_pushed_over() -> None:
    seen = {"klaviyo": Seen("k", {"newsletter": Status.NOT_SUBSCRIBED}, GlobalState.BOUNCED)}
    assert plan_person(person({"newsletter": ALLOW}, seen), CAPS, "run1") == []


def test_people_absent_from_a_system_are_not_created_there() -> None:
    seen = {"klaviyo": Seen("k", {"newsletter": Status.SUBSCRIBED})}
    changes = plan_person(person({"newsletter": ALLOW}, seen), CAPS, "run1")
    assert changes == []


def test_purposes_a_system_cannot_represent_are_left_alone() -> None:
    seen = {"shopify": Seen("s", {"newsletter": Status.SUBSCRIBED, "events": Status.SUBSCRIBED})}
    changes = plan_person(person({"newsletter": ALLOW, "events": NO_BASIS}, seen), CAPS, "run1")
    assert changes == []


def test_slot_awaiting_its_echo_is_not_planned_again() -> None:
    seen = {"klaviyo": Seen("k", {"newsletter": Status.SUBSCRIBED})}
    p = person({"newsletter": WITHDRAWN}, seen, in_flight=frozenset({("klaviyo", "newsletter")}))
    assert plan_person(p, CAPS, "run2") == []


def test_quarantined_person_is_tagged_for_repermission_and_never_added() -> None:
    seen = {
        "klaviyo": Seen("k", {"newsletter": Status.SUBSCRIBED}),
        "shopify": Seen("s", {"newsletter": Status.NOT_SUBSCRIBED}),
    }
    changes = plan_person(person({"newsletter": NO_BASIS}, seen, quarantined=True), CAPS, "run1")
    assert {(c.change.system, c.change.action) for c in changes} == {
        ("klaviyo", Action.UNSUBSCRIBE),
        ("klaviyo", Action.TAG),  # shopify has no tags: nothing to tag there, and no subscribe either
    }
    tag = next(c for c in changes if c.change.action == Action.TAG)
    assert (tag.change.tag, tag.rule, tag.slot) == (REPERMISSION_TAG, "R8", tag_slot(REPERMISSION_TAG))


def test_repermission_tag_is_removed_once_no_longer_quarantined() -> None:
    seen = {"klaviyo": Seen("k", {"newsletter": Status.SUBSCRIBED}, tags=frozenset({REPERMISSION_TAG}))}
    [change] = plan_person(person({"newsletter": ALLOW}, seen), CAPS, "run1")
    assert change.change.action == Action.UNTAG


def test_erasure_deletes_where_the_vendor_can_and_unsubscribes_elsewhere_r21() -> None:
    seen = {
        "klaviyo": Seen("k", {"newsletter": Status.SUBSCRIBED}),
        "shopify": Seen("s", {"newsletter": Status.SUBSCRIBED}),
    }
    changes = plan_person(person({"newsletter": NO_BASIS}, seen, erasure=True), CAPS, "run1")
    assert {(c.change.system, c.change.action, c.slot, c.rule) for c in changes} == {
        ("klaviyo", Action.ERASE, ACCOUNT, "R21"),
        ("shopify", Action.UNSUBSCRIBE, "newsletter", "R21"),
    }


def test_change_keys_are_unique_per_run_system_slot_and_action() -> None:
    seen = {s: Seen(s, dict.fromkeys(PURPOSES, Status.SUBSCRIBED)) for s in CAPS}
    changes = plan_person(person(dict.fromkeys(PURPOSES, NO_BASIS), seen), CAPS, "run1")
    assert len({c.change.key for c in changes}) == len(changes) > 0


statuses = st.sampled_from(list(Status))
verdicts = st.sampled_from([ALLOW, WITHDRAWN, NO_BASIS])
seen_strategy = st.builds(
    Seen,
    external_id=st.just("x"),
    statuses=st.dictionaries(st.sampled_from(PURPOSES), statuses),
    global_state=st.sampled_from(list(GlobalState)),
    tags=st.sets(st.sampled_from([REPERMISSION_TAG, "vip"])).map(frozenset),
)
people_strategy = st.builds(
    Person,
    email=st.just("jan@example.nl"),
    decisions=st.dictionaries(st.sampled_from(PURPOSES), verdicts),
    seen=st.dictionaries(st.sampled_from(sorted(CAPS)), seen_strategy),
    quarantined=st.booleans(),
    erasure=st.booleans(),
)


@given(people_strategy)
def test_applying_the_plan_and_planning_again_changes_nothing(p: Person) -> None:
    """Convergence: once the systems show what the plan asked, the next plan is empty."""
    first = plan_person(p, CAPS, "run1")
    after = {
        system: apply(seen, [c for c in first if c.change.system == system])
        for system, seen in p.seen.items()
    }
    again = plan_person(Person(p.email, p.decisions, after, p.quarantined, p.erasure), CAPS, "run2")
    assert again == []


@given(people_strategy)
def test_nothing_not_allowed_is_ever_subscribed(p: Person) -> None:
    for change in plan([p], CAPS, "run1"):
        if change.change.action == Action.SUBSCRIBE:
            assert change.change.purpose is not None
            assert p.decisions[change.change.purpose].allowed
            assert not p.erasure


def test_purpose_mailed_through_another_flag_waits_for_that_purpose_r27() -> None:
    """Mailchimp with newsletter on the member status: promotions alone would mail the newsletter too."""
    coupled = {"mailchimp": Capabilities(
        "mailchimp", (StreamInfo("contacts", True, True, 100),), ALL, frozenset({"newsletter", "promotions"}),
        requires={"promotions": "newsletter"},
    )}  # fmt: skip
    soft = Verdict(True, "soft_opt_in", "R12", "paid customer")
    seen = {
        "mailchimp": Seen("m", {"newsletter": Status.NOT_SUBSCRIBED, "promotions": Status.NOT_SUBSCRIBED})
    }
    assert plan_person(person({"newsletter": NO_BASIS, "promotions": soft}, seen), coupled, "run1") == []
    changes = plan_person(person({"newsletter": ALLOW, "promotions": soft}, seen), coupled, "run1")
    assert {(c.slot, c.change.action) for c in changes} == {
        ("newsletter", Action.SUBSCRIBE),
        ("promotions", Action.SUBSCRIBE),
    }


capabilities_strategy = st.builds(
    Capabilities,
    system=st.just("klaviyo"),
    streams=st.just((StreamInfo("contacts", True, True, 100),)),
    actions=st.sets(st.sampled_from(list(Action))).map(frozenset),
    purposes=st.sets(st.sampled_from(PURPOSES), min_size=1).map(frozenset),
    requires=st.dictionaries(st.sampled_from(PURPOSES), st.sampled_from(PURPOSES), max_size=4),
)


def plan_in_full(p: Person, capabilities: dict[str, Capabilities]) -> list[PlannedChange]:
    """plan_person without its fast path: every slot of every system through the full alignment."""
    out: list[PlannedChange] = []
    for system, seen in sorted(p.seen.items()):
        caps_of = capabilities.get(system)
        if caps_of is None:
            continue
        if p.erasure:
            out.extend(_erase(p, system, seen, caps_of, "run1"))
            continue
        for purpose in sorted(caps_of.purposes):
            decision = p.decisions.get(purpose)
            if decision is None or (system, purpose) in p.in_flight:
                continue
            status = seen.statuses.get(purpose, Status.NOT_SUBSCRIBED)
            representable = _representable(purpose, decision, p.decisions, caps_of)
            full = _align(p.email, system, seen, status, purpose, representable, caps_of, "run1")
            if full is not None:
                out.append(full)
        tag = _repermission(p, system, seen, caps_of, "run1")
        if tag is not None:
            out.append(tag)
    return out


@settings(max_examples=500)
@given(
    p=people_strategy,
    in_flight=st.sets(st.tuples(st.sampled_from(sorted(CAPS)), st.sampled_from(PURPOSES))).map(frozenset),
    soft=st.sets(st.sampled_from(PURPOSES)),
    capabilities=capabilities_strategy,
)
def test_the_fast_path_plans_what_the_full_alignment_plans(
    p: Person, in_flight: frozenset[tuple[str, str]], soft: set[str], capabilities: Capabilities
) -> None:
    """plan_person skips the slots that already show the desired state without aligning them in full
    (R27 coupling included); it plans exactly what aligning every slot in full plans."""
    decisions = {**p.decisions, **dict.fromkeys(soft, Verdict(True, "soft_opt_in", "R12", "paid customer"))}
    person_ = Person(p.email, decisions, p.seen, p.quarantined, p.erasure, in_flight)
    systems = {**CAPS, "klaviyo": capabilities}
    assert plan_person(person_, systems, "run1") == plan_in_full(person_, systems)


@given(people_strategy)
def test_planning_many_people_is_planning_each_alone(p: Person) -> None:
    other = Person("piet@example.nl", p.decisions, p.seen, not p.quarantined, p.erasure)
    assert plan([p, other], CAPS, "run1") == [
        *plan_person(p, CAPS, "run1"),
        *plan_person(other, CAPS, "run1"),
    ]
