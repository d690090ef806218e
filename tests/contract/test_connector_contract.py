"""One contract, every connector against its own sandbox (parametrized over tests/contract/vendors.py)."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from connectors.base import Action, Basis, Change, Connector, ContactRecord, Outcome, Status
from tests.contract.conftest import T0, ConnectorFactory
from tests.contract.vendors import VendorFixture

SUBSCRIBED_LIKE = {Status.SUBSCRIBED, Status.PENDING}
UNSUBSCRIBED_LIKE = {Status.UNSUBSCRIBED, Status.NOT_SUBSCRIBED}
_SERIAL = itertools.count()


def _seed(
    sandbox: Any, vendor: VendorFixture, count: int, status: Status = Status.SUBSCRIBED, tick: float = 0
) -> list[str]:
    emails = []
    for _ in range(count):
        email = f"contract-{next(_SERIAL):04d}@example.nl"
        sandbox.add_contact(email, dict.fromkeys(vendor.purposes, status))
        emails.append(email)
        if tick:
            sandbox.clock.advance(tick)
    return emails


async def _pull(
    connector: Connector, since: str | None = None, stop_after: int | None = None
) -> tuple[list[ContactRecord], str | None, int]:
    """Contacts, the last checkpoint seen and the number of pages; stops early after ``stop_after`` pages."""
    records: list[ContactRecord] = []
    checkpoint, pages = since, 0
    stream = connector.pull("contacts", since=since)
    try:
        async for page in stream:
            pages += 1
            records.extend(r for r in page.records if isinstance(r, ContactRecord))
            if page.checkpoint is not None:
                checkpoint = page.checkpoint
            if stop_after is not None and pages >= stop_after and page.checkpoint is not None:
                break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return records, checkpoint, pages


async def _push_until_settled(connector: Connector, changes: list[Change], rounds: int = 10) -> None:
    """Push, then push again what came back RETRY_LATER, as later runs would; nothing may be REJECTED."""
    todo = changes
    for _ in range(rounds):
        results = await connector.push(todo)
        assert len(results) == len(todo)
        rejected = [r for r in results if r.outcome is Outcome.REJECTED]
        assert rejected == []
        retry = {r.key for r in results if r.outcome is Outcome.RETRY_LATER}
        todo = [c for c in todo if c.key in retry]
        if not todo:
            return
    raise AssertionError(f"{len(todo)} changes still not accepted after {rounds} rounds")


async def test_capabilities_hold(vendor: VendorFixture, connect: ConnectorFactory) -> None:
    connector = connect()
    assert isinstance(connector, Connector)
    caps = connector.capabilities()
    assert caps.system == vendor.name == connector.name
    assert caps.stream("contacts").page_size_max > 0
    assert set(vendor.purposes) <= caps.purposes
    assert {Action.SUBSCRIBE, Action.UNSUBSCRIBE} <= caps.actions
    assert all(size > 0 for size in caps.batch_max.values())
    assert caps.max_concurrency >= 1


async def test_full_pull_over_tiny_pages_yields_each_record_once(
    vendor: VendorFixture, sandbox: Any, connect: ConnectorFactory
) -> None:
    emails = _seed(sandbox, vendor, 17, tick=1)
    records, checkpoint, pages = await _pull(connect())
    assert Counter(r.email for r in records) == Counter(emails)
    assert pages >= 3
    assert checkpoint is not None
    for record in records:
        assert record.system == vendor.name
        assert all(record.status_of(p) in SUBSCRIBED_LIKE for p in vendor.purposes)


async def test_incremental_pull_loses_nothing_at_an_equal_timestamp_boundary(
    vendor: VendorFixture, sandbox: Any, connect: ConnectorFactory
) -> None:
    first = _seed(sandbox, vendor, 6)  # all stamped T0
    _, checkpoint, _ = await _pull(connect())
    same_stamp = _seed(sandbox, vendor, 3)  # also stamped T0, written after our read
    sandbox.clock.advance(1)
    sandbox.set_status(first[0], vendor.purposes[0], Status.UNSUBSCRIBED)
    records, _, _ = await _pull(connect(), since=checkpoint)
    got = Counter(r.email for r in records)
    assert set(same_stamp) | {first[0]} <= set(got)
    assert not set(first[1:]) & set(got), "records unchanged since the checkpoint were read again"
    assert max(got.values()) == 1
    changed = next(r for r in records if r.email == first[0])
    assert changed.status_of(vendor.purposes[0]) in UNSUBSCRIBED_LIKE


async def test_quiet_pull_once_the_vendors_clock_moved_on_reads_nothing_again(
    vendor: VendorFixture, sandbox: Any, connect: ConnectorFactory
) -> None:
    """A bulk write stamps many records in one second; once the vendor's clock (its Date header) has left
    that second, the watermark is sealed and a quiet pull asks only for what is newer."""
    emails = _seed(sandbox, vendor, 12)  # all stamped T0, more than a tiny page
    _, checkpoint, _ = await _pull(connect())  # the vendor's clock still reads T0: the boundary stays open
    sandbox.clock.advance(5)
    records, checkpoint, _ = await _pull(connect(), since=checkpoint)
    assert records == []  # the boundary re-read dropped what was seen there
    before = len(sandbox.requests)
    records, checkpoint, _ = await _pull(connect(), since=checkpoint)
    assert records == []
    assert len(sandbox.requests) - before == vendor.quiet_requests
    sandbox.clock.advance(1)  # a change after the sealed second is still read, once
    sandbox.set_status(emails[3], vendor.purposes[0], Status.UNSUBSCRIBED)
    records, checkpoint, _ = await _pull(connect(), since=checkpoint)
    assert [r.email for r in records] == [emails[3]]
    assert records[0].status_of(vendor.purposes[0]) in UNSUBSCRIBED_LIKE
    records, _, _ = await _pull(connect(), since=checkpoint)  # still T0 + 6 s: re-read there, not taken twice
    assert records == []


async def test_full_pull_after_the_vendors_clock_moved_on_leaves_a_quiet_pull_one_request(
    vendor: VendorFixture, sandbox: Any, connect: ConnectorFactory
) -> None:
    _seed(sandbox, vendor, 12)
    sandbox.clock.advance(5)
    _, checkpoint, _ = await _pull(connect())  # the first pull of all, a full one, seals too
    before = len(sandbox.requests)
    records, _, _ = await _pull(connect(), since=checkpoint)
    assert (records, len(sandbox.requests) - before) == ([], vendor.quiet_requests)


async def test_interrupted_pull_resumes_to_the_same_result(
    vendor: VendorFixture, sandbox: Any, connect: ConnectorFactory
) -> None:
    emails = _seed(sandbox, vendor, 17, tick=1)
    head, checkpoint, _ = await _pull(connect(), stop_after=1)
    tail, _, _ = await _pull(connect(), since=checkpoint)
    assert {r.email for r in head} | {r.email for r in tail} == set(emails)


async def test_repeated_pull_and_push_create_no_duplicates(
    vendor: VendorFixture, sandbox: Any, connect: ConnectorFactory
) -> None:
    never = _seed(sandbox, vendor, 3, status=Status.NOT_SUBSCRIBED)
    members = _seed(sandbox, vendor, 3, status=Status.SUBSCRIBED)
    records, _, _ = await _pull(connect())
    ids = {r.email: r.external_id for r in records}
    purpose = vendor.purposes[0]
    changes = [
        Change(f"s-{e}", vendor.name, e, Action.SUBSCRIBE, purpose, ids[e], Basis.CONSENT, T0) for e in never
    ] + [Change(f"u-{e}", vendor.name, e, Action.UNSUBSCRIBE, purpose, ids[e]) for e in members]
    for _ in range(2):
        await _push_until_settled(connect(), changes)
    records, _, _ = await _pull(connect())
    assert Counter(r.email for r in records) == Counter(never + members)
    assert all(sandbox.status(e, purpose) in SUBSCRIBED_LIKE for e in never)
    assert all(sandbox.status(e, purpose) in UNSUBSCRIBED_LIKE for e in members)


async def test_injected_faults_at_20_percent_still_converge(
    vendor: VendorFixture, sandbox: Any, connect: ConnectorFactory
) -> None:
    emails = _seed(sandbox, vendor, 17, tick=1)
    sandbox.faults.set_all(0.2)
    records, _, _ = await _pull(connect())
    assert Counter(r.email for r in records) == Counter(emails)
    ids = {r.email: r.external_id for r in records}
    purpose = vendor.purposes[0]
    changes = [Change(f"u-{e}", vendor.name, e, Action.UNSUBSCRIBE, purpose, ids[e]) for e in emails]
    await _push_until_settled(connect(), changes)
    assert sum(sandbox.faults.injected.values()) > 0, "no fault was injected: the test proved nothing"
    sandbox.faults.set_all(0.0)
    assert all(sandbox.status(e, purpose) in UNSUBSCRIBED_LIKE for e in emails)


def test_every_registered_vendor_is_in_the_contract_suite() -> None:
    """A connector that joins the registry without a contract entry would go untested against its sandbox."""
    from connectors.registry import VENDORS as REGISTERED
    from tests.contract.vendors import VENDORS

    assert set(VENDORS) == set(REGISTERED)
