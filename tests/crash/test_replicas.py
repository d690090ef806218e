"""Two worker replicas (``sync-worker run``, the service) on the real PostgreSQL server, sharing one ledger
and the same vendor sandboxes (issue 7): the connector leases and the outbox claim (FOR UPDATE SKIP LOCKED)
keep any change from being pushed twice, and a replica killed mid-run loses nothing (R25)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from connectors.base import Status
from sync_worker import db
from sync_worker.lease import build_leases
from tests.crash.stage import PEOPLE, RUN_TIMEOUT, Shop, shop
from tests.service.watched import Watched

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
SOURCE = "klaviyo"  # where the people opt out
OTHERS = ("mailchimp", "shopify", "hubspot")  # each gets one opt-out per person, in one push request


def replica(stage: Shop, tmp_path: Path) -> Watched:
    """A service replica whose first scheduled run starts at once; the next is an hour away."""
    return Watched([sys.executable, "-m", "sync_worker", "run"], tmp_path, **stage.env)


def turn_taken(worker: Watched) -> str:
    """Wait until the replica's scheduled run finished or was skipped (every lease held elsewhere)."""
    record = worker.expect(("run.finished", "run.skipped"), timeout=RUN_TIMEOUT, trigger="schedule")
    return str(record["event"])


def opt_out_everyone(stage: Shop) -> None:
    stage.settle()
    for email in PEOPLE:
        stage.boxes[SOURCE].set_status(email, "newsletter", Status.UNSUBSCRIBED)


def _runs_of(worker: Watched) -> list[dict[str, object]]:
    return [r for r in worker.seen if str(r.get("event", "")).startswith(("run.", "lease"))]


def expected_pushes() -> dict[tuple[str, str], int]:
    return {(name, email): 1 for name in OTHERS for email in PEOPLE}


def test_two_replicas_at_once_push_each_opt_out_once(postgres_url: str, tmp_path: Path) -> None:
    with shop(postgres_url) as stage:
        opt_out_everyone(stage)
        before = Counter(stage.pushes())
        first, second = replica(stage, tmp_path), replica(stage, tmp_path)
        try:
            turns = sorted([turn_taken(first), turn_taken(second)])
            assert turns[0] == "run.finished"  # one replica at least held leases and ran
            assert (first.stop(), second.stop()) == (0, 0)
        finally:
            first.close()
            second.close()
        # With the connectors split between the replicas, a push may depend on a pull the other made
        # after it planned: a later run finishes it.
        stage.tick()
        summary = stage.run_once()
        # On failure, what the last run and each replica did: the outcome depends on how they interleaved.
        story = {"last run": summary, "replicas": [_runs_of(first), _runs_of(second)]}
        assert stage.not_off() == {}, story
        assert dict(Counter(stage.pushes()) - before) == expected_pushes(), story
        assert stage.duplicate_events() == []
        stage.run_once()  # reads back the echoes
        assert stage.run_once()["changes"] == 0


def test_a_replica_holding_some_leases_leaves_its_people_planned_for_the_rest(
    postgres_url: str, tmp_path: Path
) -> None:
    """The replica that gets only the Klaviyo lease pulls the opt-outs and plans for Klaviyo alone; the
    next complete run, incremental, still carries them to the three others (R25)."""
    with shop(postgres_url) as stage:
        opt_out_everyone(stage)
        engine = db.make_engine(postgres_url)
        leases = build_leases(engine)
        elsewhere = [leases.try_acquire(name) for name in OTHERS]  # another replica holds these
        try:
            assert all(elsewhere)
            alone = replica(stage, tmp_path)
            try:
                assert turn_taken(alone) == "run.finished"
                assert alone.stop() == 0
            finally:
                alone.close()
        finally:
            for lease in elsewhere:
                if lease is not None:
                    lease.release()
            engine.dispose()
        assert stage.withdrawals() >= len(PEOPLE)  # the replica read and recorded the opt-outs
        assert set(stage.not_off()) == set(PEOPLE)  # ... and pushed nowhere else: not its leases
        stage.tick()
        stage.run_once()
        assert stage.not_off() == {}


def test_replica_killed_mid_push_loses_nothing_and_the_next_replica_pushes_once(
    postgres_url: str, tmp_path: Path
) -> None:
    with shop(postgres_url) as stage:
        opt_out_everyone(stage)
        before = Counter(stage.pushes())
        for name in OTHERS:
            stage.fronts[name].closed = True  # no push of the doomed replica reaches a vendor
        doomed = replica(stage, tmp_path)
        try:
            assert stage.fronts["mailchimp"].reached.wait(RUN_TIMEOUT), "the replica never pushed"
            doomed.process.kill()  # kill -9 mid-push; PostgreSQL frees its leases with its sessions
            assert doomed.process.wait(timeout=RUN_TIMEOUT) == -9
        finally:
            doomed.close()
        for name in OTHERS:
            stage.fronts[name].closed = False
            stage.fronts[name].opened.set()
        assert stage.pushes() == dict(before)

        survivor = replica(stage, tmp_path)
        try:
            assert turn_taken(survivor) == "run.finished"
            assert survivor.stop() == 0
        finally:
            survivor.close()
        assert stage.not_off() == {}  # R25: the survivor pushed every opt-out the dead replica had claimed
        assert dict(Counter(stage.pushes()) - before) == expected_pushes()
        assert stage.duplicate_events() == []
