"""Each vendor sandbox sends its vendor's real webhook to the worker when a person changes their state.

Both sides run over real HTTP on 127.0.0.1: a served sandbox and the worker's web app (with a recording
run function). The sandbox signs with the worker's own ``sign_<vendor>`` helpers, so the two cannot drift.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from config import load_settings
from connectors.base import GlobalState, Status
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.klaviyo.sandbox import KlaviyoSandbox
from connectors.mailchimp.sandbox import API_KEY, MailchimpSandbox
from connectors.sandbox import Clock, Sandbox, free_port, served
from connectors.sandbox_admin import with_admin
from connectors.shopify.sandbox import ShopifySandbox
from connectors.webhook_sender import Attempt
from sync_worker import db
from sync_worker.trigger import RunRequest, RunStatus, RunSummary, WebhookFact
from tests.web.worker_app import NOW, SECRETS, build_worker_app

EMAIL = "Jan.Jansen@Example.com"
SECRET_OF = {
    "shopify": SECRETS["SYNC_SHOPIFY__WEBHOOK_SECRET"],
    "hubspot": SECRETS["SYNC_HUBSPOT__CLIENT_SECRET"],
    "mailchimp": SECRETS["SYNC_MAILCHIMP__WEBHOOK_SECRET"],
    "klaviyo": SECRETS["SYNC_KLAVIYO__WEBHOOK_SECRET"],
}
SANDBOXES: dict[str, Callable[[Clock], Sandbox]] = {
    "shopify": lambda clock: ShopifySandbox(clock=clock),
    "hubspot": lambda clock: HubSpotSandbox(clock=clock),
    "mailchimp": lambda clock: MailchimpSandbox(clock=clock),
    "klaviyo": lambda clock: KlaviyoSandbox(clock=clock),
}


@dataclass
class WaitingRun:
    """The worker's run function: records what it was asked and lets the test wait for it (no sleeps)."""

    requests: list[RunRequest] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, request: RunRequest) -> RunSummary:
        self.requests.append(request)
        self.started.set()
        return RunSummary(RunStatus.SUCCESS, run_id=str(len(self.requests)))

    def facts(self) -> list[WebhookFact]:
        assert self.started.wait(10), "the worker started no run for the webhook"
        return [fact for request in self.requests for fact in request.facts]


@contextmanager
def worker() -> Iterator[tuple[str, WaitingRun]]:
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    run = WaitingRun()
    try:
        with served(build_worker_app(settings, engine, run).app) as url:
            yield url, run
    finally:
        engine.dispose()


@contextmanager
def sandbox_of(vendor: str) -> Iterator[Sandbox]:
    sandbox = SANDBOXES[vendor](Clock(NOW))  # the worker's clock reads NOW too: timestamps are fresh
    try:
        with served(sandbox.app):
            yield sandbox
    finally:
        sandbox.webhooks.close()


def posts(attempts: list[Attempt]) -> list[Attempt]:
    return [a for a in attempts if a.webhook.method == "POST"]


@pytest.mark.usefixtures("worker_env")
@pytest.mark.parametrize("vendor", sorted(SANDBOXES))
def test_person_unsubscribing_in_sandbox_sends_webhook_the_worker_accepts(vendor: str) -> None:
    with worker() as (url, run), sandbox_of(vendor) as sandbox:
        vendor_id = sandbox.add_contact(EMAIL, {"newsletter": Status.SUBSCRIBED})
        sandbox.webhooks.subscribe(url, SECRET_OF[vendor])
        sandbox.set_status(EMAIL, "newsletter", Status.UNSUBSCRIBED)
        attempts = sandbox.webhooks.wait()

        assert [a.status for a in attempts] == [200] * len(attempts), [a.error for a in attempts]
        assert len(posts(attempts)) == 1
        facts = run.facts()
    assert len(facts) == 1
    fact = facts[0]
    assert fact.system == vendor
    if vendor == "hubspot":
        # HubSpot names the contact by id only; the per-subscription opt-out property changed.
        assert fact.email is None
        assert fact.external_id == vendor_id
        assert fact.topic == "contact.propertyChange:hs_email_optout_101"
        assert fact.read_back is True
    else:
        assert fact.email == "jan.jansen@example.com"
        assert fact.status is Status.UNSUBSCRIBED


@pytest.mark.usefixtures("worker_env")
@pytest.mark.parametrize("vendor", sorted(SANDBOXES))
def test_webhook_signed_with_wrong_secret_is_refused_and_starts_no_run(vendor: str) -> None:
    with worker() as (url, run), sandbox_of(vendor) as sandbox:
        sandbox.add_contact(EMAIL, {"newsletter": Status.SUBSCRIBED})
        sandbox.webhooks.subscribe(url, "not-the-worker-secret")
        sandbox.set_status(EMAIL, "newsletter", Status.UNSUBSCRIBED)
        attempts = sandbox.webhooks.wait()
    assert attempts, "the sandbox sent nothing"
    assert {a.status for a in attempts} == {401}
    assert run.requests == []


