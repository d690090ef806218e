"""Mailchimp member JSON -> canonical records: statuses, compliance states, evidence, purpose constructs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import ContactRecord, GlobalState, RecordError, Status
from connectors.mailchimp.mapping import Construct, contact_from_member, parse_purposes, subscriber_hash

PURPOSES = parse_purposes(
    {
        "newsletter": "status",
        "promotions": "interest:9143cf3bd1",
        "events": "tag:events",
        "lead_magnet": "permission:a1b2c3d4e5",
    }
)


def member(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": subscriber_hash("jan@example.nl"),
        "email_address": "Jan@Example.NL",
        "status": "subscribed",
        "interests": {"9143cf3bd1": True},
        "tags": [{"id": 1, "name": "events"}],
        "marketing_permissions": [
            {"marketing_permission_id": "a1b2c3d4e5", "text": "Email", "enabled": False}
        ],
        "timestamp_signup": "2026-01-05T10:00:00+00:00",
        "timestamp_opt": "2026-01-05T10:03:00+00:00",
        "ip_opt": "192.0.2.7",
        "source": "Hosted Signup Form",
        "last_changed": "2026-02-01T08:00:00+00:00",
    }
    return {**base, **fields}


def contact(**fields: Any) -> ContactRecord:
    mapped = contact_from_member(member(**fields), PURPOSES, "mailchimp:signup-form")
    assert isinstance(mapped, ContactRecord), mapped
    return mapped


def test_subscribed_member_maps_each_construct() -> None:
    record = contact()
    assert record.email == "jan@example.nl"
    assert record.external_id == subscriber_hash("jan@example.nl")
    assert record.updated_at == datetime(2026, 2, 1, 8, tzinfo=UTC)
    assert record.status_of("newsletter") is Status.SUBSCRIBED
    assert record.status_of("promotions") is Status.SUBSCRIBED
    assert record.status_of("events") is Status.SUBSCRIBED
    assert record.status_of("lead_magnet") is Status.NOT_SUBSCRIBED
    assert record.tags == frozenset({"events"})
    assert record.global_state is GlobalState.ACTIVE


def test_audience_unsubscribe_withdraws_every_purpose_it_carries_r20() -> None:
    record = contact(status="unsubscribed", unsubscribe_reason="N/A (Unsubscribed by an admin)")
    assert {p.status for p in record.purposes} == {Status.UNSUBSCRIBED}
    assert record.reason == "N/A (Unsubscribed by an admin)"
    assert record.global_changed_at == datetime(2026, 2, 1, 8, tzinfo=UTC)


def test_abuse_unsubscribe_is_a_complaint_r18() -> None:
    assert contact(status="unsubscribed", unsubscribe_reason="Abuse").global_state is GlobalState.COMPLAINED


@pytest.mark.parametrize("status", ["cleaned", "transactional", "archived"])
def test_states_off_the_marketing_list_are_not_subscribed(status: str) -> None:
    record = contact(status=status)
    assert {p.status for p in record.purposes} == {Status.NOT_SUBSCRIBED}


def test_cleaned_member_is_bounced_not_withdrawn() -> None:
    assert contact(status="cleaned").global_state is GlobalState.BOUNCED


def test_pending_member_is_pending_for_the_purposes_it_asked_r6() -> None:
    record = contact(status="pending", interests={"9143cf3bd1": False})
    assert record.status_of("newsletter") is Status.PENDING
    assert record.status_of("promotions") is Status.NOT_SUBSCRIBED


def test_form_signup_with_later_confirmation_is_attested_double_opt_in() -> None:
    evidence = contact().evidence
    assert evidence is not None
    assert evidence.method == "double_opt_in"
    assert evidence.double_opt_in is True
    assert evidence.collection_point == "mailchimp:signup-form"
    assert evidence.consent_at == datetime(2026, 1, 5, 10, 3, tzinfo=UTC)
    assert evidence.ip == "192.0.2.7"


def test_api_or_import_member_names_no_collection_point_r7_r8() -> None:
    for source, method in (("API - Generic", "api"), ("Import", "import")):
        evidence = contact(source=source, timestamp_signup="").evidence
        assert evidence is not None
        assert (evidence.method, evidence.collection_point, evidence.double_opt_in) == (method, None, None)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email_address": None}, "email_address"),
        ({"email_address": "jan at example"}, "email_address"),
        ({"status": "vip"}, "status"),
        ({"last_changed": 17}, "last_changed"),
        ({"timestamp_opt": "not a time"}, "timestamp_opt"),
        ({"tags": "events"}, "tags"),
    ],
)
def test_unmappable_member_names_record_and_field(fields: dict[str, Any], field: str) -> None:
    mapped = contact_from_member(member(**fields), PURPOSES, None)
    assert isinstance(mapped, RecordError)
    assert (mapped.system, mapped.record_id, mapped.field) == (
        "mailchimp",
        subscriber_hash("jan@example.nl"),
        field,
    )


def test_purpose_config_rejects_unknown_constructs() -> None:
    assert Construct.parse("p", "tag:vip") == Construct("tag", "vip")
    with pytest.raises(ValueError, match="'group:1'"):
        parse_purposes({"promotions": "group:1"})
