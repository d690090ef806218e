"""The Starlette app factory. Built by the composition root (``sync_worker.service``); nothing at import.

Routes: ``GET /healthz``, ``GET /readyz``, ``GET /metrics``, ``POST /webhooks/<vendor>`` (and Mailchimp's
``GET``/``POST /webhooks/mailchimp[/<secret>]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sync_worker.dispatcher import Dispatcher
from sync_worker.logs import get_logger
from sync_worker.trigger import RunRequest
from sync_worker.web.health import Readiness, not_ready_reasons
from sync_worker.web.metrics import Metrics
from sync_worker.web.webhooks.delivery import Delivery, PayloadError, Receiver, WebhookRefused

MAX_BODY_BYTES = 1_000_000  # vendors send small batches; a larger body is refused before it is read whole


def create_app(
    *,
    metrics: Metrics,
    readiness: Readiness,
    receivers: Mapping[str, Receiver],
    dispatcher: Dispatcher,
    clock: Callable[[], datetime],
    public_url: str | None = None,
) -> Starlette:
    log = get_logger(component="web")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "accepting_work": dispatcher.accepting})

    async def readyz(_request: Request) -> Response:
        checks = await run_in_threadpool(readiness.check)
        reasons = not_ready_reasons(checks, dispatcher.accepting)
        body = {
            "ready": not reasons,
            "checks": {name: asdict(c) for name, c in checks.items()},
            "reasons": reasons,
        }
        return JSONResponse(body, status_code=503 if reasons else 200)

    async def metrics_endpoint(_request: Request) -> Response:
        # Off the event loop: gauges may read the database at scrape time.
        return Response(await run_in_threadpool(metrics.render), media_type=metrics.content_type)

    def delivery_of(request: Request, body: bytes) -> Delivery:
        # Behind a proxy the vendor called the public URL, and that is what HubSpot signed.
        url = str(request.url)
        if public_url:
            url = (
                public_url.rstrip("/")
                + request.url.path
                + (f"?{request.url.query}" if request.url.query else "")
            )
        return Delivery(
            method=request.method,
            url=url,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            query=dict(request.query_params),
            path_secret=request.path_params.get("secret"),
        )

    async def webhook(request: Request) -> Response:
        vendor = request.path_params["vendor"]
        receiver = receivers.get(vendor)
        if receiver is None:
            return PlainTextResponse("unknown vendor", status_code=404)
        if request.method == "GET" and not receiver.answers_get:
            return PlainTextResponse("method not allowed", status_code=405)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return PlainTextResponse("body too large", status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return PlainTextResponse("body too large", status_code=413)
        delivery = delivery_of(request, body)
        try:
            receiver.verify(delivery, clock())
        except WebhookRefused as refusal:
            metrics.count_webhook(vendor, refusal.reason)
            # Never the URL or headers: they carry the secret or the signature.
            log.warning("webhook.refused", vendor=vendor, reason=refusal.reason, detail=refusal.detail)
            return PlainTextResponse("unauthorized", status_code=401)
        if request.method == "GET":
            metrics.count_webhook(vendor, "validated")
            return PlainTextResponse("ok")
        try:
            parsed = receiver.parse(delivery)
        except PayloadError as error:
            metrics.count_webhook(vendor, "unreadable")
            log.warning("webhook.unreadable", vendor=vendor, error=str(error))
            return JSONResponse({"error": str(error)}, status_code=400)
        for bad in parsed.errors:
            # The rest of the delivery goes on; the scheduled run repairs whatever this item would have.
            log.warning(
                "webhook.bad_record", vendor=vendor, record=bad.record_id, field=bad.field, error=bad.message
            )
        started = False
        if parsed.facts:
            started = dispatcher.enqueue(RunRequest.for_facts(parsed.facts))
            if not started:
                # Shutting down: 503 makes the vendor deliver again (to another replica, or after restart).
                metrics.count_webhook(vendor, "deferred")
                return PlainTextResponse("shutting down, retry later", status_code=503)
        metrics.count_webhook(vendor, "accepted")
        log.info(
            "webhook.accepted",
            vendor=vendor,
            facts=len(parsed.facts),
            bad_records=len(parsed.errors),
            run_started=started,
        )
        return JSONResponse(
            {"facts": len(parsed.facts), "bad_records": len(parsed.errors), "run_started": started}
        )

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/webhooks/{vendor}", webhook, methods=["GET", "POST"]),
        Route("/webhooks/{vendor}/{secret}", webhook, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)
