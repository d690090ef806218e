"""`sync-worker run` over real HTTP with the four vendor sandboxes: HubSpot's webhook for one
subscription names the property that changed but not the new status, so the run it starts reads that
contact's statuses from HubSpot and propagates an opt-out at once; our own push coming back is an echo."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Status
from connectors.hubspot.sandbox_webhooks import TOPIC, build, events, optouts
from tests.e2e.test_propagation import JAN, OFF
from tests.service.sandbox_world import ANNA, worker_with_sandboxes

pytestmark = pytest.mark.slow


def test_hubspot_subscription_opt_out_is_read_back_and_pushed_to_the_other_three(tmp_path: Path) -> None:
    with worker_with_sandboxes(tmp_path) as world:
        world.hubspot.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)

        read = world.service.expect("read_back", connector="hubspot")
        summary = world.service.expect("run_summary", trigger="webhook")
        assert (read["people"], read["records"]) == (1, 1)
        assert summary["status"] == "success", summary
        counts = summary["connectors"]
        assert counts["hubspot"]["events"] >= 1  # the person's withdrawal, recorded from HubSpot's status
        others = ("shopify", "mailchimp", "klaviyo")
        assert all(counts[name]["pushed"] >= 1 and counts[name]["pulled"] == 0 for name in others), counts
        states = world.states(JAN)
        assert all(state in OFF for state in states.values()), states
        assert world.states(ANNA)["mailchimp"] == Status.SUBSCRIBED  # only Jan's run
        assert [a.status for a in world.hubspot.webhooks.wait()] == [200]


def test_hubspot_webhook_for_our_own_push_is_read_back_as_an_echo(tmp_path: Path) -> None:
    with worker_with_sandboxes(tmp_path) as world:
        world.boxes["mailchimp"].set_status(ANNA, "newsletter", Status.UNSUBSCRIBED)
        pushed = world.service.expect("run_summary", trigger="webhook")
        assert pushed["connectors"]["hubspot"]["pushed"] >= 1
        assert world.hubspot.status(ANNA, "newsletter") == Status.UNSUBSCRIBED

        # HubSpot announces the property change our push made, as it does for any change.
        contact = world.hubspot.state.find(ANNA)
        assert contact is not None
        now = world.hubspot.clock.now()
        changed = f"hs_email_optout_{world.hubspot.purposes['newsletter']}"
        batch = events(contact, {**optouts(contact), changed: "false"}, now, "API")
        assert [event["propertyName"] for event in batch] == [changed]
        world.hubspot.webhooks.fire(TOPIC, build(batch, now))

        world.service.expect("read_back", connector="hubspot", people=1)
        echoed = world.service.expect("run_summary", trigger="webhook")
        hubspot = echoed["connectors"]["hubspot"]
        assert (hubspot["events"], hubspot["echoes"]) == (0, 1), echoed  # our push, not Anna's act (R8)
        assert [a.status for a in world.hubspot.webhooks.wait()] == [200]
