"""Keyed-hash suppressions (R21, R22): checked before anything else; they hold no address."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, exists, select

from sync_worker.identity import keyed_hash
from sync_worker.ledger.bulk import select_in
from sync_worker.ledger.tables import SUPPRESSIONS


class MissingSecretKeyError(RuntimeError):
    """Suppressions are keyed hashes; without SYNC_SECRET_KEY they can be neither checked nor written."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"SYNC_SECRET_KEY is not set: it is needed to {what} (keyed-hash suppressions, R21)."
        )


def suppressed_emails(conn: Connection, emails: Iterable[str], secret: bytes | None) -> set[str]:
    """The addresses among ``emails`` whose keyed hash is suppressed: one query for the whole set."""
    # An empty list (the common case) needs neither the key nor an HMAC per address.
    if not conn.execute(select(exists().select_from(SUPPRESSIONS))).scalar():
        return set()
    if secret is None:
        raise MissingSecretKeyError("check the suppression list")
    by_hash = {keyed_hash(secret, email): email for email in emails}
    if not by_hash:
        return set()
    rows = select_in(conn, SUPPRESSIONS, ["keyed_hash"], "keyed_hash", list(by_hash))
    return {by_hash[digest] for (digest,) in rows}


def is_suppressed(conn: Connection, email: str, secret: bytes | None) -> bool:
    return email in suppressed_emails(conn, [email], secret)


def suppress(conn: Connection, email: str, secret: bytes | None, reason: str, now: datetime) -> str:
    """Add the address's keyed hash to the suppression list (idempotent); returns the hash."""
    if secret is None:
        raise MissingSecretKeyError("suppress an address")
    digest = keyed_hash(secret, email)
    if not conn.execute(select(exists().where(SUPPRESSIONS.c.keyed_hash == digest))).scalar():
        conn.execute(SUPPRESSIONS.insert().values(keyed_hash=digest, reason=reason, created_at=now))
    return digest
