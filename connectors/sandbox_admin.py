"""Admin routes in front of a served sandbox: point its webhooks at a worker, act as a person.

``POST /_sandbox/webhooks`` with ``{"url", "secret", "topics"?}`` subscribes the worker at ``url`` (its base
URL); ``POST /_sandbox/status`` with ``{"email", "purpose", "status"}`` changes a person's state as the person
would, which fires the vendor's webhook. Everything else goes to the vendor's API unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from connectors.base import Status
from connectors.sandbox import Sandbox


def _field(body: Any, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {name!r} is missing or not a string")
    return value


def with_admin(sandbox: Sandbox) -> Starlette:
    async def subscribe(request: Request) -> Response:
        try:
            body = await request.json()
            url, secret = _field(body, "url"), _field(body, "secret")
            topics = body.get("topics")
            subscription = sandbox.webhooks.subscribe(url, secret, topics)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"url": subscription.url, "topics": sorted(subscription.topics or [])}, 201)

    async def set_status(request: Request) -> Response:
        try:
            body = await request.json()
            email, purpose = _field(body, "email"), _field(body, "purpose")
            status = Status(_field(body, "status"))
            sandbox.set_status(email, purpose, status)
        except (ValueError, KeyError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"email": email, "purpose": purpose, "status": status.value})

    return Starlette(
        routes=[
            Route("/_sandbox/webhooks", subscribe, methods=["POST"]),
            Route("/_sandbox/status", set_status, methods=["POST"]),
            Mount("/", app=sandbox.app),
        ]
    )
