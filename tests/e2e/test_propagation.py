"""End to end over real HTTP with every vendor sandbox served on 127.0.0.1 and the real ledger:
an unsubscribe in any one vendor reaches all the others in one run, and the runs after it are quiet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from config import Settings
from connectors.base import Status, StreamInfo
from connectors.registry import VENDORS as ALL_VENDORS
from connectors.registry import connector_class
from sync_worker import db
from sync_worker.demo import available_sandboxes, grant_newsletter, serve_all, settings_for
from sync_worker.runner import RunReport, run_once
from tests.runs.fakes import ledger_actions

pytestmark = pytest.mark.slow
JAN = "jan@example.nl"
OFF = {Status.UNSUBSCRIBED, Status.NOT_SUBSCRIBED}


class World:
    def __init__(self, boxes: list[Any], settings: Settings) -> None:
        self.boxes = {box.name: box for box in boxes}
        self.settings = settings

    def run(self, **kw: Any) -> RunReport:
        report = run_once(self.settings, trigger="manual", **kw)
        for box in self.boxes.values():
            box.clock.advance(60)  # the next vendor-side change gets a later stamp than our pushes
        return report


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    structlog.reset_defaults()
    boxes = available_sandboxes(lambda _line: None)
    if len(boxes) < len(ALL_VENDORS):
        pytest.skip("not every vendor sandbox is available in this build")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    for box in boxes:
        if hasattr(box, "bucket"):  # Shopify's query-cost bucket refills in real time: no waiting in tests
            from connectors.shopify.sandbox_data import CostBucket

            box.bucket = CostBucket(maximum=1e9, restore_rate=1e9)
        box.clock.set(start)
        box.add_contact(JAN, {"newsletter": Status.SUBSCRIBED})
    with serve_all(boxes) as env:
        settings = settings_for(env, f"sqlite:///{tmp_path}/ledger.db")
        grant_newsletter(settings, [JAN], start)
        yield World(boxes, settings)


@pytest.mark.parametrize("where", ALL_VENDORS)
def test_unsubscribe_in_one_vendor_reaches_every_other_in_one_run(world: World, where: str) -> None:
    first = world.run()
    assert first.status == "success", first.summary()
    assert all(box.status(JAN, "newsletter") == Status.SUBSCRIBED for box in world.boxes.values())

    world.boxes[where].set_status(JAN, "newsletter", Status.UNSUBSCRIBED)
    report = world.run()
    assert report.status == "success", report.summary()
    states = {name: box.status(JAN, "newsletter") for name, box in world.boxes.items()}
    assert all(state in OFF for state in states.values()), states
    engine = db.make_engine(world.settings.database_url)
    negative = [(s, a) for s, a in ledger_actions(engine, JAN) if a in ("withdraw", "object")]
    # The person's act only (a vendor may read it as several purposes, or as all marketing); our pushes
    # to the other vendors are no evidence.
    assert negative
    assert {source for source, _ in negative} == {where}

    echo = world.run()  # reads back our pushes
    quiet = world.run()
    assert (echo.status, quiet.status) == ("success", "success")
    assert quiet.planned == 0
    assert [(s, a) for s, a in ledger_actions(engine, JAN) if a in ("withdraw", "object")] == negative
    engine.dispose()
    # Nothing changed since: each vendor is asked once per stream, and nothing is read again.
    sent = {name: len(box.requests) for name, box in world.boxes.items()}
    again = world.run()
    sent = {name: len(box.requests) - sent[name] for name, box in world.boxes.items()}
    assert sent == {name: len(streams_of(world.settings, name)) for name in world.boxes}
    assert sum(c.pulled for c in again.counts.values()) == 0


def streams_of(settings: Settings, name: str) -> tuple[StreamInfo, ...]:
    return connector_class(name).from_settings(settings).capabilities().streams


def test_twenty_percent_injected_faults_still_converge(world: World) -> None:
    """429s, 5xx and dropped connections on every vendor: retries and later runs still get the opt-out
    everywhere, and the ledger holds the person's act once."""
    world.run()
    for box in world.boxes.values():
        box.faults.set_all(0.2)
        box.faults.retry_after = 0.01
    world.boxes["klaviyo"].set_status(JAN, "newsletter", Status.UNSUBSCRIBED)
    for _ in range(6):
        world.run()
        states = {name: box.status(JAN, "newsletter") for name, box in world.boxes.items()}
        if all(state in OFF for state in states.values()):
            break
    assert all(state in OFF for state in states.values()), states
    assert sum(sum(box.faults.injected.values()) for box in world.boxes.values()) > 0
    for box in world.boxes.values():
        box.faults.set_all(0.0)
    world.run()  # echoes
    assert world.run().planned == 0
    engine = db.make_engine(world.settings.database_url)
    negative = [(s, a) for s, a in ledger_actions(engine, JAN) if a in ("withdraw", "object")]
    engine.dispose()
    assert {source for source, _ in negative} == {"klaviyo"}
