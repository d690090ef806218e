"""``sync-worker sandbox hubspot``: the HubSpot sandbox seeds from its demo data or a seed file."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.base import Status
from connectors.hubspot.sandbox import HubSpotSandbox
from sync_worker.cli import sandbox_cmd


def test_demo_seed_fills_the_hubspot_sandbox() -> None:
    sandbox = HubSpotSandbox()

    sandbox_cmd.seed_sandbox(sandbox, "demo")

    assert sandbox.status("anna@example.com", "newsletter") is Status.SUBSCRIBED
    assert sandbox.status("cor@example.com", "newsletter") is Status.UNSUBSCRIBED
    assert sandbox.state.opted_out("dina@example.com")


def test_seed_file_passes_hubspot_extras_through(tmp_path: Path) -> None:
    seed = tmp_path / "people.json"
    seed.write_text(
        json.dumps(
            [
                {"email": "a@example.com", "statuses": {"newsletter": "subscribed"}},
                {"email": "b@example.com", "statuses": {}, "opted_out_all": True},
            ]
        )
    )
    sandbox = HubSpotSandbox()

    sandbox_cmd.seed_sandbox(sandbox, str(seed))

    assert sandbox.status("a@example.com", "newsletter") is Status.SUBSCRIBED
    assert sandbox.status("b@example.com", "promotions") is Status.UNSUBSCRIBED
    assert sandbox.state.opted_out("b@example.com")
