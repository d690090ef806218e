"""The four vendor sandboxes and the worker's settings for them, shared by the scale benchmarks."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Sequence

import httpx

from benchmarks.population import CATALOG, RELATED
from config import Settings
from connectors.registry import VENDORS, sandbox_class
from connectors.sandbox import Sandbox
from sync_worker.demo import purposes_of, settings_for


def sandboxes() -> list[Sandbox]:
    return [sandbox_class(name)() for name in VENDORS]


def settings(boxes: Sequence[Sandbox], database_url: str) -> Settings:
    """Settings pointing at each sandbox by name (in process, the host is never resolved)."""
    env = {
        "SYNC_COLLECTION_POINTS": json.dumps(CATALOG),
        "SYNC_POLICY__RELATED_CATEGORIES": json.dumps(RELATED),
    }
    for box in boxes:
        env.update(box.settings_env(f"http://{box.name}.sandbox"))
    return settings_for(env, database_url)


def transports(boxes: Sequence[Sandbox]) -> dict[str, httpx.AsyncBaseTransport]:
    return {box.name: httpx.ASGITransport(app=box.app) for box in boxes}


def purposes_by_system(boxes: Sequence[Sandbox]) -> dict[str, list[str]]:
    return {box.name: purposes_of(box) for box in boxes}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def largest_rss_mib() -> float:
    """The largest peak RSS of this process and its finished children (a pool's processes, once joined)."""
    return max(peak_rss_mib(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (a pool is joined when its pass ends)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{platform.machine()}, nproc {os.cpu_count()}, load average {load}, Python {platform.python_version()}"
