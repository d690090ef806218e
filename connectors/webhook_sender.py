"""A sandbox's outgoing webhooks: who subscribed, and delivery on a background thread.

When a person or an admin changes their state in a sandbox (``set_status``), the sandbox builds its vendor's
real webhook for every subscription that wants that topic and hands it here. Delivery runs on one daemon
thread, so it never blocks or breaks the sandbox's API (which may be serving the very worker being called),
and keeps the order of changes. Nothing is retried: every attempt, failed or not, is recorded in
``attempts`` for tests and the demo to read. Changes made through the vendor API (the worker's own pushes)
never come here, as a vendor does not echo an API client's own writes back to it by default.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from sync_worker.logs import get_logger


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where to send: the worker's base URL (each vendor adds its own path), the shared secret, the topics."""

    url: str
    secret: str
    topics: frozenset[str] | None = None  # None: every topic the sandbox fires

    def wants(self, topic: str) -> bool:
        return self.topics is None or topic in self.topics


@dataclass(frozen=True, slots=True)
class Webhook:
    """One request, exactly as the vendor would send it (already signed)."""

    topic: str
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Attempt:
    webhook: Webhook
    status: int | None  # None: no answer at all (refused connection, timeout)
    error: str | None = None
    answer: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


Build = Callable[[Subscription], Webhook]


class WebhookSender:
    def __init__(self, vendor: str, *, validate: Build | None = None, timeout: float = 10.0) -> None:
        self.vendor = vendor
        self.validate = validate  # the check a vendor sends when a webhook is saved (Mailchimp's GET)
        self.timeout = timeout  # Mailchimp gives up after 10 s; the others allow about as long
        self.subscriptions: list[Subscription] = []
        self.attempts: list[Attempt] = []
        self._queue: queue.Queue[Webhook | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self.log = get_logger(component="sandbox.webhooks", vendor=vendor)

    def subscribe(self, url: str, secret: str, topics: Iterable[str] | None = None) -> Subscription:
        """Send this sandbox's webhooks to the worker at ``url`` (its base URL), signed with ``secret``."""
        subscription = Subscription(url.rstrip("/"), secret, frozenset(topics) if topics else None)
        self.subscriptions.append(subscription)
        if self.validate is not None:
            self._enqueue(self.validate(subscription))
        return subscription

    def fire(self, topic: str, build: Build) -> int:
        """Queue the webhook for ``topic`` to every subscription that wants it; returns how many."""
        wanted = [s for s in self.subscriptions if s.wants(topic)]
        for subscription in wanted:
            self._enqueue(build(subscription))
        return len(wanted)

    def wait(self, timeout: float = 10.0) -> list[Attempt]:
        """Block until every queued webhook has been attempted; returns all attempts so far."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(f"{self.vendor}: {self._pending} webhook(s) still in flight")
        return list(self.attempts)

    def close(self) -> None:
        """Stop the delivery thread once what is queued has been attempted."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=self.timeout + 5)
            self._thread = None

    def _enqueue(self, webhook: Webhook) -> None:
        with self._idle:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._deliver_all, name=f"webhooks:{self.vendor}", daemon=True
                )
                self._thread.start()
        self._queue.put(webhook)

    def _deliver_all(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while (webhook := self._queue.get()) is not None:
                attempt = self._deliver(client, webhook)
                with self._idle:
                    self.attempts.append(attempt)
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, client: httpx.Client, webhook: Webhook) -> Attempt:
        try:
            response = client.request(
                webhook.method, webhook.url, headers=dict(webhook.headers), content=webhook.body
            )
        except httpx.HTTPError as error:
            # Never the URL: Mailchimp's carries the secret.
            self.log.warning("sandbox.webhook_failed", topic=webhook.topic, error=type(error).__name__)
            return Attempt(webhook, None, f"{type(error).__name__}: {error}")
        if not response.is_success:
            self.log.warning("sandbox.webhook_refused", topic=webhook.topic, status=response.status_code)
        return Attempt(webhook, response.status_code, None, response.content)
