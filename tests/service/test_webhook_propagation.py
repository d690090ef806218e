"""`sync-worker run` over real HTTP with all four vendor sandboxes sending their own signed webhooks:
an unsubscribe in Mailchimp reaches the other three in the run its webhook starts, without any pull."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Status
from tests.e2e.test_propagation import JAN, OFF
from tests.service.sandbox_world import worker_with_sandboxes

pytestmark = pytest.mark.slow


def test_sandbox_unsubscribe_webhook_is_pushed_to_the_other_three_by_its_own_run(tmp_path: Path) -> None:
    with worker_with_sandboxes(tmp_path) as world:
        world.boxes["mailchimp"].set_status(JAN, "newsletter", Status.UNSUBSCRIBED)

        summary = world.service.expect("run_summary", trigger="webhook")
        assert summary["status"] == "success", summary
        counts = summary["connectors"]
        assert counts["mailchimp"]["events"] >= 1  # recorded as the person's withdrawal (R20)
        others = ("shopify", "hubspot", "klaviyo")
        assert all(counts[name]["pushed"] >= 1 and counts[name]["pulled"] == 0 for name in others), counts
        states = world.states(JAN)
        assert all(state in OFF for state in states.values()), states
        assert [a.status for a in world.boxes["mailchimp"].webhooks.wait()][-1] == 200
