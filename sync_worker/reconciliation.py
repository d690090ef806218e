"""One reconciliation run, the imperative shell around the pure core:
drain outbox -> pull -> observe -> ledger -> decide -> plan -> outbox -> push -> log.

Connectors are pulled and pushed concurrently; each page is one transaction (its events, snapshot and
cursor commit together), and planning walks the affected people in chunks, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, islice

from sqlalchemy import Connection, Engine

from connectors.base import (
    Action,
    Change,
    Connector,
    ContactRecord,
    Outcome,
    Page,
    PurchaseRecord,
    PushResult,
    RecordError,
)
from sync_worker import due, outbox, runlog, snapshot
from sync_worker.ledger_port import ErasureRequest, LedgerPort, ObservedEvent
from sync_worker.logs import get_logger
from sync_worker.observe import ACCOUNT, Seen, carried_over, observe
from sync_worker.plan_pass import PlanJob, Tally, plan_batch
from sync_worker.plan_pool import POOL_AFTER, pooled, why_not_pooled
from sync_worker.progress import NoProgress, Progress
from sync_worker.push_vet import no_longer_allowed
from sync_worker.read_back import read_back
from sync_worker.retry_budget import stuck_optouts
from sync_worker.run_report import (
    ConnectorCounts,
    RunReport,
    purpose_label,
    push_result_text,
    run_status,
)
from sync_worker.trigger import WebhookFact
from sync_worker.webhook_facts import take_facts

Clock = Callable[[], datetime]
CHUNK = 1000
RESTRICTIVE = [a for a in Action if a != Action.SUBSCRIBE]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FixedClock:
    """A clock that always tells ``at``: for tests and benchmarks; unlike a lambda, a pool process can take it."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Reconciliation:
    """The parts one run works with; built by ``run_once`` (or a test) and used once."""

    engine: Engine
    connectors: Mapping[str, Connector]
    ledger: LedgerPort
    purposes: Sequence[str]
    secret: bytes
    clock: Clock = utc_now
    chunk: int = CHUNK
    progress: Progress = field(default_factory=NoProgress)
    # The caller holds every connector's lease: claims left in flight by a dead process are taken at once.
    leased: bool = False
    # ``connectors`` are all the enabled ones. A run of some of them (``--connector``, a replica holding
    # some leases) plans for those systems alone, so the people it plans stay dirty for a complete run
    # (an opt-out it pulled must still reach the others, R25), and an erasure it carried out in those
    # systems is completed by a complete run only (R21).
    complete: bool = True
    # Processes a long planning pass may use (``sync_worker.plan_pool``); 1 plans in this process alone.
    processes: int = 1

    async def run(
        self,
        *,
        trigger: str,
        dry_run: bool = False,
        full: bool = False,
        emails: Iterable[str] | None = None,
        facts: Sequence[WebhookFact] = (),
        run_id: str | None = None,
    ) -> RunReport:
        """A run of everyone (pull every stream), or of the people in ``emails`` and ``facts`` only.

        Webhook ``facts`` are the vendor's record of a change: observed and recorded like a pulled page,
        then only those people are planned against the last snapshot of every other system and pushed.
        """
        now = self.clock()
        report = RunReport(run_id or uuid.uuid4().hex[:12], trigger, dry_run, now)
        report.counts = {name: ConnectorCounts() for name in self.connectors}
        log = get_logger(run_id=report.run_id)
        with self.engine.begin() as conn:
            runlog.start_run(conn, report.run_id, trigger, dry_run, now)
        try:
            if not dry_run:
                with self.engine.begin() as conn:
                    outbox.supersede_subscribes(conn, report.run_id, now)
                # A crashed run's restrictive changes go out first: no opt-out waits on a pull (R25).
                await self._push(report, now, RESTRICTIVE)
            if facts:
                done = await read_back(self.engine, self.connectors, facts, report.run_id)
                for name, page in done.pages:
                    self._take(name, page, report.run_id, report.counts[name], now)
                for name, error in done.failed.items():
                    report.counts[name].error = error
                emails = sorted({*(emails or ()), *done.emails, *self._take_facts(done.rest, report, now)})
            if emails is None:
                reread = set() if full else self._mapping_changed(report.run_id)
                await asyncio.gather(
                    *(
                        self._pull(name, report, now, full or name in reread, remapped=name in reread)
                        for name in self.connectors
                    )
                )
            targets = sorted(set(emails)) if emails is not None else None
            erasing = self._plan(report, now, targets, full)
            if not dry_run:
                await self._push(report, now, None)
                if self.complete:  # a run of some connectors told only their systems
                    self._finish_erasures(now, erasing)
                self._report_stuck_optouts(report)
        except Exception as error:
            report.error = f"{type(error).__name__}: {error}"
            log.exception("run_failed", error=report.error)
        report.ended_at = self.clock()
        report.status = run_status(report)
        with self.engine.begin() as conn:
            counts = {name: vars(c) for name, c in report.counts.items()}
            runlog.finish_run(
                conn,
                report.run_id,
                status=report.status,
                counts=counts,
                now=report.ended_at,
                error=report.error,
            )
        log.info("run_summary", **report.summary())
        return report

    def _mapping_changed(self, run_id: str) -> set[str]:
        """The connectors whose pulls now depend on other settings than their cursors were read with (or
        whose cursors predate the fingerprint): records unchanged since a cursor would never be read as
        the settings now have them (a purpose newly mapped to a list its members joined long ago), so
        each of these is read in full. A connector without cursors is read in full anyway.

        Everyone a full pull reads is marked for planning, so the incremental plan of the same run covers
        everyone that system holds (a system is never planned for people it does not hold)."""
        changed: set[str] = set()
        with self.engine.begin() as conn:
            for name, connector in self.connectors.items():
                wanted = connector.capabilities().pull_fingerprint
                if wanted is None or wanted == snapshot.load_read_with(conn, name):
                    continue
                if snapshot.load_cursors(conn, name):
                    changed.add(name)
        for name in sorted(changed):
            get_logger(run_id=run_id, connector=name).info("full_pull", reason="mapping changed: full pull")
        return changed

    async def _pull(
        self, name: str, report: RunReport, now: datetime, full: bool, *, remapped: bool = False
    ) -> None:
        """``remapped``: the settings the records are read with changed since the last pull (see
        ``_mapping_changed``), so the last snapshot of this system is no earlier state to compare with."""
        connector, counts = self.connectors[name], report.counts[name]
        log = get_logger(run_id=report.run_id, connector=name)
        try:
            capabilities = connector.capabilities()
            with self.engine.begin() as conn:
                cursors = snapshot.load_cursors(conn, name)
            # Saved with the final page of the last stream: a pull that fails before it keeps the fingerprint
            # the cursors were read with, so the next run reads in full again.
            unsaved = capabilities.pull_fingerprint
            for info in capabilities.streams:
                since = None if full or not info.incremental else cursors.get(info.name)
                last = info is capabilities.streams[-1]
                pages = 0
                async for page in connector.pull(info.name, since=since):
                    read_with = unsaved if last and page.final else None
                    self._take(name, page, report.run_id, counts, now, read_with=read_with, remapped=remapped)
                    unsaved = None if read_with else unsaved
                    pages += 1
                    self.progress.pulled_page(name, info.name, pages, len(page.records))
            if unsaved is not None:  # no stream, or the last one ended without a page marked final
                with self.engine.begin() as conn:
                    _pulled_in_full(conn, name, unsaved, now, remapped=remapped)
        except Exception as error:  # one vendor failing leaves the others' runs intact
            counts.error = f"{type(error).__name__}: {error}"
            log.warning("pull_failed", error=counts.error)

    def _take(
        self,
        system: str,
        page: Page,
        run_id: str,
        counts: ConnectorCounts,
        now: datetime,
        *,
        read_with: str | None = None,
        remapped: bool = False,
    ) -> None:
        """One page, one transaction: ledger events, snapshot, echo marks, rejects and the cursor (with the
        pull fingerprint ``read_with`` once this page completes the pull of every stream).

        ``remapped``: the last snapshot was read with another purpose mapping, so a purpose's status there
        may belong to another list or interest. Compared with it, a purpose moved to an interest the person
        never joined would read as a withdrawal they never made. Such a page is observed as a first look
        (an unsubscribed flag is still a withdrawal, R20; a subscribed flag is still no grant without
        evidence, R8; a status that merely differs is none), apart from what the snapshot still tells
        (``carried_over``): the account-wide state, and statuses shown unchanged, are not recorded again."""
        contacts = {r.email: r for r in page.records if isinstance(r, ContactRecord)}
        purchases = [r for r in page.records if isinstance(r, PurchaseRecord)]
        counts.pulled += len(page.records)
        with self.engine.begin() as conn:
            emails = list(contacts)
            previous = snapshot.load_seen(conn, emails, system) if emails else {}
            pushed = outbox.awaiting_echo(conn, system, emails) if emails else {}
            events: list[ObservedEvent] = []
            seen: dict[str, Seen] = {}
            for email, record in contacts.items():
                before = previous.get(email, {}).get(system)
                if remapped:
                    before = carried_over(before, record)
                result = observe(before, record, pushed.get(email, {}), now)
                events.extend(result.events)
                seen[email] = result.seen
                counts.echoes += len(result.echoes)
                outbox.verify(conn, system, email, sorted(result.echoes), outcome="echo", now=now)
                outbox.verify(conn, system, email, sorted(result.mismatches), outcome="differs", now=now)
            recorded = self.ledger.record(conn, events, purchases)
            counts.events += recorded.inserted
            snapshot.save_seen(conn, system, seen, now)
            snapshot.mark_dirty(conn, sorted({p.email for p in purchases}))
            # Records the vendor's data or the ledger refused: the operator reviews them in `sync-worker log`.
            # One vendor record feeds several events (one per purpose): its refusal is listed once.
            rejected = list(dict.fromkeys([*page.errors, *recorded.rejected]))
            counts.rejected_records += len(rejected)
            runlog.log_rejected(conn, run_id, rejected)
            if page.checkpoint is not None:
                snapshot.save_cursor(conn, system, page.stream, page.checkpoint, now)
            if read_with is not None:
                _pulled_in_full(conn, system, read_with, now, remapped=remapped)
        _warn_rejected(run_id, rejected)

    def _take_facts(self, facts: Sequence[WebhookFact], report: RunReport, now: datetime) -> set[str]:
        purposes = {name: c.capabilities().purposes for name, c in self.connectors.items()}
        with self.engine.begin() as conn:
            taken = take_facts(conn, self.ledger, facts, purposes, now=now, run_id=report.run_id)
            runlog.log_rejected(conn, report.run_id, taken.rejected)
        for error in taken.rejected:
            report.counts[error.system].rejected_records += 1
        _warn_rejected(report.run_id, taken.rejected)
        for name, counts in report.counts.items():
            counts.pulled += sum(1 for fact in facts if fact.system == name)
            counts.events += taken.events[name]
            counts.echoes += taken.echoes[name]
        return taken.emails

    def _plan(
        self, report: RunReport, now: datetime, targets: list[str] | None, full: bool
    ) -> frozenset[str]:
        """Plan the people of this run (batches, maybe over processes); the people whose erasure it planned."""
        capabilities = {name: c.capabilities() for name, c in self.connectors.items()}
        with self.engine.begin() as conn:
            erasures = frozenset(r.email for r in self.ledger.erasures(conn))
        chunks: Iterable[list[str]]
        if targets is not None:
            chunks = [targets[i : i + self.chunk] for i in range(0, len(targets), self.chunk)]
        else:
            chunks = self._people(dirty_only=not full, now=now)
        job = PlanJob(
            self.ledger,
            tuple(self.purposes),
            capabilities,
            erasures,
            self.secret,
            report.run_id,
            now,
            report.dry_run,
            self.complete,
        )
        others = ([e for e in batch if e not in erasures] for batch in chunks)
        for tally in self._plan_batches(job, (batch for batch in others if batch)):
            tally.add_to(report)
        # Erasures apart and last (each person is planned once, a dry run logs each change once) and in
        # this process: there are few of them.
        todo = sorted(erasures)
        for batch in (todo[i : i + self.chunk] for i in range(0, len(todo), self.chunk)):
            plan_batch(self.engine, job, batch).add_to(report)
        return erasures

    def _plan_batches(self, job: PlanJob, batches: Iterator[list[str]]) -> Iterator[Tally]:
        """Each batch planned in this process; a long pass's rest over ``processes`` processes."""
        for batch in islice(batches, POOL_AFTER if self.processes > 1 else None):
            yield plan_batch(self.engine, job, batch)
        following = next(batches, None)
        if following is None:
            return
        why_not = why_not_pooled(self.engine, job)
        log = get_logger(run_id=job.run_id)
        if why_not is not None:
            log.info("planning_in_one_process", reason=why_not)
            yield from (plan_batch(self.engine, job, batch) for batch in chain([following], batches))
            return
        log.info("planning_over_processes", processes=self.processes)
        yield from pooled(self.engine, job, chain([following], batches), self.processes)

    def _people(self, *, dirty_only: bool, now: datetime) -> Iterable[list[str]]:
        """Everyone in the snapshot, or (incremental) the dirty people and those whose decision time alone
        may have changed since it was planned; keyset-paged in email order, so memory stays bounded."""
        after = ""
        while True:
            with self.engine.begin() as conn:
                batch = snapshot.next_people(conn, after, dirty_only=dirty_only, limit=self.chunk)
                if dirty_only:
                    timed = due.next_due(conn, after, now, limit=self.chunk)
                    batch = sorted({*batch, *timed})[: self.chunk]
            if not batch:
                return
            yield batch
            after = batch[-1]

    async def _push(self, report: RunReport, now: datetime, actions: Sequence[Action] | None) -> None:
        async def one(name: str) -> list[PushResult]:
            return await outbox.push_system(
                self.engine,
                self.connectors[name],
                now,
                actions=actions,
                on_batch=lambda size: self.progress.pushed_batch(name, size),
                leased=self.leased,
                vet=self._vet(report, name),
            )

        answers = await asyncio.gather(*(one(name) for name in self.connectors))
        texts: dict[str, str] = {}
        with self.engine.begin() as conn:
            slots = outbox.slots_of(conn, [r.key for results in answers for r in results])
        for name, results in zip(self.connectors, answers, strict=True):
            for result in results:
                texts[result.key] = push_result_text(result)
                slot, action = slots.get(result.key, (ACCOUNT, ""))
                if result.outcome == Outcome.GONE:
                    report.counts[name].gone += 1
                    _log_gone(report.run_id, name, result, action)
                    continue
                accepted = result.outcome == Outcome.ACCEPTED
                if accepted:
                    report.counts[name].pushed += 1
                else:
                    report.counts[name].failed += 1
                report.pushes[name, purpose_label(slot), accepted] += 1
        with self.engine.begin() as conn:
            runlog.log_push_results(conn, texts)

    def _vet(
        self, report: RunReport, system: str
    ) -> Callable[[Connection, Sequence[Change]], Mapping[str, str]]:
        """Claimed subscribes are decided again before they go (``sync_worker.push_vet``)."""
        requires = self.connectors[system].capabilities().requires
        log = get_logger(run_id=report.run_id, connector=system)

        def vet(conn: Connection, changes: Sequence[Change]) -> Mapping[str, str]:
            # The time of the push, not of the run's start: a withdrawal made since is in effect by now.
            stopped = no_longer_allowed(
                conn, self.ledger, changes, purposes=self.purposes, requires=requires, now=self.clock()
            )
            for key, why in stopped.items():
                log.info("subscribe_not_pushed", key=key, rule=why.rule, reason=why.text)
            report.counts[system].stopped += len(stopped)
            texts = {key: why.text for key, why in stopped.items()}
            runlog.log_push_results(conn, texts)
            return texts

        return vet

    def _report_stuck_optouts(self, report: RunReport) -> None:
        """R25: an opt-out that has not reached a system is an error of every run until it has."""
        with self.engine.begin() as conn:
            report.stuck_optouts = stuck_optouts(conn)
        for stuck in report.stuck_optouts:
            get_logger(run_id=report.run_id, connector=stuck.system).error(
                "optouts_not_propagated",
                failing=stuck.failing,
                refused=stuck.refused,
                oldest=stuck.oldest.isoformat(),
            )
        for system, count in sorted(report.subscribes_given_up.items()):
            get_logger(run_id=report.run_id, connector=system).warning("subscribes_given_up", count=count)

    def _finish_erasures(self, now: datetime, planned: frozenset[str]) -> None:
        """An erasure is complete once every system has accepted its part; then the snapshot forgets.

        Only an erasure this run planned: one requested after its planning has no changes in the outbox yet,
        and the person's earlier items, all settled, would make it look complete."""
        with self.engine.begin() as conn:
            requests: Sequence[ErasureRequest] = self.ledger.erasures(conn)
            for request in requests:
                if request.email in planned and outbox.all_done(conn, request.email):
                    snapshot.forget(conn, request.email)
                    due.forget(conn, [request.email])
                    outbox.forget(conn, request.email)
                    self.ledger.complete_erasure(conn, request, now)


def _pulled_in_full(
    conn: Connection, system: str, fingerprint: str, now: datetime, *, remapped: bool
) -> None:
    """Every stream of ``system`` was read to its end: the settings it was read with are saved, and after a
    changed mapping (``remapped``: a full pull) the rows it did not write go, as the system holds them no
    more."""
    snapshot.save_read_with(conn, system, fingerprint, now)
    if remapped:
        snapshot.drop_unread(conn, system, now)


def _log_gone(run_id: str, system: str, result: PushResult, action: str) -> None:
    """A change for a person the vendor no longer holds is settled: an opt-out has nobody left to reach there
    (R25), and a subscribe creates nobody there (planning never does, R27)."""
    get_logger(run_id=run_id, connector=system).info(
        "push_gone",
        key=result.key,
        action=action,
        rule="R27" if action == Action.SUBSCRIBE.value else "R25",
        reason=result.reason,
    )


def _warn_rejected(run_id: str, errors: Iterable[RecordError]) -> None:
    for error in errors:
        get_logger(run_id=run_id, connector=error.system).warning(
            "record_rejected", record_id=error.record_id, field=error.field, error=error.message
        )
