"""The Mailchimp connector: members of one audience in, consent changes out.

Pull reads ``GET /lists/{id}/members`` sorted by ``last_changed`` ascending and pages by keyset: each
request starts just before the newest stamp already read and drops the members already seen at that
stamp (a closed-boundary Watermark). A member that changes during the run moves to the end of the order
instead of shifting an offset, so nothing is skipped; offsets are used only to step through more than a
page of members that share one second.

Push writes member status and interests with the batch endpoint (500 per call, ``update_existing``),
tags as static-segment membership (one call per tag for up to 500 addresses added and 500 removed; the
segment of a tag is looked up once per connector and created when missing), GDPR marketing permissions
with a member PATCH, and erasure with ``delete-permanent``; never more than 10 connections at once.
The segment call has no ``is_syncing`` flag, which the member tags call has to keep an audience's
tag-triggered automations from starting; whether Mailchimp starts them for segment additions is not
documented in VENDOR-APIS.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import httpx

from config.mailchimp import MailchimpSettings
from config.settings import Settings
from connectors.assembly import ClockSource, Now, configured_base_url, now_of, utc_now, vendor_section
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
from connectors.errors import ConnectorError, NotFoundError, PaginationError
from connectors.fields import log_skipped
from connectors.http import RetryPolicy, VendorHTTP, make_client
from connectors.mailchimp.client import (
    BATCH_MAX,
    MAX_CONNECTIONS,
    PAGE_MAX,
    MailchimpClient,
    describe,
)
from connectors.mailchimp.mapping import SYSTEM, Construct, contact_from_member, parse_purposes
from connectors.mailchimp.push_plan import Call, PushPlan, TagBatch, failed_result, says_gone
from connectors.pagination import Watermark
from sync_worker.logs import get_logger

STREAM = "contacts"
PUSH_MAX = 4 * BATCH_MAX  # changes per push call


class MailchimpConnector:
    name = SYSTEM

    def __init__(
        self,
        client: MailchimpClient,
        purposes: dict[str, Construct],
        *,
        collection_point: str | None = None,
        page_size: int = PAGE_MAX,
        now: Now | None = None,
        pull_fingerprint: str | None = None,
    ) -> None:
        if not 1 <= page_size <= PAGE_MAX:
            raise ValueError(f"page_size must be 1..{PAGE_MAX}, got {page_size}")
        self.client = client
        self.purposes = purposes
        self.collection_point = collection_point
        self.page_size = page_size
        self.now = now
        self.pull_fingerprint = pull_fingerprint
        self.segments: dict[str, int] | None = None  # tag name -> static segment id, read once
        self.segments_lock = asyncio.Lock()  # concurrent pushes must not create one tag's segment twice
        self.audience_found = False  # the audience answered once: a member's 404 is then the member's
        self.log = get_logger(connector=SYSTEM)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | MailchimpSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        clock: ClockSource = None,
    ) -> MailchimpConnector:
        mc = vendor_section(settings, MailchimpSettings)
        # A key without its data-center suffix leaves no base URL.
        base_url = configured_base_url(mc, otherwise="a valid API key")
        # configured_base_url refuses settings without these: the asserts only tell the type checker.
        assert mc.api_key is not None
        assert mc.list_id is not None
        client = make_client(
            base_url,
            auth=("sync-worker", mc.api_key.get_secret_value()),  # Basic auth, any user name
            max_connections=MAX_CONNECTIONS,
            transport=transport,
        )
        http = VendorHTTP(SYSTEM, client, describe, retry=retry, concurrency=MAX_CONNECTIONS)
        return cls(
            MailchimpClient(http, mc.list_id),
            parse_purposes(mc.purposes),
            collection_point=mc.collection_point,
            page_size=mc.page_size,
            now=now_of(clock) or utc_now,  # the watermark never passes the run start (pagination.py)
            pull_fingerprint=mc.pull_fingerprint(),
        )

    @classmethod
    def purpose_targets(cls, settings: Settings | MailchimpSettings) -> dict[str, str]:
        """Per purpose, what carries it in Mailchimp, in words (the Art. 30 export, R36)."""
        mc = vendor_section(settings, MailchimpSettings)
        return {
            purpose: f"{construct.in_words()} in audience {mc.list_id}"
            for purpose, construct in parse_purposes(mc.purposes).items()
        }

    def capabilities(self) -> Capabilities:
        actions = {Action.SUBSCRIBE, Action.UNSUBSCRIBE, Action.TAG, Action.UNTAG, Action.ERASE}
        return Capabilities(
            system=SYSTEM,
            streams=(StreamInfo(STREAM, incremental=True, sorted=True, page_size_max=PAGE_MAX),),
            actions=frozenset(actions),
            purposes=frozenset(self.purposes),
            # One push may carry more than one call's worth: it is split into calls of 500 members and of
            # 500 addresses per tag, which fill up best when the member and tag changes of many people
            # come in one push. Erasures stay at the default: each is its own call whatever the batch.
            batch_max=dict.fromkeys(
                (Action.SUBSCRIBE, Action.UNSUBSCRIBE, Action.TAG, Action.UNTAG), PUSH_MAX
            ),
            max_concurrency=MAX_CONNECTIONS,
            rate_limit=f"{MAX_CONNECTIONS} concurrent connections per API key; no published request quota",
            # Interests, tags and permissions reach a member only while its status is subscribed: every other
            # purpose is mailed through the purpose mapped to the status (plan fails closed on it, R27).
            requires={p: status_purpose for p, c in self.purposes.items() if c.kind != "status"}
            if (status_purpose := next((p for p, c in self.purposes.items() if c.kind == "status"), None))
            else {},
            pull_fingerprint=self.pull_fingerprint,
        )

    async def pull(self, stream: str, since: str | None = None) -> AsyncIterator[Page]:
        if stream != STREAM:
            raise KeyError(f"mailchimp has no stream {stream!r}")
        saved = position = Watermark.decode(since)
        ceiling = self.now() if self.now else None
        offset = 0
        previous: list[Any] = []
        vendor_now: datetime | None = None  # the vendor's clock at the first answer: it seals the watermark
        while True:
            # Whether Mailchimp's `since_last_changed` is strict or not, ``after`` re-reads the boundary
            # second (until sealed) and the Watermark drops what was already seen there.
            body = await self.client.list_members(
                count=self.page_size, offset=offset, since_last_changed=position.after()
            )
            if vendor_now is None:
                vendor_now = self.client.http.vendor_date
            members = body.get("members") or []
            records: list[ContactRecord] = []
            errors: list[RecordError] = []
            for member in members:
                mapped = contact_from_member(member, self.purposes, self.collection_point)
                if isinstance(mapped, RecordError):
                    errors.append(mapped)
                    log_skipped(self.log, mapped)
                elif position.admits(mapped.external_id, mapped.updated_at):
                    records.append(mapped)
            seen = [(r.external_id, r.updated_at) for r in records]
            advanced = position.advance(seen)
            ids = [m.get("id") for m in members]
            if offset and ids == previous and advanced == position:
                # Mailchimp answered a further offset with the page it sent before: stop, never loop.
                raise PaginationError(SYSTEM, f"the vendor repeated the page at offset {offset}")
            previous = ids
            # Stepping by offset only within one second's members; a newer stamp starts a fresh query.
            offset = 0 if advanced.at != position.at else offset + len(members)
            position = advanced
            saved = saved.advance(seen, ceiling)
            final = len(members) < self.page_size
            checkpoint = saved.sealed_by(vendor_now) if final else saved
            yield Page(STREAM, tuple(records), tuple(errors), checkpoint=checkpoint.encode(), final=final)
            if final:
                return

    async def push(self, changes: Sequence[Change]) -> list[PushResult]:
        plan = PushPlan.build(changes, self.purposes)
        results = dict(plan.rejected)
        members = plan.member_bodies()
        chunks = [members[i : i + BATCH_MAX] for i in range(0, len(members), BATCH_MAX)]
        for outcome in await asyncio.gather(*(self._batch(chunk, plan) for chunk in chunks)):
            results.update(outcome)
        tag_batches, permission_calls = plan.sent_after_member(results)
        tagged, permitted = await asyncio.gather(self._tag(tag_batches, plan), self._calls(permission_calls))
        results.update(tagged)
        results.update(permitted)
        results.update(await self._calls(plan.erasures()))
        return [results.get(c.key) or plan.accepted(c.key) for c in changes]

    async def _batch(self, members: list[dict[str, Any]], plan: PushPlan) -> dict[str, PushResult]:
        """One batch call; members in a compliance state are sent again as `pending` (R6, R23)."""
        try:
            body = await self.client.batch_members(members)
        except ConnectorError as error:
            return plan.fail_members(members, error)
        results: dict[str, PushResult] = {}
        retry_pending: list[dict[str, Any]] = []
        for item in body.get("errors") or []:
            member = plan.member_for(str(item.get("email_address", "")))
            if member is None:
                continue
            reason = str(item.get("error") or item.get("error_code") or "rejected")
            if member.get("status") == "subscribed" and "compliance state" in reason.lower():
                retry_pending.append({**member, "status": "pending"})
                self.log.info(
                    "mailchimp.compliance_state", email=member["email_address"], rule="R6", sent="pending"
                )
            elif says_gone(reason):
                results.update(plan.answer_member(member, Outcome.GONE, reason))
            else:
                results.update(plan.answer_member(member, Outcome.REJECTED, reason, item.get("field")))
        if retry_pending:
            results.update(await self._batch(retry_pending, plan))
            plan.mark_pending(retry_pending, results)
        return results

    async def _tag(self, batches: list[TagBatch], plan: PushPlan) -> dict[str, PushResult]:
        results: dict[str, PushResult] = {}
        segment_of: dict[str, int | ConnectorError] = {}
        for tag in sorted({batch.tag for batch in batches}):
            try:
                segment_of[tag] = await self._segment_id(tag)
            except ConnectorError as error:
                segment_of[tag] = error

        async def send(batch: TagBatch) -> dict[str, PushResult]:
            segment = segment_of[batch.tag]
            if isinstance(segment, ConnectorError):
                return {key: failed_result(key, segment) for key in batch.keys}
            try:
                body = await self.client.update_segment(segment, list(batch.add), list(batch.remove))
            except ConnectorError as error:
                return {key: failed_result(key, error) for key in batch.keys}
            return refused_addresses(batch, body, plan)

        for outcome in await asyncio.gather(*(send(batch) for batch in batches)):
            results.update(outcome)
        return results

    async def _audience_exists(self) -> bool:
        if not self.audience_found:
            try:
                self.audience_found = await self.client.audience_exists()
            except ConnectorError:
                return False  # unknown: the caller fails the change as the error says, never as gone
        return self.audience_found

    async def _segment_id(self, tag: str) -> int:
        async with self.segments_lock:
            if self.segments is None:
                self.segments = await self.client.static_segments()
            if tag not in self.segments:
                self.segments[tag] = await self.client.create_static_segment(tag)
            return self.segments[tag]

    async def _calls(self, calls: list[Call]) -> dict[str, PushResult]:
        async def run(call: Call) -> dict[str, PushResult]:
            try:
                await call.run(self.client)
            except ConnectorError as error:
                # A member path answers 404 for a missing audience too: only a known audience makes it the
                # member's (a wrong list id must never settle changes as gone).
                gone = isinstance(error, NotFoundError) and await self._audience_exists()
                return {key: failed_result(key, error, member_gone=gone) for key in call.keys}
            return {}

        merged: dict[str, PushResult] = {}
        for outcome in await asyncio.gather(*(run(call) for call in calls)):
            merged.update(outcome)
        return merged

    async def aclose(self) -> None:
        await self.client.aclose()


def refused_addresses(batch: TagBatch, body: dict[str, Any], plan: PushPlan) -> dict[str, PushResult]:
    """Per-address refusals of a segment call. An address the audience does not hold is gone there;
    another refused removal (not tagged) leaves the end state the change asked for, so only refused
    additions are rejected."""
    results: dict[str, PushResult] = {}
    for error in body.get("errors") or []:
        reason = str(error.get("error") or "refused")
        for address in error.get("email_addresses") or []:
            key_sets = (batch.add.get(address, ()), batch.remove.get(address, ()))
            for key in (k for keys in key_sets for k in keys):
                if says_gone(reason):
                    results[key] = PushResult(key, Outcome.GONE, reason=reason)
                elif plan.removes(key):
                    results[key] = PushResult(key, Outcome.ACCEPTED, reason=f"not in the segment: {reason}")
                else:
                    results[key] = PushResult(key, Outcome.REJECTED, reason=reason)
    return results