@pytest.mark.usefixtures("worker_env")
def test_hubspot_opt_out_of_all_email_is_hs_email_optout_event() -> None:
    with worker() as (url, run), sandbox_of("hubspot") as sandbox:
        assert isinstance(sandbox, HubSpotSandbox)
        vendor_id = sandbox.add_contact(EMAIL, {"newsletter": Status.SUBSCRIBED})
        sandbox.webhooks.subscribe(url, SECRET_OF["hubspot"])
        sandbox.unsubscribe_from_all(EMAIL)
        (attempt,) = sandbox.webhooks.wait()
        assert attempt.status == 200
        facts = run.facts()
    optout = [f for f in facts if f.topic == "contact.propertyChange:hs_email_optout"]
    assert [(f.external_id, f.global_state) for f in optout] == [(vendor_id, GlobalState.UNSUBSCRIBED_ALL)]


@pytest.mark.usefixtures("worker_env")
def test_mailchimp_validates_the_url_with_a_get_when_subscribed() -> None:
    with worker() as (url, _run), sandbox_of("mailchimp") as sandbox:
        sandbox.webhooks.subscribe(url, SECRET_OF["mailchimp"])
        (check,) = sandbox.webhooks.wait()
    assert (check.webhook.method, check.status, check.answer) == ("GET", 200, b"ok")


def test_change_through_the_vendor_api_fires_no_webhook() -> None:
    sandbox = MailchimpSandbox(clock=Clock(NOW))
    sandbox.add_contact(EMAIL, {"newsletter": Status.SUBSCRIBED})
    sandbox.webhooks.subscribe(f"http://127.0.0.1:{free_port()}", "secret")
    transport = httpx.ASGITransport(app=sandbox.app)

    async def unsubscribe_by_api() -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://mc.test") as client:
            list_id = sandbox.audience.list_id
            answer = await client.patch(
                f"/3.0/lists/{list_id}/members/{EMAIL.lower()}",
                json={"status": "unsubscribed"},
                auth=("anystring", API_KEY),
            )
            return answer.status_code

    assert asyncio.run(unsubscribe_by_api()) == 200
    assert sandbox.status(EMAIL, "newsletter") is Status.UNSUBSCRIBED
    # Only the subscription's URL check was sent: the worker's own API write is not echoed back.
    assert [a.webhook.method for a in sandbox.webhooks.wait()] == ["GET"]
    sandbox.webhooks.close()


def test_failed_delivery_is_recorded_and_the_sandbox_goes_on() -> None:
    sandbox = ShopifySandbox(clock=Clock(NOW))
    sandbox.add_contact(EMAIL, {"newsletter": Status.SUBSCRIBED})
    sandbox.webhooks.subscribe(f"http://127.0.0.1:{free_port()}", "secret")  # nothing listens there
    sandbox.set_status(EMAIL, "newsletter", Status.UNSUBSCRIBED)
    (attempt,) = sandbox.webhooks.wait()
    sandbox.webhooks.close()
    assert attempt.status is None
    assert attempt.error is not None
    assert "ConnectError" in attempt.error
    assert sandbox.status(EMAIL, "newsletter") is Status.UNSUBSCRIBED


@pytest.mark.usefixtures("worker_env")
def test_served_sandbox_is_pointed_at_the_worker_and_changed_over_its_admin_routes() -> None:
    sandbox = MailchimpSandbox(clock=Clock(NOW))
    sandbox.add_contact(EMAIL, {"newsletter": Status.SUBSCRIBED})
    with worker() as (url, run), served(with_admin(sandbox)) as sandbox_url:
        with httpx.Client(base_url=sandbox_url) as admin:
            subscribed = admin.post("/_sandbox/webhooks", json={"url": url, "secret": SECRET_OF["mailchimp"]})
            bad = admin.post("/_sandbox/status", json={"email": EMAIL, "purpose": "newsletter"})
            changed = admin.post(
                "/_sandbox/status", json={"email": EMAIL, "purpose": "newsletter", "status": "unsubscribed"}
            )
            api = admin.get("/3.0/ping", auth=("anystring", API_KEY))  # the vendor API is still there
        attempts = sandbox.webhooks.wait()
        facts = run.facts()
        sandbox.webhooks.close()
    assert (subscribed.status_code, changed.status_code, api.status_code) == (201, 200, 200)
    assert bad.status_code == 400
    assert "status" in bad.json()["error"]
    assert [(a.webhook.method, a.status) for a in attempts] == [("GET", 200), ("POST", 200)]
    assert [(f.email, f.status) for f in facts] == [("jan.jansen@example.com", Status.UNSUBSCRIBED)]
