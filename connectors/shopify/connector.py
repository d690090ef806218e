"""Shopify connector: pulls customers (consent, tags) and orders incrementally; pushes consent and tags.

Both streams are read sorted by ``updatedAt`` with a closed-boundary watermark (``updated_at:>='...'``,
``>`` once sealed by Shopify's clock), so each page checkpoints. Pushes go in batches of aliased
mutations onto the customer id the pull saw; only customers without one are first found by e-mail in one
aliased read, which also gives their consent state. REDACTED and INVALID are Shopify's read-only facts
and are refused, never retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from config.settings import Settings
from config.shopify import ShopifySettings
from connectors.assembly import ClockSource, Now, configured_base_url, now_of, utc_now, vendor_section
from connectors.base import (
    Action,
    Capabilities,
    Change,
    Outcome,
    Page,
    PushResult,
    Record,
    RecordError,
    StreamInfo,
)
from connectors.errors import AuthError, ConnectorError, TransientError
from connectors.fields import log_skipped
from connectors.http import RetryPolicy, make_client
from connectors.pagination import Watermark, follow_tokens
from connectors.shopify import documents
from connectors.shopify.client import Pacer, ShopifyClient, ShopifyHTTP, describe
from connectors.shopify.mapping import (
    CONSENT,
    READ_ONLY_STATES,
    SYSTEM,
    consent_input,
    customer_gone,
    format_time,
    stamp_of,
    to_contact,
    to_purchase,
)
from sync_worker.logs import get_logger

PAGE_GROWTH = 4  # a pull's page size grows this much per page that came back full
FIRST_PAGE_SHARE = 10  # and starts at a tenth of the largest page (at least one record)


def first_page_size(largest: int) -> int:
    return max(1, largest // FIRST_PAGE_SHARE)


class ShopifyConnector:
    name = SYSTEM
    page_size = 250  # customers per page: Shopify's connection maximum
    orders_page_size = (
        20  # orders carry line items: 20 x 20 lines keeps a page under the 1000-point query cap
    )
    # Aliased mutations per request: as many of the dearest (a consent update) as one query may cost.
    # Shopify's limit is points, not requests: larger batches cost the same points in fewer requests.
    batch_size = documents.MAX_QUERY_COST // documents.CONSENT_UPDATE_COST
    max_concurrency = 4

    def __init__(self, settings: ShopifySettings, client: ShopifyClient, clock: Now) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self.log = get_logger(connector=SYSTEM)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | ShopifySettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        clock: ClockSource = None,
    ) -> ShopifyConnector:
        shop = vendor_section(settings, ShopifySettings)
        base_url = configured_base_url(shop)
        assert shop.access_token is not None  # configured_base_url refuses settings without it
        retry = retry or RetryPolicy()
        client = make_client(
            base_url,
            headers={"X-Shopify-Access-Token": shop.access_token.get_secret_value()},
            max_connections=cls.max_concurrency,
            transport=transport,
        )
        pacer = Pacer(sleep=retry.sleep)  # one bucket estimate for all concurrent requests of this shop
        http = ShopifyHTTP(
            SYSTEM, client, describe, retry=retry, concurrency=cls.max_concurrency, pacer=pacer
        )
        return cls(shop, ShopifyClient(http), now_of(clock) or utc_now)

    @classmethod
    def purpose_targets(cls, settings: Settings | ShopifySettings) -> dict[str, str]:
        """Per purpose, what marks it on a Shopify customer, in words (the Art. 30 export, R36)."""
        shop = vendor_section(settings, ShopifySettings)
        return {
            purpose: f"customer e-mail marketing consent in shop {shop.shop}"
            if target == CONSENT
            else f"customer tag {target!r} in shop {shop.shop}"
            for purpose, target in shop.purposes.items()
        }

    def capabilities(self) -> Capabilities:
        actions = frozenset({Action.SUBSCRIBE, Action.UNSUBSCRIBE, Action.TAG, Action.UNTAG})
        return Capabilities(
            system=SYSTEM,
            streams=(
                StreamInfo("contacts", incremental=True, sorted=True, page_size_max=250),
                StreamInfo("purchases", incremental=True, sorted=True, page_size_max=self.orders_page_size),
            ),
            actions=actions,
            purposes=frozenset(self.settings.purposes),
            batch_max=dict.fromkeys(actions, self.batch_size),
            max_concurrency=self.max_concurrency,
            rate_limit="GraphQL query cost: leaky bucket (standard plan 100 points/s), 1000 points per query",
            pull_fingerprint=self.settings.pull_fingerprint(),
        )

    # --- pull ------------------------------------------------------------------------------------------

    async def pull(self, stream: str, since: str | None = None) -> AsyncIterator[Page]:
        if stream == "contacts":
            root, document, largest = "customers", documents.CUSTOMERS, self.page_size
            costing = documents.customers_cost
        elif stream == "purchases":
            root, document, largest = "orders", documents.ORDERS, self.orders_page_size
            costing = documents.orders_cost
        else:
            raise KeyError(f"shopify has no stream {stream!r}")
        start = Watermark.decode(since)
        ceiling = self.clock()  # the cursor never passes the run's start
        # Closed boundary (>=) until the watermark is sealed: then nothing more can be stamped at it (>).
        search = (
            f"updated_at:{'>=' if start.inclusive else '>'}'{format_time(start.at)}'" if start.at else None
        )
        vendor_now: datetime | None = None  # the vendor's clock at the first answer: it seals the watermark
        mark = start
        # Shopify must hold a page's whole requested cost before it answers, however little the page holds.
        # A pull usually finds little (a stream never read yet has no watermark either), so it asks small
        # first and grows while pages come back full: a quiet run never waits for a bucket the run before
        # drained, and a long pull reaches the largest page after two requests.
        first = first_page_size(largest)

        async def fetch(after: str | None) -> tuple[Page, str | None]:
            nonlocal mark, first, vendor_now
            variables = {"first": first, "after": after, "query": search}
            result = await self.client.execute(document, variables, costing(first))
            if after is None:
                vendor_now = self.client.http.vendor_date
            connection = result.data[root]
            nodes = [node for node in connection["nodes"] if isinstance(node, Mapping)]
            stamped = [(node, stamp_of(node)) for node in nodes]
            records: list[Record] = []
            errors: list[RecordError] = []
            for node, node_stamp in stamped:
                if node_stamp is not None and not start.admits(*node_stamp):
                    continue  # seen at the boundary already
                mapped = self._map(stream, node)
                if isinstance(mapped, RecordError):
                    errors.append(mapped)
                    log_skipped(self.log, mapped)
                else:
                    records.append(mapped)
            mark = mark.advance((s for _, s in stamped if s is not None), ceiling=ceiling)
            info = connection["pageInfo"]
            more = bool(info.get("hasNextPage"))
            first = min(largest, first * PAGE_GROWTH)
            checkpoint = mark if more else mark.sealed_by(vendor_now)
            page = Page(stream, tuple(records), tuple(errors), checkpoint=checkpoint.encode(), final=not more)
            return page, info.get("endCursor") if more else None

        async for page in follow_tokens(SYSTEM, fetch):
            yield page

    def _map(self, stream: str, node: Mapping[str, Any]) -> Record | RecordError:
        if stream == "contacts":
            return to_contact(
                node, self.settings.purposes, checkout_preselected=self.settings.checkout_preselected
            )
        if ((node.get("lineItems") or {}).get("pageInfo") or {}).get("hasNextPage"):
            # Categories come from the first lines only; a missed category can only deny soft opt-in (R12c).
            self.log.warning(
                "order_lines_truncated",
                rule="R12c",
                record_id=node.get("id"),
                read=documents.LINE_ITEMS_PER_ORDER,
            )
        return to_purchase(node, self.settings.category_map)

    # --- push ------------------------------------------------------------------------------------------

    async def push(self, changes: Sequence[Change]) -> list[PushResult]:
        results: dict[str, PushResult] = {}
        todo = []
        for change in changes:
            refusal = self._refusal(change)
            if refusal is not None:
                results[change.key] = PushResult(change.key, Outcome.REJECTED, refusal)
            else:
                todo.append(change)
        batches = [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
        for answered in await asyncio.gather(*(self._push_batch(batch) for batch in batches)):
            results.update(answered)
        for result in results.values():
            if result.outcome is not Outcome.ACCEPTED:
                self.log.warning(
                    "push_not_accepted", key=result.key, outcome=result.outcome, reason=result.reason
                )
        return [results[change.key] for change in changes]

    def _refusal(self, change: Change) -> str | None:
        if change.action in (Action.TAG, Action.UNTAG):
            return None if change.tag else f"{change.action} without a tag"
        if change.action is Action.ERASE:
            return "erasure is not pushed to Shopify: erase the customer in the Shopify admin"
        if change.purpose not in self.settings.purposes:
            return f"purpose {change.purpose!r} has no Shopify mapping (SYNC_SHOPIFY__PURPOSES)"
        return None

    def _operation(self, alias: str, change: Change, customer_id: str) -> documents.Operation:
        if change.action in (Action.TAG, Action.UNTAG):
            assert change.tag is not None
            return documents.tags_change(alias, customer_id, [change.tag], add=change.action is Action.TAG)
        target = self.settings.purposes[change.purpose or ""]
        if target == CONSENT:
            return documents.consent_update(
                alias, customer_id, consent_input(change.action, change.consent_at)
            )
        return documents.tags_change(alias, customer_id, [target], add=change.action is Action.SUBSCRIBE)

    async def _push_batch(self, batch: list[Change]) -> dict[str, PushResult]:
        done: dict[str, PushResult] = {}
        try:
            planned = await self._find(batch, done)
            if planned:
                await self._mutate(planned, done)
        except AuthError:
            raise
        except TransientError as error:
            outcome, reason = Outcome.RETRY_LATER, str(error)
        except ConnectorError as error:
            outcome, reason = Outcome.REJECTED, str(error)
        else:
            return done
        return {**{c.key: PushResult(c.key, outcome, reason) for c in batch}, **done}

    async def _find(
        self, batch: list[Change], done: dict[str, PushResult]
    ) -> list[tuple[Change, documents.Operation]]:
        """Each change's customer id: the one the last pull saw, else one aliased read by e-mail.

        A known id needs no read: the plan only unsubscribes a customer it saw subscribed and only
        subscribes one it saw active, and a customer that turned REDACTED or INVALID since is refused by
        Shopify's own userErrors on the mutation, which the result then carries.
        """
        planned = [
            (change, self._operation(f"m{i}", change, change.external_id))
            for i, change in enumerate(batch)
            if change.external_id
        ]
        unknown = [(i, change) for i, change in enumerate(batch) if not change.external_id]
        if not unknown:
            return planned
        lookups = [documents.lookup_by_email(f"c{i}", c.email) for i, c in unknown]
        document, variables, cost = documents.batch("query", "SyncFindCustomers", lookups)
        found = await self.client.execute(document, variables, cost)
        for lookup, (_, change) in zip(lookups, unknown, strict=True):
            node = found.data.get(lookup.alias)
            if isinstance(node, Mapping) and "nodes" in node:
                node = (node["nodes"] or [None])[0]
            if not isinstance(node, Mapping):
                reason = found.error_for(lookup.alias) or "no Shopify customer with this e-mail address"
                done[change.key] = PushResult(change.key, Outcome.REJECTED, reason)
                continue
            state = (node.get("emailMarketingConsent") or {}).get("marketingState")
            operation = self._operation(f"m{lookup.alias[1:]}", change, node["id"])
            if operation.field == "customerEmailMarketingConsentUpdate":
                if state in READ_ONLY_STATES:
                    reason = f"Shopify's marketingState {state} is read-only: set by Shopify, never written"
                    done[change.key] = PushResult(change.key, Outcome.REJECTED, reason, vendor_state=state)
                    continue
                if change.action is Action.UNSUBSCRIBE and state == "NOT_SUBSCRIBED":
                    # Never subscribed: writing UNSUBSCRIBED would claim a past subscription.
                    done[change.key] = PushResult(change.key, Outcome.ACCEPTED, vendor_state=state)
                    continue
            planned.append((change, operation))
        return planned

    async def _mutate(
        self, planned: list[tuple[Change, documents.Operation]], done: dict[str, PushResult]
    ) -> None:
        document, variables, cost = documents.batch("mutation", "SyncConsent", [op for _, op in planned])
        answer = await self.client.execute(document, variables, cost)
        for change, operation in planned:
            payload = answer.data.get(operation.alias)
            if not isinstance(payload, Mapping):
                reason = answer.error_for(operation.alias) or "Shopify returned no result"
                done[change.key] = PushResult(change.key, Outcome.REJECTED, reason)
                continue
            problems = payload.get("userErrors") or []
            if problems:
                reason = "; ".join(f"{'.'.join(p.get('field') or [])}: {p.get('message')}" for p in problems)
                # A customer deleted in Shopify: nobody there any more (done as gone, not a stuck refusal).
                outcome = Outcome.GONE if customer_gone(operation.field, payload) else Outcome.REJECTED
                done[change.key] = PushResult(change.key, outcome, reason)
                continue
            customer = payload.get("customer") or {}
            state = (customer.get("emailMarketingConsent") or {}).get("marketingState")
            done[change.key] = PushResult(change.key, Outcome.ACCEPTED, vendor_state=state)

    async def aclose(self) -> None:
        await self.client.aclose()
