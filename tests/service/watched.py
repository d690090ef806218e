"""A worker process under test: its JSON log lines are read as they come, with deadlines, never sleeps."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

STOP_WITHIN = 15.0  # seconds from SIGTERM to exit, with a generous margin for a loaded CI machine


class Watched:
    def __init__(self, argv: list[str], tmp_path: Path, **env: str) -> None:
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SYNC_")},
            "SYNC_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.db",
            "SYNC_HTTP__PORT": "0",
            "SYNC_SCHEDULE__INTERVAL_SECONDS": "3600",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env
        )
        self.seen: list[dict[str, Any]] = []
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.selector.register(self.process.stdout, selectors.EVENT_READ)

    def _next_line(self, deadline: float) -> str | None:
        # Raw reads with our own buffer: a buffered readline would hide lines from select().
        assert self.process.stdout is not None
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                return None
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    def expect(self, event: str | tuple[str, ...], timeout: float = 60, **fields: Any) -> dict[str, Any]:
        """The next output line with this event, or one of these (and these fields); fails after
        ``timeout`` seconds."""
        events = (event,) if isinstance(event, str) else event
        deadline = time.monotonic() + timeout
        while (line := self._next_line(deadline)) is not None:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # e.g. uvicorn's own plain-text lines
            self.seen.append(record)
            if record.get("event") in events and all(record.get(k) == v for k, v in fields.items()):
                return record
        raise AssertionError(
            f"no {event} {fields} within {timeout} s; saw {[r.get('event') for r in self.seen]}"
        )

    def stop(self) -> int:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=STOP_WITHIN)
        assert time.monotonic() - started < STOP_WITHIN
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.selector.close()
        assert self.process.stdout is not None
        self.process.stdout.close()
