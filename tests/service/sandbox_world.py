"""`sync-worker run` in a process of its own with the four vendor sandboxes served over real HTTP, each
sending its signed webhooks to the worker."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from connectors.base import Status
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.registry import VENDORS
from sync_worker.demo import CATALOG, SECRET, available_sandboxes, grant_newsletter, serve_all, settings_for
from tests.e2e.test_propagation import JAN
from tests.service.watched import Watched

ANNA = "anna@example.nl"
WEBHOOK_SECRETS = {
    "SYNC_SHOPIFY__WEBHOOK_SECRET": "shopify-hook-secret",
    "SYNC_HUBSPOT__CLIENT_SECRET": "hubspot-app-secret",
    "SYNC_MAILCHIMP__WEBHOOK_SECRET": "mailchimp-hook-secret",
    "SYNC_KLAVIYO__WEBHOOK_SECRET": "klaviyo-hook-secret",
}


@dataclass
class World:
    boxes: dict[str, Any]
    service: Watched

    @property
    def hubspot(self) -> HubSpotSandbox:
        box = self.boxes["hubspot"]
        assert isinstance(box, HubSpotSandbox)
        return box

    def states(self, email: str) -> dict[str, Status | None]:
        return {name: box.status(email, "newsletter") for name, box in self.boxes.items()}


@contextmanager
def worker_with_sandboxes(tmp_path: Path) -> Iterator[World]:
    """Jan and Anna subscribed everywhere with a grant in the ledger; the worker's first scheduled run
    done (so it knows HubSpot's contact ids); every sandbox sending its webhooks to the worker."""
    structlog.reset_defaults()
    boxes = {box.name: box for box in available_sandboxes(lambda _line: None)}
    if len(boxes) < len(VENDORS):
        pytest.skip("not every vendor sandbox is available in this build")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    for box in boxes.values():
        box.clock.set(start)
        for person in (JAN, ANNA):
            box.add_contact(person, {"newsletter": Status.SUBSCRIBED})
    with serve_all(list(boxes.values())) as env:
        grant_newsletter(settings_for(env, f"sqlite:///{tmp_path}/ledger.db"), [JAN, ANNA], start)
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
                kind = "CLIENT" if name == "hubspot" else "WEBHOOK"
                box.webhooks.subscribe(
                    f"http://127.0.0.1:{port}", WEBHOOK_SECRETS[f"SYNC_{name.upper()}__{kind}_SECRET"]
                )
                # Now, not the past the contacts were made in: HubSpot's signature carries a time the
                # worker holds to a 5-minute window.
                box.clock.set(datetime.now(UTC).replace(microsecond=0))
            world = World(boxes, service)
            assert all(state == Status.SUBSCRIBED for state in world.states(JAN).values())
            yield world
            assert service.stop() == 0
        finally:
            service.close()
            for box in boxes.values():
                box.webhooks.close()
