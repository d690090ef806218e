"""The HubSpot connector: contacts with their subscription statuses in, status writes and erasures out.

Pull. A full pull lists ``GET /crm/v3/objects/contacts`` (ordered by id, not by change time, so the cursor
is saved only on the final page). An incremental pull searches ``lastmodifieddate GTE <watermark>`` oldest
first. HubSpot's search pages by offset over a live result set and stops at 10,000 results per query, so
the connector restarts the query from the last stamp it has seen after every page (the watermark's closed
boundary drops what was already taken) and pages by offset only inside one group of equal stamps: a
contact modified mid-run moves to the end instead of shifting an unseen one out of reach, and no query
ever nears the cap unless 10,000 contacts share one millisecond.

Push. Per-purpose subscribe/unsubscribe go to the v4 ``statuses/batch/write`` with a legalBasis that
follows the decision's basis; account-wide unsubscribes to ``statuses/batch/unsubscribe-all``; erasure to
``gdpr-delete``. When HubSpot keeps a contact who opted out of all email unsubscribed, its answer says so
(``UNSUBSCRIBE_FROM_ALL_OCCURRED``) and we report it as the vendor's state (R17), not as an error. Portals
without the batch status scopes (Marketing Hub Enterprise) answer the batch calls 403: from then on this
connector reads and writes statuses one contact at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import httpx

from config.hubspot import HubSpotSettings
from config.settings import Settings
from connectors.assembly import ClockSource, Now, now_of, utc_now, vendor_section
from connectors.base import (
    Action,
    Capabilities,
    Change,
    ContactRecord,
    Outcome,
    Page,
    PushResult,
    RecordError,
    StreamInfo,
)
from connectors.errors import (
    AuthError,
    ConnectorError,
    NotFoundError,
    PaginationError,
    TransientError,
)
from connectors.fields import log_skipped
from connectors.http import RetryPolicy
from connectors.hubspot.client import JSON, SYSTEM, HubSpotClient
from connectors.hubspot.mapping import (
    contact_email,
    contact_record,
    error_subjects,
    next_after,
    opted_out,
    rounds,
    status_input,
    status_key,
    subscription_record,
)
from connectors.hubspot.statuses import StatusReader
from connectors.pagination import Watermark
from sync_worker.logs import get_logger

STREAM = "contacts"
NOT_FOUND = "OBJECT_NOT_FOUND"  # the category of an item error for something HubSpot does not hold
INVALID = "VALIDATION_ERROR"  # the category of a refusal of the input (a GDPR-blocked address among them)
ACTIONS = frozenset({Action.SUBSCRIBE, Action.UNSUBSCRIBE, Action.ERASE})

T = TypeVar("T")


class HubSpotConnector:
    name = SYSTEM

    def __init__(
        self,
        settings: HubSpotSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        clock: ClockSource = None,
    ) -> None:
        token = settings.access_token.get_secret_value() if settings.access_token else ""
        self.settings = settings
        self.subscriptions = dict(settings.subscriptions)
        self.client = HubSpotClient(
            settings.effective_base_url() or "",
            token,
            transport=transport,
            retry=retry,
            concurrency=settings.max_concurrency,
            requests_per_10s=settings.requests_per_10s,
            searches_per_second=settings.searches_per_second,
        )
        self._now: Now = now_of(clock) or utc_now
        self.log = get_logger(connector=SYSTEM)
        self.reader = StatusReader(self.client, settings.batch_size, settings.batch_statuses, self.log)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | HubSpotSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        clock: ClockSource = None,
    ) -> HubSpotConnector:
        """Build from the root Settings (or directly from HubSpotSettings)."""
        return cls(vendor_section(settings, HubSpotSettings), transport=transport, retry=retry, clock=clock)

    @classmethod
    def purpose_targets(cls, settings: Settings | HubSpotSettings) -> dict[str, str]:
        """Per purpose, its subscription type, in words (the Art. 30 export, R36)."""
        hubspot = vendor_section(settings, HubSpotSettings)
        return {
            purpose: f"subscription type {type_id} (communication preferences)"
            for purpose, type_id in hubspot.subscriptions.items()
        }

    def capabilities(self) -> Capabilities:
        batch = self.settings.batch_size
        return Capabilities(
            system=SYSTEM,
            # Full pulls come in id order (cursor saved at the end); incremental ones in change order.
            streams=(
                StreamInfo(
                    STREAM, incremental=True, sorted=False, page_size_max=self.settings.search_page_size
                ),
            ),
            actions=ACTIONS,
            purposes=frozenset(self.subscriptions),
            batch_max={Action.SUBSCRIBE: batch, Action.UNSUBSCRIBE: batch, Action.ERASE: 1},
            max_concurrency=self.settings.max_concurrency,
            rate_limit=(
                f"{self.settings.requests_per_10s} requests per 10 s; "
                f"search {self.settings.searches_per_second} per second"
            ),
            pull_fingerprint=self.settings.pull_fingerprint(),
        )

    # ---------------------------------------------------------------- pull

    async def pull(self, stream: str, since: str | None = None) -> AsyncIterator[Page]:
        if stream != STREAM:
            raise KeyError(f"{SYSTEM} has no stream {stream!r}")
        ceiling = self._now()  # a cursor never passes the run's start
        mark = Watermark.decode(since)
        pages = self._pull_all(ceiling) if mark.at is None else self._pull_changed(mark, ceiling)
        async for page in pages:
            yield page

    async def _pull_all(self, ceiling: datetime) -> AsyncIterator[Page]:
        mark, after, seen = Watermark(), None, set[str]()
        vendor_now: datetime | None = None  # the vendor's clock at the first answer: it seals the watermark
        while True:
            body = await self.client.list_contacts(after, self.settings.list_page_size)
            if vendor_now is None:
                vendor_now = self.client.http.vendor_date
            records, errors = await self._map(body.get("results") or [])
            mark = mark.advance(((r.external_id, r.updated_at) for r in records), ceiling)
            after = next_after(body)
            final = not after
            checkpoint = mark.sealed_by(vendor_now).encode() if final else None
            yield Page(STREAM, tuple(records), tuple(errors), checkpoint, final)
            if after is None:
                return
            if after in seen:
                raise PaginationError(SYSTEM, f"the vendor repeated page token {after[:80]!r}")
            seen.add(after)

    async def _pull_changed(self, mark: Watermark, ceiling: datetime) -> AsyncIterator[Page]:
        offset = 0
        vendor_now: datetime | None = None  # the vendor's clock at the first answer: it seals the watermark
        while True:
            window = mark
            body = await self.client.search_contacts(
                window.at, str(offset) if offset else None, self.settings.search_page_size,
                inclusive=window.inclusive,
            )  # fmt: skip
            if vendor_now is None:
                vendor_now = self.client.search_http.vendor_date
            results = body.get("results") or []
            records, errors = await self._map(results)
            fresh = [r for r in records if window.admits(r.external_id, r.updated_at)]
            mark = window.advance(((r.external_id, r.updated_at) for r in fresh), ceiling)
            past_run_start = any(r.updated_at is not None and r.updated_at > ceiling for r in records)
            final = not next_after(body) or past_run_start or not results
            if not final and mark.at == window.at:
                # Still inside one group of equal stamps (or above the run start): page on by offset.
                offset += len(results)
                if offset >= 10_000:
                    raise PaginationError(
                        SYSTEM, f"more than 10,000 contacts share lastmodifieddate {mark.at}"
                    )
            else:
                offset = 0  # restart the query from the new watermark
            checkpoint = mark.sealed_by(vendor_now) if final else mark
            yield Page(STREAM, tuple(fresh), tuple(errors), checkpoint.encode(), final)
            if final:
                return

    async def _map(
        self, results: Sequence[Mapping[str, Any]]
    ) -> tuple[list[ContactRecord], list[RecordError]]:
        """Map one page; read its contacts' subscription statuses in batches. A bad contact never stops the page."""
        errors: list[RecordError] = []
        valid: list[tuple[Mapping[str, Any], str]] = []
        for obj in results:
            email = contact_email(obj)
            if isinstance(email, RecordError):
                errors.append(email)
            else:
                valid.append((obj, email))
        statuses: dict[str, list[Mapping[str, Any]]] = {}
        failed: dict[str, str] = {}
        if self.subscriptions and valid:
            statuses, failed = await self.reader.statuses(sorted({status_key(e) for _, e in valid}))
        opt_outs = await self.reader.opt_outs(sorted({status_key(e) for obj, e in valid if opted_out(obj)}))
        records: list[ContactRecord] = []
        for obj, email in valid:
            key = status_key(email)
            if self.subscriptions and key not in statuses:
                reason = failed.get(key, "HubSpot returned no subscription statuses for this contact")
                errors.append(RecordError(SYSTEM, str(obj.get("id")), "subscriptionStatuses", reason))
                continue
            mapped = contact_record(obj, statuses.get(key, []), self.subscriptions, opt_outs.get(key))
            (errors if isinstance(mapped, RecordError) else records).append(mapped)  # type: ignore[arg-type]
        for error in errors:
            log_skipped(self.log, error)
        return records, errors

    async def read_people(self, people: Mapping[str, str]) -> Page:
        """A few known contacts (address -> contact id) read from their statuses alone: the targeted read
        after a webhook that names a subscription change but not the new status.

        Per-contact endpoints: they need no Enterprise scope, and one or two people fit no batch anyway.
        """
        emails = sorted({status_key(email) for email in people})
        statuses, failed = await self.reader.statuses(emails, per_contact=True)
        opt_outs = await self.reader.opt_outs(emails, per_contact=True)
        records: list[ContactRecord] = []
        errors: list[RecordError] = []
        for email, contact_id in sorted(people.items()):
            key = status_key(email)
            if key not in statuses:
                reason = failed.get(key, "HubSpot returned no subscription statuses for this contact")
                errors.append(RecordError(SYSTEM, contact_id, "subscriptionStatuses", reason))
                continue
            mapped = subscription_record(
                email, contact_id, statuses[key], self.subscriptions, opt_outs.get(key)
            )
            (errors if isinstance(mapped, RecordError) else records).append(mapped)  # type: ignore[arg-type]
        for error in errors:
            log_skipped(self.log, error)
        return Page(STREAM, tuple(records), tuple(errors))

    # ---------------------------------------------------------------- push

    async def push(self, changes: Sequence[Change]) -> list[PushResult]:
        results: list[PushResult] = []
        writes: list[tuple[Change, JSON]] = []
        opt_outs: list[Change] = []
        erasures: list[Change] = []
        for change in changes:
            if change.action is Action.ERASE:
                erasures.append(change)
            elif change.action is Action.UNSUBSCRIBE and change.purpose is None:
                opt_outs.append(change)
            elif change.action in (Action.SUBSCRIBE, Action.UNSUBSCRIBE) and change.purpose is not None:
                subscription_id = self.subscriptions.get(change.purpose)
                item = (
                    status_input(change, subscription_id, self.settings.legal_basis_explanation)
                    if subscription_id is not None
                    else f"purpose {change.purpose!r} has no HubSpot subscription type (SYNC_HUBSPOT__SUBSCRIPTIONS)"
                )
                if isinstance(item, str):
                    results.append(PushResult(change.key, Outcome.REJECTED, item))
                else:
                    writes.append((change, item))
            else:
                results.append(
                    PushResult(change.key, Outcome.REJECTED, f"HubSpot connector cannot {change.action} here")
                )
        size = self.settings.batch_size
        for batches in rounds(writes, size):  # rounds run one after another, so a later change wins
            for done in await asyncio.gather(*(self._write(batch) for batch in batches)):
                results.extend(done)
        jobs = [self._unsubscribe_all(opt_outs[i : i + size]) for i in range(0, len(opt_outs), size)]
        jobs += [self._erase(change) for change in erasures]
        for done in await asyncio.gather(*jobs):
            results.extend(done)
        return results

    async def _write(self, batch: list[tuple[Change, JSON]]) -> list[PushResult]:
        changes = [change for change, _ in batch]
        body = await _guarded(
            self.reader.batch(lambda: self.client.write_statuses([i for _, i in batch])), changes
        )
        if isinstance(body, list):
            return body
        if body is None:
            return list(await asyncio.gather(*(self._write_one(change, item) for change, item in batch)))
        answered = {
            (status_key(str(r.get("subscriberIdString"))), str(r.get("subscriptionId"))): r
            for r in body.get("results") or []
        }
        failures = error_subjects(body.get("errors") or [])
        out = []
        for change, item in batch:
            key = (status_key(change.email), str(item["subscriptionId"]))
            about_address = failures.get((key[0], None))
            if key not in failures and about_address is not None and about_address.startswith(NOT_FOUND):
                # The item error names the address alone (a missing subscription type names its id too):
                # HubSpot holds no subscriber of that address any more.
                out.append(PushResult(change.key, Outcome.GONE, about_address))
                continue
            out.append(self._judge(change, item, answered.get(key), failures.get(key) or about_address))
        judged = zip(changes, out, strict=True)
        return list(
            await asyncio.gather(*(self._met_if_blocked(change, result) for change, result in judged))
        )

    async def _write_one(self, change: Change, item: JSON) -> PushResult:
        try:
            body = await self.client.write_status(change.email, item)
        except NotFoundError as error:
            # The 404 is for a missing subscription type or a missing subscriber: a read of the address tells.
            gone = _object_not_found(error) and await self._no_subscriber(change.email)
            return PushResult(change.key, Outcome.GONE if gone else Outcome.REJECTED, str(error))
        except ConnectorError as error:
            return await self._met_if_blocked(change, _failed(error, [change])[0])
        results = body.get("results") or []
        return self._judge(change, item, results[0] if results else None, None)

    async def _met_if_blocked(self, change: Change, result: PushResult) -> PushResult:
        """An unsubscribe HubSpot refuses as invalid input for an address it holds no subscriber of is gone.

        That is a GDPR-deleted address: HubSpot blocks it so it cannot be used again (VENDOR-APIS 4.8) and
        will never hold or mail it, so the opt-out is met (R25: nobody there to mail) instead of staying
        stuck. HubSpot's wording for a blocked address is not documented: the refusal's category and a read
        of the address (404: no subscriber) tell it, never the message. A subscribe for it stays refused
        with HubSpot's words: it was not delivered.
        """
        refused_as_invalid = (result.reason or "").removeprefix(f"{SYSTEM}: ").startswith(INVALID)
        if change.action is not Action.UNSUBSCRIBE or result.outcome is not Outcome.REJECTED:
            return result
        if not refused_as_invalid or not await self._no_subscriber(change.email):
            return result
        self.log.info("hubspot.push.address_blocked", rule="R25", purpose=change.purpose, change=change.key)
        return PushResult(change.key, Outcome.GONE, f"the address is blocked in HubSpot ({result.reason})")

    async def _no_subscriber(self, email: str) -> bool:
        """HubSpot holds no subscriber of this address: its status read answers 404."""
        try:
            await self.client.read_status(email)
        except NotFoundError as error:
            return _object_not_found(error)
        except ConnectorError:
            return False  # not known: the change fails as its own error says, never as gone
        return False

    def _judge(
        self, change: Change, item: JSON, result: Mapping[str, Any] | None, failure: str | None
    ) -> PushResult:
        """One change's outcome from HubSpot's answer for its item."""
        if failure is not None:
            return PushResult(change.key, Outcome.REJECTED, failure)
        if result is None:
            return PushResult(change.key, Outcome.RETRY_LATER, "HubSpot answered without this item")
        if result.get("status") != item["statusState"]:
            return self._held_back(change, result)
        return PushResult(change.key, Outcome.ACCEPTED)

    def _held_back(self, change: Change, result: Mapping[str, Any]) -> PushResult:
        """HubSpot kept another state than we asked for: report what it holds (a fact, never retried)."""
        why = result.get("setStatusSuccessReason")
        if why == "UNSUBSCRIBE_FROM_ALL_OCCURRED":
            self.log.info(
                "hubspot.push.opted_out_of_all", rule="R17", purpose=change.purpose, change=change.key
            )
            return PushResult(
                change.key,
                Outcome.REJECTED,
                "R17: the contact opted out of all email in HubSpot; it stays unsubscribed",
                vendor_state="unsubscribed_all",
            )
        return PushResult(
            change.key,
            Outcome.REJECTED,
            f"HubSpot kept status {result.get('status')} ({why})",
            vendor_state=str(result.get("status")),
        )

    async def _unsubscribe_all(self, changes: list[Change]) -> list[PushResult]:
        body = await _guarded(
            self.reader.batch(lambda: self.client.unsubscribe_all([c.email for c in changes])), changes
        )
        if isinstance(body, list):
            return body
        if body is None:
            return [
                r for done in await asyncio.gather(*(self._unsubscribe_one(c) for c in changes)) for r in done
            ]
        done = {status_key(str(r.get("subscriberIdString"))) for r in body.get("results") or []}
        failures = error_subjects(body.get("errors") or [])
        out = []
        for change in changes:
            key = status_key(change.email)
            if (key, None) in failures:
                out.append(PushResult(change.key, Outcome.REJECTED, failures[(key, None)]))
            elif key in done:
                out.append(PushResult(change.key, Outcome.ACCEPTED))
            else:
                out.append(
                    PushResult(change.key, Outcome.RETRY_LATER, "HubSpot answered without this address")
                )
        return out

    async def _unsubscribe_one(self, change: Change) -> list[PushResult]:
        done = await _guarded(self.client.unsubscribe_all_one(change.email), [change])
        return done if isinstance(done, list) else [PushResult(change.key, Outcome.ACCEPTED)]

    async def _erase(self, change: Change) -> list[PushResult]:
        done = await _guarded(self.client.gdpr_delete(change.email), [change])
        return done if isinstance(done, list) else [PushResult(change.key, Outcome.ACCEPTED)]

    async def aclose(self) -> None:
        await self.client.aclose()


async def _guarded(call: Awaitable[T], changes: Iterable[Change]) -> T | list[PushResult]:
    """Await one request; a failure of the whole request becomes one result per change (auth errors raise)."""
    try:
        return await call
    except ConnectorError as error:
        return _failed(error, changes)


def _object_not_found(error: NotFoundError) -> bool:
    """HubSpot's own answer that it holds no such object. A 404 without its category (a wrong base URL, a
    path HubSpot no longer serves) says nothing of the person, and must never settle an opt-out as gone."""
    return str(error).startswith(f"{SYSTEM}: {NOT_FOUND}")


def _failed(error: ConnectorError, changes: Iterable[Change]) -> list[PushResult]:
    if isinstance(error, AuthError):
        raise error
    outcome = Outcome.RETRY_LATER if isinstance(error, TransientError) else Outcome.REJECTED
    return [PushResult(c.key, outcome, str(error)) for c in changes]
