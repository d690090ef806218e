"""The service in a process of its own, with a stand-in run function that reports on stdout.

``SERVICE_TEST_RUN_SECONDS`` is how long each run works (a batch being pushed);
``SERVICE_TEST_WEBHOOK_RUN_SECONDS`` overrides it for webhook-triggered runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from config import load_settings
from sync_worker.logs import configure_logging
from sync_worker.service import serve
from sync_worker.trigger import RunRequest, RunStatus, RunSummary, Trigger

WORK_SECONDS = float(os.environ.get("SERVICE_TEST_RUN_SECONDS", "0"))
WEBHOOK_WORK_SECONDS = float(os.environ.get("SERVICE_TEST_WEBHOOK_RUN_SECONDS", str(WORK_SECONDS)))


def say(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def run(request: RunRequest) -> RunSummary:
    say("test.run.started", trigger=request.trigger.value, emails=sorted(request.emails))
    await asyncio.sleep(WEBHOOK_WORK_SECONDS if request.trigger is Trigger.WEBHOOK else WORK_SECONDS)
    say("test.run.finished", trigger=request.trigger.value)
    return RunSummary(RunStatus.SUCCESS)


async def close() -> None:
    say("test.clients.closed")


settings = load_settings()
configure_logging("json", "info", show_emails=True)
sys.exit(serve(settings, run, closers=[close]))
