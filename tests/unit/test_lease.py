"""Per-connector leases: one holder at a time; a killed holder frees the lease (PostgreSQL)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sync_worker.db import make_engine
from sync_worker.lease import AdvisoryLeases, LocalLeases, build_leases, lock_key

HOLDER = str(Path(__file__).with_name("lease_process.py"))


def test_local_lease_has_one_holder_until_released() -> None:
    leases = LocalLeases()
    first = leases.try_acquire("mailchimp")
    assert first is not None
    assert leases.try_acquire("mailchimp") is None
    assert leases.try_acquire("klaviyo") is not None  # leases are per connector
    first.release()
    first.release()  # idempotent
    with leases.try_acquire("mailchimp") as again:
        assert again is not None
        assert again.held
    assert not again.held
    assert leases.acquire("mailchimp", timeout=0) is not None


def test_sqlite_gets_process_local_leases(tmp_path: Path) -> None:
    assert isinstance(build_leases(make_engine(f"sqlite:///{tmp_path}/l.db")), LocalLeases)


def test_lock_keys_are_stable_and_distinct() -> None:
    assert lock_key("mailchimp") == lock_key("mailchimp")
    assert lock_key("mailchimp") != lock_key("klaviyo")
    assert -(2**63) <= lock_key("hubspot") < 2**63


@pytest.mark.postgres
def test_advisory_lease_has_one_holder_across_connections(postgres_url: str) -> None:
    one, two = make_engine(postgres_url), make_engine(postgres_url)
    try:
        first, second = AdvisoryLeases(one), AdvisoryLeases(two)
        lease = first.try_acquire("shopify")
        assert lease is not None
        assert second.try_acquire("shopify") is None
        assert second.acquire("shopify", timeout=0.05) is None  # lock_timeout, not an error
        lease.release()
        taken = second.try_acquire("shopify")
        assert taken is not None
        taken.release()
    finally:
        one.dispose()
        two.dispose()


def _start(url: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, HOLDER, url, "hubspot", mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.postgres
def test_only_one_process_holds_the_lease_and_kill_9_frees_it(postgres_url: str) -> None:
    holder = _start(postgres_url, "try")
    other: subprocess.Popen[str] | None = None
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        other = _start(postgres_url, "wait")
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "busy"  # a second process cannot take it
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        out, _ = other.communicate(timeout=30)  # it was waiting on the server; now it holds the lease
        assert out.strip() == "held"
    finally:
        for process in (holder, other):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
