"""One test (or a few) per RULES.md rule: each fails when its rule is broken in the policy core."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sync_worker.policy import Point, decide, decide_all, downstream_status
from tests.unit.consent_factories import (
    NOW,
    POLICY,
    PROVEN,
    T0,
    at,
    confirm,
    grant,
    negative,
    person,
    purchase,
)


def test_r1_empty_ledger_denies_every_purpose() -> None:
    for decision in decide_all(person(), POLICY, NOW):
        assert (decision.allowed, decision.basis, decision.rule) == (False, "none", "R1")


def test_r2_newsletter_grant_does_not_imply_promotions() -> None:
    facts = person(grant(1, "newsletter"))
    assert decide(facts, "newsletter", POLICY, NOW).allowed
    assert decide(facts, "promotions", POLICY, NOW).rule == "R1"
    assert not decide(facts, "promotions", POLICY, NOW).allowed


def test_r2_bundled_tick_grants_nothing() -> None:
    decision = decide(person(grant(1, "newsletter", bundled=True)), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R2")


def test_r2_grant_without_a_purpose_grants_nothing() -> None:
    decision = decide(person(grant(1, "*")), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R2")


def test_r2_purpose_not_asked_at_the_collection_point_grants_nothing() -> None:
    decision = decide(
        person(grant(1, "newsletter", point="website:doi", purpose_version=None)), "newsletter", POLICY, NOW
    )
    assert decision.rule == "R6"  # that point asks newsletter: it is pending, not a purpose error
    decision = decide(person(grant(2, "events", point="website:doi")), "events", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R2")


def test_r3_prechecked_box_grants_nothing() -> None:
    decision = decide(person(grant(1, checkbox_prechecked=True)), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R3")


def test_r3_prechecked_collection_point_grants_nothing() -> None:
    policy = replace(POLICY, collection_points=(("website:footer", Point(("newsletter",), prechecked=True)),))
    decision = decide(person(grant(1)), "newsletter", policy, NOW)
    assert (decision.allowed, decision.rule) == (False, "R3")


def test_r4_consent_required_for_something_else_grants_nothing() -> None:
    decision = decide(person(grant(1, was_required=True)), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R4")


def test_r5_attested_grant_is_not_enough_when_proof_is_required() -> None:
    strict = replace(POLICY, min_evidence="proven")
    decision = decide(person(grant(1)), "newsletter", strict, NOW)
    assert (decision.allowed, decision.rule, decision.quarantined) == (False, "R5", True)
    assert decide(person(grant(2, **PROVEN)), "newsletter", strict, NOW).allowed


def test_r5_attested_grant_allows_by_default() -> None:
    decision = decide(person(grant(1)), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.basis, decision.rule, decision.event_ids) == (
        True,
        "consent",
        "R5",
        (1,),
    )


def test_r6_double_opt_in_grant_is_pending_until_confirmed() -> None:
    pending = decide(person(grant(1, point="website:doi")), "newsletter", POLICY, at(days=3))
    assert (pending.allowed, pending.rule, pending.code) == (False, "R6", "double_opt_in_pending")
    confirmed = decide(
        person(grant(1, point="website:doi"), confirm(2, at(days=1))), "newsletter", POLICY, NOW
    )
    assert confirmed.allowed
    assert confirmed.event_ids == (1, 2)


def test_r6_pending_grant_lapses_after_30_days() -> None:
    lapsed = decide(person(grant(1, point="website:doi")), "newsletter", POLICY, at(days=31))
    assert (lapsed.allowed, lapsed.code) == (False, "double_opt_in_lapsed")
    late = decide(person(grant(1, point="website:doi"), confirm(2, at(days=31))), "newsletter", POLICY, NOW)
    assert (late.allowed, late.rule) == (False, "R6")


def test_r7_third_party_consent_not_naming_us_is_quarantined() -> None:
    decision = decide(
        person(grant(1, third_party=True, controller="Lijstboer B.V.")), "newsletter", POLICY, NOW
    )
    assert (decision.allowed, decision.rule, decision.quarantined) == (False, "R7", True)
    named = decide(
        person(grant(2, third_party=True, controller=POLICY.controller)), "newsletter", POLICY, NOW
    )
    assert named.allowed


def test_r8_subscribed_flag_without_evidence_is_quarantined() -> None:
    flag = grant(1, point=None, method="sync", source="mailchimp")
    decision = decide(person(flag), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule, decision.quarantined) == (False, "R8", True)


def test_r10_grant_before_a_material_change_does_not_cover_the_new_version() -> None:
    policy = replace(
        POLICY, purpose_versions=(("newsletter", "3"),), material_changes=(("newsletter", ("2",)),)
    )
    old = decide(person(grant(1, purpose_version="1")), "newsletter", policy, NOW)
    assert (old.allowed, old.rule) == (False, "R10")
    assert decide(person(grant(2, purpose_version="2")), "newsletter", policy, NOW).allowed


def test_r11_minor_without_parental_consent_grants_nothing() -> None:
    decision = decide(person(grant(1, age=15)), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule, decision.code) == (
        False,
        "R11",
        "minor_without_parental_consent",
    )
    assert "parental consent" in decision.reason
    assert not decision.quarantined  # no re-permission mail to a child


def test_r11_minor_with_parental_consent_is_allowed() -> None:
    decision = decide(person(grant(1, age=15, parental_consent=True)), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (True, "R5")
    void = decide(person(grant(1, age=15, parental_consent=False)), "newsletter", POLICY, NOW)
    assert void.rule == "R11"


def test_r11_sixteen_is_old_enough_and_the_threshold_is_a_setting() -> None:
    assert decide(person(grant(1, age=16)), "newsletter", POLICY, NOW).allowed
    assert decide(person(grant(1, age=13)), "newsletter", replace(POLICY, minor_age=13), NOW).allowed
    assert decide(person(grant(1, age=12)), "newsletter", replace(POLICY, minor_age=13), NOW).rule == "R11"


def test_r11_age_from_a_birth_date_counts_at_the_grant_not_now() -> None:
    fifteen_at_grant = date(2010, T0.month, T0.day + 1)  # turns 16 the day after the grant
    much_later = at(days=2 * 366)  # 17 by now
    decision = decide(person(grant(1, birth_date=fifteen_at_grant)), "newsletter", POLICY, much_later)
    assert (decision.allowed, decision.rule) == (False, "R11")
    sixteenth_birthday = date(2010, T0.month, T0.day)
    assert decide(person(grant(1, birth_date=sixteenth_birthday)), "newsletter", POLICY, NOW).allowed


def test_r11_does_not_apply_without_an_age_on_record() -> None:
    decision = decide(person(grant(1, parental_consent=False)), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (True, "R5")


def test_r11_is_named_before_form_and_evidence_defects() -> None:
    prechecked = decide(person(grant(1, age=14, checkbox_prechecked=True)), "newsletter", POLICY, NOW)
    assert prechecked.rule == "R11"  # R3 applies too
    flag = grant(1, point=None, method="sync", source="mailchimp", age=14)
    unproven = decide(person(flag), "newsletter", POLICY, NOW)
    assert (unproven.rule, unproven.quarantined) == ("R11", False)  # R8 applies too


def test_r11_a_minor_is_not_quarantined_for_other_purposes_either() -> None:
    flag = grant(2, "promotions", point=None, method="sync", source="mailchimp")
    assert decide(person(flag), "promotions", POLICY, NOW).quarantined  # R8 alone: re-permission
    decision = decide(person(grant(1, age=15), flag), "promotions", POLICY, NOW)
    assert (decision.rule, decision.quarantined) == ("R8", False)


def test_r11_a_later_grant_as_an_adult_allows() -> None:
    adult = grant(2, when=at(days=400), age=16)
    decision = decide(person(grant(1, age=15), adult), "newsletter", POLICY, at(days=401))
    assert (decision.allowed, decision.event_ids) == (True, (2,))


def test_r12_paid_purchase_allows_promotions_of_similar_categories_only() -> None:
    decision = decide(person(purchase(1, at(days=10))), "promotions", POLICY, NOW)
    assert (decision.allowed, decision.basis, decision.rule) == (True, "soft_opt_in", "R12")
    assert decision.categories == ("phone-cases", "phones")
    assert not decide(person(purchase(1, at(days=10))), "newsletter", POLICY, NOW).allowed


def test_r12_opt_out_used_at_checkout_blocks_soft_opt_in() -> None:
    decision = decide(person(purchase(1, opt_out_used=True)), "promotions", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R12")


def test_r13_unpaid_quote_request_is_not_a_purchase() -> None:
    decision = decide(person(purchase(1, paid=False)), "promotions", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R1")


def test_r14_soft_opt_in_lapses_after_the_window_and_a_new_purchase_restarts_it() -> None:
    old = purchase(1, T0)
    later = at(days=25 * 31)
    decision = decide(person(old), "promotions", POLICY, later)
    assert (decision.allowed, decision.rule) == (False, "R14")
    assert decide(person(old, purchase(2, at(days=24 * 31))), "promotions", POLICY, later).allowed


def test_r15_purchase_after_objection_does_not_revive_soft_opt_in() -> None:
    facts = person(
        purchase(1, T0), negative(2, "withdraw", at(days=1), purpose="promotions"), purchase(3, at(days=2))
    )
    decision = decide(facts, "promotions", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R15")


def test_r16_withdrawal_is_per_purpose() -> None:
    facts = person(
        grant(1, "newsletter"), grant(2, "promotions"), negative(3, "withdraw", at(1), purpose="newsletter")
    )
    withdrawn = decide(facts, "newsletter", POLICY, NOW)
    assert (withdrawn.allowed, withdrawn.rule, withdrawn.event_ids) == (False, "R16", (3,))
    assert decide(facts, "promotions", POLICY, NOW).allowed


def test_r16_withdrawal_after_grant_denies_newsletter_only_from_its_time() -> None:
    facts = person(grant(1), negative(2, "withdraw", at(days=10), purpose="newsletter"))
    assert decide(facts, "newsletter", POLICY, at(days=5)).allowed
    assert not decide(facts, "newsletter", POLICY, at(days=11)).allowed


def test_r17_objection_blocks_every_purpose() -> None:
    facts = person(
        *(grant(i, p) for i, p in enumerate(("newsletter", "promotions", "events"), 1)),
        negative(9, "object", at(1), purpose="newsletter"),
    )
    for decision in decide_all(facts, POLICY, NOW):
        assert (decision.allowed, decision.rule) == (False, "R17")


def test_r18_spam_complaint_is_an_objection() -> None:
    facts = person(grant(1, "events"), purchase(2), negative(3, "complaint", at(1)))
    for decision in decide_all(facts, POLICY, NOW):
        assert not decision.allowed
        assert decision.rule in {"R18", "R15"}
    assert decide(facts, "events", POLICY, NOW).rule == "R18"


def test_r19_unsubscribe_without_purpose_withdraws_all_marketing() -> None:
    facts = person(grant(1, "events"), negative(2, "withdraw", at(1), purpose="*"))
    decision = decide(facts, "events", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R17")


def test_r20_withdrawal_needs_no_evidence_and_no_source_time() -> None:
    bare = negative(
        2, "withdraw", when=None, purpose="newsletter", source="customer-service", recorded=at(days=2)
    )
    facts = person(grant(1), bare)
    assert decide(facts, "newsletter", POLICY, at(days=1)).allowed
    assert not decide(facts, "newsletter", POLICY, at(days=3)).allowed


def test_r21_erasure_event_stops_all_marketing() -> None:
    decision = decide(person(grant(1), negative(2, "erasure", at(1))), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R21")


def test_r22_suppression_wins_over_a_valid_grant() -> None:
    decision = decide(person(grant(1, when=at(days=30)), suppressed=True), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule, decision.event_ids) == (False, "R22", ())


def test_r23_import_after_withdrawal_does_not_regrant() -> None:
    withdrawal = negative(1, "withdraw", T0, purpose="newsletter")
    imported = grant(2, when=at(days=1), method="import", source="csv")
    decision = decide(person(withdrawal, imported), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R23")
    fresh = grant(3, when=at(days=2), method="web_form")
    assert decide(person(withdrawal, imported, fresh), "newsletter", POLICY, NOW).allowed


def test_r23_a_later_import_does_not_hide_the_persons_own_regrant() -> None:
    withdrawal = negative(1, "withdraw", T0, purpose="newsletter")
    own = grant(2, when=at(days=1), method="web_form")
    imported = grant(3, when=at(days=2), method="import", source="csv")
    assert decide(person(withdrawal, own, imported), "newsletter", POLICY, NOW).allowed


def test_r27_anything_but_allow_is_unsubscribed_downstream() -> None:
    assert downstream_status(decide(person(grant(1)), "newsletter", POLICY, NOW)) == "subscribed"
    assert (
        downstream_status(decide(person(grant(1, point=None)), "newsletter", POLICY, NOW)) == "unsubscribed"
    )
    assert downstream_status(None) == "unsubscribed"


def test_r29_late_arriving_withdrawal_overrides_an_earlier_grant() -> None:
    late = negative(2, "withdraw", at(minutes=60), purpose="newsletter", recorded=at(days=5))
    facts = person(grant(1, when=at(minutes=30)), late)
    assert not decide(facts, "newsletter", POLICY, NOW).allowed


def test_r29_grant_acted_after_withdrawal_counts_whatever_the_arrival_order() -> None:
    early = negative(1, "withdraw", T0, purpose="newsletter", recorded=at(days=9))
    assert decide(person(early, grant(2, when=at(days=1))), "newsletter", POLICY, NOW).allowed


def test_r30_grant_and_withdrawal_at_the_same_time_resolve_to_withdrawal() -> None:
    facts = person(grant(1, when=T0), negative(2, "withdraw", T0, purpose="newsletter"))
    decision = decide(facts, "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule) == (False, "R30")


def test_r30_grant_within_the_skew_window_of_another_system_is_a_tie() -> None:
    withdrawal = negative(1, "withdraw", T0, purpose="newsletter", source="mailchimp")
    skewed = decide(person(withdrawal, grant(2, when=at(minutes=4))), "newsletter", POLICY, NOW)
    assert (skewed.allowed, skewed.rule) == (False, "R30")
    assert decide(person(withdrawal, grant(3, when=at(minutes=6))), "newsletter", POLICY, NOW).allowed


def test_r31_grant_without_source_time_is_unproven() -> None:
    decision = decide(person(grant(1, when=None)), "newsletter", POLICY, NOW)
    assert (decision.allowed, decision.rule, decision.quarantined) == (False, "R31", True)


def test_r37_lead_magnet_form_grants_the_sequence_but_not_the_newsletter() -> None:
    facts = person(
        grant(1, "lead_magnet", point="website:ebook"), grant(2, "newsletter", point="website:ebook")
    )
    assert decide(facts, "lead_magnet", POLICY, NOW).allowed
    newsletter = decide(facts, "newsletter", POLICY, NOW)
    assert (newsletter.allowed, newsletter.rule) == (False, "R37")


def test_r38_event_invitations_need_consent_not_a_purchase() -> None:
    assert not decide(person(purchase(1, at(days=1))), "events", POLICY, NOW).allowed
    assert decide(person(grant(2, "events")), "events", POLICY, NOW).allowed


def test_quarantine_is_not_set_for_form_defects() -> None:
    assert not decide(person(grant(1, checkbox_prechecked=True)), "newsletter", POLICY, NOW).quarantined
