"""Klaviyo's consent and suppression states as canonical facts (not errors), each with its rule."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.base import ContactRecord, GlobalState, RecordError, Status
from connectors.klaviyo.mapping import PurposeMap, to_contact
from tests.unit.connectors.klaviyo_support import spec_profile

PURPOSES = PurposeMap(lists={"promotions": "Y6nRLr"}, consent_purposes=("newsletter",))
AT = "2024-05-01T08:00:00+00:00"
AT_TIME = datetime(2024, 5, 1, 8, tzinfo=UTC)


def _record(purposes: PurposeMap = PURPOSES, member: bool = False, **profile: object) -> ContactRecord:
    mapped = to_contact(spec_profile(**profile), {"promotions": None} if member else {}, purposes)  # type: ignore[arg-type]
    assert isinstance(mapped, ContactRecord), mapped
    return mapped


def test_subscribed_consent_maps_to_subscribed_consent_purposes_with_evidence() -> None:
    record = _record()
    assert record.status_of("newsletter") is Status.SUBSCRIBED
    assert record.global_state is GlobalState.ACTIVE
    assert record.evidence is not None
    assert record.evidence.consent_at == datetime(2023, 2, 21, 20, 7, 38, tzinfo=UTC)
    assert (record.evidence.method, record.evidence.double_opt_in) == ("PREFERENCE_PAGE", True)


def test_never_subscribed_is_not_subscribed_and_carries_no_evidence() -> None:
    record = _record(consent="NEVER_SUBSCRIBED")
    assert record.status_of("newsletter") is Status.NOT_SUBSCRIBED
    assert record.evidence is None


def test_spam_complaint_is_an_objection_r18() -> None:
    record = _record(consent="UNSUBSCRIBED", suppression=[{"reason": "SPAM_COMPLAINT", "timestamp": AT}])
    assert record.global_state is GlobalState.COMPLAINED
    assert (record.reason, record.global_changed_at) == ("SPAM_COMPLAINT", AT_TIME)


def test_unsubscribe_suppression_is_a_global_objection_r17_by_default() -> None:
    record = _record(consent="UNSUBSCRIBED", suppression=[{"reason": "UNSUBSCRIBE", "timestamp": AT}])
    assert record.global_state is GlobalState.UNSUBSCRIBED_ALL
    assert record.status_of("newsletter") is Status.UNSUBSCRIBED


def test_unsubscribe_suppression_can_be_configured_as_withdrawal_of_consent_purposes_only_r16() -> None:
    purposes = PurposeMap(
        lists={"promotions": "Y6nRLr"}, consent_purposes=("newsletter",), unsubscribe_is_objection=False
    )
    record = _record(purposes, member=True, suppression=[{"reason": "UNSUBSCRIBE", "timestamp": AT}])
    assert record.global_state is GlobalState.ACTIVE
    assert record.purposes[0].status is Status.UNSUBSCRIBED
    assert record.purposes[0].changed_at == AT_TIME
    assert record.status_of("promotions") is Status.SUBSCRIBED


def test_hard_bounce_is_bounced_and_user_suppressed_is_suppressed() -> None:
    bounced = _record(suppression=[{"reason": "HARD_BOUNCE", "timestamp": AT}])
    suppressed = _record(suppression=[{"reason": "USER_SUPPRESSED", "timestamp": AT}])
    assert bounced.global_state is GlobalState.BOUNCED
    assert suppressed.global_state is GlobalState.SUPPRESSED


def test_complaint_outranks_a_bounce_when_both_are_present() -> None:
    record = _record(
        suppression=[
            {"reason": "HARD_BOUNCE", "timestamp": AT},
            {"reason": "SPAM_COMPLAINT", "timestamp": AT},
        ]
    )
    assert record.global_state is GlobalState.COMPLAINED


def test_list_suppression_is_a_withdrawal_of_that_list_purpose_only_r16() -> None:
    record = _record(
        member=True, list_suppressions=[{"list_id": "Y6nRLr", "reason": "UNSUBSCRIBE", "timestamp": AT}]
    )
    assert record.status_of("promotions") is Status.UNSUBSCRIBED
    assert record.status_of("newsletter") is Status.SUBSCRIBED


def test_list_membership_is_the_list_purposes_subscription() -> None:
    assert _record(member=True).status_of("promotions") is Status.SUBSCRIBED
    assert _record(member=False).status_of("promotions") is Status.NOT_SUBSCRIBED


def test_unknown_suppression_reason_is_reported_with_its_field() -> None:
    mapped = to_contact(spec_profile(suppression=[{"reason": "MOON_PHASE", "timestamp": AT}]), {}, PURPOSES)
    assert isinstance(mapped, RecordError)
    assert mapped.field == "attributes.subscriptions.email.marketing.suppression[0].reason"


def test_profile_without_subscriptions_is_reported_not_guessed() -> None:
    profile = spec_profile()
    del profile["attributes"]["subscriptions"]
    mapped = to_contact(profile, {}, PURPOSES)
    assert isinstance(mapped, RecordError)
    assert mapped.field == "attributes.subscriptions"
