"""Grant evidence as the ledger stores and hashes it (the ``evidence`` JSON column), and back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sync_worker.policy import Evidence


def stored_evidence(evidence: Evidence) -> dict[str, Any]:
    """The stated fields only, dates as ISO text.

    Unstated (None) fields are left out, so adding a field to Evidence changes no stored row's hash."""
    return {
        name: value.isoformat() if isinstance(value, date) else value
        for name, value in vars(evidence).items()
        if value is not None
    }


def evidence_of(stored: Mapping[str, Any] | None) -> Evidence:
    """``stored_evidence`` read back (JSON keeps the birth date as text)."""
    if not stored:
        return Evidence()
    born = stored.get("birth_date")
    if isinstance(born, str):
        return Evidence(**{**stored, "birth_date": date.fromisoformat(born)})
    return Evidence(**stored)
