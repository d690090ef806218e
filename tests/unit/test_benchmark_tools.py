"""The full-run benchmark's tools: the fewest push requests per vendor, and a virtual-clock run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from benchmarks.least_requests import Row, least_requests
from connectors.base import Action, Change
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.klaviyo.sandbox import KlaviyoSandbox
from connectors.mailchimp.sandbox import MailchimpSandbox
from connectors.shopify.sandbox import ShopifySandbox
from sync_worker.outbox import change_to_json

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def row(system: str, n: int, action: Action, purpose: str | None = None, **extra: object) -> Row:
    change = Change(f"{system}{n}{action}{purpose}", system, f"p{n}@example.nl", action, purpose, **extra)  # type: ignore[arg-type]
    slot = purpose or (f"tag:{change.tag}" if change.tag else "*")
    return (system, change.email, slot, action.value, change_to_json(change))


def test_mailchimp_floor_counts_members_once_tags_per_500_and_permissions_and_erasures_per_member() -> None:
    rows = [row("mailchimp", n, Action.UNSUBSCRIBE, "newsletter") for n in range(600)]
    rows += [row("mailchimp", n, Action.UNSUBSCRIBE, "promotions") for n in range(600)]  # same members
    rows += [row("mailchimp", n, Action.TAG, tag="re-permission") for n in range(501)]
    rows += [row("mailchimp", n, Action.UNSUBSCRIBE, "lead_magnet") for n in range(7)]  # a permission
    rows += [row("mailchimp", n, Action.ERASE) for n in range(3)]
    least, formula = least_requests(rows, [MailchimpSandbox()], {"mailchimp": {"unsubscribe": 500}})
    assert least == {"mailchimp": 2 + 2 + 7 + 3}
    assert formula == {"mailchimp": 3 + 6 + 1}  # ceil(1207 / 500) + ceil(501 / 100) + ceil(3 / 100)


def test_klaviyo_floor_is_per_list_and_per_kind_of_subscribe_job() -> None:
    rows = [row("klaviyo", n, Action.SUBSCRIBE, "promotions") for n in range(10)]
    rows += [row("klaviyo", n, Action.SUBSCRIBE, "events") for n in range(10)]
    rows += [row("klaviyo", n, Action.SUBSCRIBE, "newsletter", consent_at=T0) for n in range(2)]
    rows += [row("klaviyo", n, Action.SUBSCRIBE, "newsletter") for n in range(2)]
    rows += [row("klaviyo", n, Action.UNSUBSCRIBE, "newsletter") for n in range(101)]
    least, _ = least_requests(rows, [KlaviyoSandbox()], {"klaviyo": {}})
    assert least == {"klaviyo": 2 + 2 + 2}  # two lists, historical and not, 101 unsubscribes


def test_hubspot_and_shopify_floors_mix_actions_in_one_batch() -> None:
    rows = [row("hubspot", n, Action.SUBSCRIBE, "promotions") for n in range(60)]
    rows += [row("hubspot", n, Action.UNSUBSCRIBE, "newsletter") for n in range(40)]
    rows += [row("shopify", n, Action.UNSUBSCRIBE, "newsletter") for n in range(50)]
    rows += [row("shopify", n, Action.TAG, tag="re-permission") for n in range(50)]
    least, _ = least_requests(rows, [HubSpotSandbox(), ShopifySandbox()], {"hubspot": {}, "shopify": {}})
    assert least == {"hubspot": 1, "shopify": 2}


@pytest.mark.slow
def test_a_virtual_clock_run_pushes_within_a_tenth_of_the_vendors_floor() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.full_run", "--measure", "200", "--virtual-clock"],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["full"]["status"] == "success"
    assert result["full"]["virtual_wait_s"] > 0, "the vendors' limits were kept on the virtual clock"
    assert all(counts["failed"] == 0 for counts in result["full"]["counts"].values())
    pushed, least = sum(result["full_pushes"].values()), sum(result["least_pushes"].values())
    assert pushed <= 1.1 * least, (result["full_pushes"], result["least_pushes"])
