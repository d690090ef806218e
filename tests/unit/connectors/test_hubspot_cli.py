"""``sync-worker sandbox hubspot``: the HubSpot sandbox takes its demo data and seed files."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.base import Status
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.seed import read_seed_file, seed


def test_demo_data_covers_subscribed_unsubscribed_and_opted_out_of_all() -> None:
    sandbox = HubSpotSandbox()

    sandbox.seed_demo()

    assert sandbox.status("anna@example.com", "newsletter") is Status.SUBSCRIBED
    assert sandbox.status("cor@example.com", "newsletter") is Status.UNSUBSCRIBED
    assert sandbox.state.opted_out("dina@example.com")


def test_seed_file_passes_hubspot_extras_through_and_refuses_pending_whole(tmp_path: Path) -> None:
    lines = [
        {"email": "a@example.com", "statuses": {"newsletter": "subscribed"}},
        {"email": "b@example.com", "statuses": {}, "opted_out_all": True},
        {"email": "p@example.com", "statuses": {"newsletter": "pending"}},  # HubSpot has no pending
    ]
    path = tmp_path / "people.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    sandbox = HubSpotSandbox()
    contacts, errors = read_seed_file(path)

    refused = seed(sandbox, contacts)

    assert errors == []
    assert refused == ["p@example.com: HubSpot has no pending state for purpose 'newsletter'"]
    assert sandbox.status("p@example.com", "newsletter") is None  # nothing half-added
    assert sandbox.status("a@example.com", "newsletter") is Status.SUBSCRIBED
    assert sandbox.status("b@example.com", "promotions") is Status.UNSUBSCRIBED
    assert sandbox.state.opted_out("b@example.com")
