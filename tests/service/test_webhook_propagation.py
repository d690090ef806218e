"""`sync-worker run` over real HTTP with all four vendor sandboxes sending their own signed webhooks:
an unsubscribe in Mailchimp reaches the other three in the run its webhook starts, without any pull."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from connectors.base import Status
from connectors.registry import VENDORS
from sync_worker.demo import CATALOG, SECRET, available_sandboxes, grant_newsletter, serve_all, settings_for
from tests.e2e.test_propagation import JAN, OFF
from tests.service.watched import Watched

pytestmark = pytest.mark.slow
WEBHOOK_SECRETS = {
    "SYNC_SHOPIFY__WEBHOOK_SECRET": "shopify-hook-secret",
    "SYNC_HUBSPOT__CLIENT_SECRET": "hubspot-app-secret",
    "SYNC_MAILCHIMP__WEBHOOK_SECRET": "mailchimp-hook-secret",
    "SYNC_KLAVIYO__WEBHOOK_SECRET": "klaviyo-hook-secret",
}


def test_sandbox_unsubscribe_webhook_is_pushed_to_the_other_three_by_its_own_run(tmp_path: Path) -> None:
    structlog.reset_defaults()
    boxes = {box.name: box for box in available_sandboxes(lambda _line: None)}
    if len(boxes) < len(VENDORS):
        pytest.skip("not every vendor sandbox is available in this build")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    for box in boxes.values():
        box.clock.set(start)
        box.add_contact(JAN, {"newsletter": Status.SUBSCRIBED})
    with serve_all(list(boxes.values())) as env:
        grant_newsletter(settings_for(env, f"sqlite:///{tmp_path}/ledger.db"), [JAN], start)
        service = Watched(
            [sys.executable, "-m", "sync_worker", "run"],
            tmp_path,
            **env,
            **WEBHOOK_SECRETS,
            SYNC_SECRET_KEY=SECRET,
            SYNC_COLLECTION_POINTS=json.dumps(CATALOG),
            SYNC_LOG_FORMAT="json",
        )
        try:
            port = service.expect("service.listening")["port"]
            service.expect("run.finished", trigger="schedule")
            for name, box in boxes.items():
                secret = WEBHOOK_SECRETS[
                    f"SYNC_{name.upper()}__{'CLIENT' if name == 'hubspot' else 'WEBHOOK'}_SECRET"
                ]
                box.webhooks.subscribe(f"http://127.0.0.1:{port}", secret)
                box.clock.advance(60)
            assert all(box.status(JAN, "newsletter") == Status.SUBSCRIBED for box in boxes.values())

            boxes["mailchimp"].set_status(JAN, "newsletter", Status.UNSUBSCRIBED)

            summary = service.expect("run_summary", trigger="webhook")
            assert summary["status"] == "success", summary
            counts = summary["connectors"]
            assert counts["mailchimp"]["events"] >= 1  # recorded as the person's withdrawal (R20)
            others = ("shopify", "hubspot", "klaviyo")
            assert all(counts[name]["pushed"] >= 1 and counts[name]["pulled"] == 0 for name in others), counts
            states = {name: box.status(JAN, "newsletter") for name, box in boxes.items()}
            assert all(state in OFF for state in states.values()), states
            assert [a.status for a in boxes["mailchimp"].webhooks.wait()][-1] == 200
            assert service.stop() == 0
        finally:
            service.close()
            for box in boxes.values():
                box.webhooks.close()
