"""A shop for real-process tests: every vendor sandbox served on 127.0.0.1 in this process, a fresh ledger
holding the people's double opt-in, and ``sync-worker`` run as a child process against both.

``Gate`` holds one vendor's pushes at the door: the test learns that a push is in flight (an event, no
polling) and the worker waits for an answer until the test kills it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import pytest
from sqlalchemy import func, select
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import Settings
from connectors.base import Status
from connectors.registry import VENDORS as ALL_VENDORS
from sync_worker import db
from sync_worker.demo import CATALOG, SECRET, available_sandboxes, serve_all, settings_for
from sync_worker.ledger.ingest import append_events
from sync_worker.ledger.records import ConsentEventIn
from sync_worker.policy import Evidence
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.runner import run_once

PEOPLE = [f"person{i}@example.nl" for i in range(8)]
OFF = {Status.UNSUBSCRIBED, Status.NOT_SUBSCRIBED}
RUN_TIMEOUT = 60.0  # a deadline for one child run (a few seconds on an idle machine), not a target


class Front:
    """ASGI middleware in front of one sandbox. It notes which people each push request names (by e-mail
    or by the vendor's id for them: counts per (system, email)), and while ``closed`` it holds pushes until
    ``opened``, then answers 503 without reaching the vendor (the worker is dead by then)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ids: dict[str, list[str]] = {}  # email -> how this vendor's requests may name the person
        self.pushes: Counter[str] = Counter()
        self.closed = False
        self.reached = threading.Event()
        self.opened = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "GET" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        text = scope["path"] + " " + body.decode("utf-8", "replace")
        # Reads that POST (HubSpot's search and batch reads, GraphQL queries) are no pushes.
        read = scope["path"].endswith(("/search", "/read")) or (
            scope["path"].endswith("graphql.json") and "mutation" not in text
        )
        if not read:
            if self.closed:
                self.reached.set()
                await anyio.to_thread.run_sync(self.opened.wait, RUN_TIMEOUT)
                await JSONResponse({"detail": "held by the test"}, status_code=503)(scope, receive, send)
                return
            for email, names in self.ids.items():
                if any(re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w-])", text) for n in names):
                    self.pushes[email] += 1
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class Shop:
    def __init__(
        self, boxes: dict[str, Any], fronts: dict[str, Front], env: dict[str, str], settings: Settings
    ) -> None:
        self.settings = settings
        self.boxes = boxes
        self.fronts = fronts
        self.database_url = database_url = settings.database_url
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SYNC_")},
            **env,
            "SYNC_DATABASE_URL": database_url,
            "SYNC_SECRET_KEY": SECRET,
            "SYNC_COLLECTION_POINTS": json.dumps(CATALOG),
            "SYNC_SHOPIFY__CHECKOUT_PRESELECTED": "true",
            "SYNC_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self, *args: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "sync_worker", "run", *args]
        return subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run_once(self) -> dict[str, Any]:
        """One complete ``sync-worker run --once``; its JSON summary line."""
        process = self.start("--once")
        out, err = process.communicate(timeout=RUN_TIMEOUT)
        assert process.returncode in (0, 1), err[-3000:]
        self.tick()
        summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return summary

    def pushes(self) -> dict[tuple[str, str], int]:
        """Push requests that named each person, per (system, email) (one purpose: the newsletter)."""
        return {(name, email): n for name, front in self.fronts.items() for email, n in front.pushes.items()}

    def settle(self) -> None:
        """A first run, in this process (quicker to start): the snapshots every later run compares with."""
        assert run_once(self.settings, trigger="manual").status == "success"
        self.tick()

    def tick(self) -> None:
        for box in self.boxes.values():
            box.clock.advance(60)  # a vendor-side change after a run gets a later stamp than our pushes

    def states(self, email: str) -> dict[str, Status | None]:
        return {name: box.status(email, "newsletter") for name, box in self.boxes.items()}

    def not_off(self) -> dict[str, dict[str, Status | None]]:
        """Who is still subscribed somewhere: person -> the vendors' states."""
        left = {email: self.states(email) for email in PEOPLE}
        return {email: s for email, s in left.items() if not all(v in OFF for v in s.values())}

    def duplicate_events(self) -> list[tuple[str, str, int]]:
        """Ledger events stored more than once for one (source, source_event_id)."""
        from sync_worker.ledger.tables import EVENTS

        engine = db.make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                query = (
                    select(EVENTS.c.source, EVENTS.c.source_event_id, func.count())
                    .group_by(EVENTS.c.source, EVENTS.c.source_event_id)
                    .having(func.count() > 1)
                )
                return [(s, e, int(n)) for s, e, n in conn.execute(query)]
        finally:
            engine.dispose()

    def withdrawals(self) -> int:
        from sync_worker.ledger.tables import EVENTS

        engine = db.make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                query = select(func.count()).where(EVENTS.c.action.in_(("withdraw", "object")))
                return int(conn.execute(query).scalar_one())
        finally:
            engine.dispose()


@contextmanager
def shop(database_url: str) -> Iterator[Shop]:
    """Every sandbox served behind a Front; PEOPLE subscribed everywhere with their double opt-in."""
    boxes = available_sandboxes(lambda _line: None)
    if len(boxes) < len(ALL_VENDORS):
        pytest.skip("not every vendor sandbox is available in this build")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    fronts: dict[str, Front] = {}
    for box in boxes:
        if hasattr(box, "bucket"):  # Shopify's query-cost bucket refills in real time: no waiting in tests
            from connectors.shopify.sandbox_data import CostBucket

            box.bucket = CostBucket(maximum=1e9, restore_rate=1e9)
        box.clock.set(start)
        front = fronts[box.name] = Front(box.app)
        for email in PEOPLE:
            vendor_id = box.add_contact(email, {"newsletter": Status.SUBSCRIBED})
            front.ids[email] = [email, vendor_id]
    with serve_all([_Fronted(box, fronts[box.name]) for box in boxes]) as env:  # type: ignore[misc]
        settings = settings_for(env, database_url)
        engine = db.make_engine(database_url)
        db.upgrade(engine)
        at = start - timedelta(days=30)
        events = []
        for n, email in enumerate(PEOPLE):
            grant = ConsentEventIn(
                email=email, source="website", source_event_id=f"f-{n}", purpose="newsletter",
                action="grant", occurred_at=at, method="web_form", collection_point="website:newsletter-form",
                evidence=Evidence(checkbox_prechecked=False, was_required=False),
            )  # fmt: skip
            events += [grant, grant.model_copy(update={"action": "confirm", "source_event_id": f"f-{n}:c"})]
        with engine.begin() as conn:
            append_events(
                conn, events, policy=policy_from_settings(settings), secret=secret_of(settings), now=start
            )
        engine.dispose()
        try:
            yield Shop({box.name: box for box in boxes}, fronts, env, settings)
        finally:
            for front in fronts.values():
                front.opened.set()


class _Fronted:
    """A sandbox served through a middleware of the test's (the rest of the Sandbox protocol is the box's)."""

    def __init__(self, box: Any, front: ASGIApp) -> None:
        self.box = box
        self.app = front

    def settings_env(self, base_url: str) -> dict[str, str]:
        env: dict[str, str] = self.box.settings_env(base_url)
        return env


def kill(process: subprocess.Popen[str]) -> None:
    """kill -9: no handler, no cleanup, no flushing in the worker."""
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=RUN_TIMEOUT)
