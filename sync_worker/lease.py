"""Per-connector leases: exactly one replica syncs a connector at a time.

On PostgreSQL a lease is a session-level advisory lock held on a connection of its own: if the process
dies (even kill -9) the server ends the session and the lock is free for another replica, with no expiry
to tune. On SQLite, which one process owns by design, a process-local lock is enough.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from sync_worker.logs import get_logger

NAMESPACE = "sync-worker:lease:"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_*_advisory_lock`` (same in every replica and every version)."""
    digest = hashlib.sha256((NAMESPACE + name).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Lease:
    """A held lease; ``release`` is idempotent, and leaving a ``with`` block releases it."""

    def __init__(self, name: str, release: Callable[[], None]) -> None:
        self.name = name
        self._release: Callable[[], None] | None = release

    @property
    def held(self) -> bool:
        return self._release is not None

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


class Leases(Protocol):
    def try_acquire(self, name: str) -> Lease | None: ...

    def acquire(self, name: str, timeout: float) -> Lease | None: ...


class AdvisoryLeases:
    """PostgreSQL session-level advisory locks, one checked-out connection per held lease."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.log = get_logger(component="lease")

    def try_acquire(self, name: str) -> Lease | None:
        return self._take(name, "SELECT pg_try_advisory_lock(:key)", None)

    def acquire(self, name: str, timeout: float) -> Lease | None:
        """Wait up to ``timeout`` seconds for the lease (the server waits; no polling)."""
        return self._take(name, "SELECT pg_advisory_lock(:key)", timeout)

    def _take(self, name: str, sql: str, timeout: float | None) -> Lease | None:
        key = lock_key(name)
        connection = self.engine.connect()
        try:
            if timeout is not None:
                # SET LOCAL ends with the transaction; the session-level lock outlives it.
                connection.execute(text(f"SET LOCAL lock_timeout = '{int(timeout * 1000)}ms'"))
            result = connection.execute(text(sql), {"key": key}).scalar_one()
            # pg_advisory_lock returns void once it holds the lock; pg_try_advisory_lock says true/false.
            got = timeout is not None or bool(result)
            connection.commit()
        except DBAPIError as error:
            connection.close()
            if timeout is not None and getattr(error.orig, "sqlstate", None) == "55P03":
                return None  # lock_timeout: another replica still holds it
            raise
        if not got:
            connection.close()
            return None
        return Lease(name, lambda: self._release(connection, key, name))

    def _release(self, connection: Connection, key: int, name: str) -> None:
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()
            connection.close()
        except SQLAlchemyError as error:
            # The session is suspect: drop it rather than return it to the pool, which frees the lock too.
            self.log.warning("lease.release_failed", lease=name, error=repr(error))
            connection.invalidate()
            connection.close()


class LocalLeases:
    """Process-local locks, for SQLite (one process owns the ledger file)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def try_acquire(self, name: str) -> Lease | None:
        lock = self._lock(name)
        return Lease(name, lock.release) if lock.acquire(blocking=False) else None

    def acquire(self, name: str, timeout: float) -> Lease | None:
        lock = self._lock(name)
        return Lease(name, lock.release) if lock.acquire(timeout=timeout) else None


def build_leases(engine: Engine) -> AdvisoryLeases | LocalLeases:
    return AdvisoryLeases(engine) if engine.dialect.name == "postgresql" else LocalLeases()
