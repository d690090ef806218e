"""Seed data for any vendor's sandbox: the built-in demo people, or a JSONL file of contacts.

A seed line is ``{"email": ..., "statuses": {"newsletter": "subscribed"}, ...vendor extras}``; the extras
go to the sandbox's ``add_contact`` as keyword arguments (e.g. Mailchimp's ``source`` or ``status``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.base import Status
from connectors.sandbox import Sandbox
from sync_worker.line_error import LineError

PURPOSES = ("newsletter", "promotions", "events", "lead_magnet")
FIRST_NAMES = (
    "anna",
    "bram",
    "chloe",
    "daan",
    "emma",
    "finn",
    "iris",
    "jesse",
    "lotte",
    "milan",
    "noor",
    "sem",
)


@dataclass(frozen=True)
class SeedContact:
    email: str
    statuses: dict[str, Status]
    extras: dict[str, Any] = field(default_factory=dict)


def demo_people(count: int = 36) -> list[SeedContact]:
    """A few dozen people in every state a purpose can be in, the same on every run."""
    cycle = (Status.SUBSCRIBED, Status.SUBSCRIBED, Status.NOT_SUBSCRIBED, Status.UNSUBSCRIBED, Status.PENDING)
    people = []
    for i in range(count):
        name = f"{FIRST_NAMES[i % len(FIRST_NAMES)]}.{i:02d}@example.nl"
        statuses = {purpose: cycle[(i + k * 2) % len(cycle)] for k, purpose in enumerate(PURPOSES)}
        people.append(SeedContact(name, statuses))
    return people


def read_seed_file(path: Path) -> tuple[list[SeedContact], list[LineError]]:
    """Contacts from a JSONL file; a bad line is reported with its number and field, the rest still load."""
    contacts: list[SeedContact] = []
    errors: list[LineError] = []
    for number, line in _lines(path):
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            errors.append(LineError(number, "(line)", f"not JSON: {error.msg}"))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("email"), str):
            errors.append(LineError(number, "email", "missing or not a string"))
            continue
        raw = data.pop("statuses", {})
        if not isinstance(raw, dict):
            errors.append(LineError(number, "statuses", "not an object of purpose -> status"))
            continue
        try:
            statuses = {str(purpose): Status(value) for purpose, value in raw.items()}
        except ValueError:
            errors.append(LineError(number, "statuses", f"values must be one of {[s.value for s in Status]}"))
            continue
        contacts.append(SeedContact(data.pop("email"), statuses, data))
    return contacts, errors


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def seed(sandbox: Sandbox, contacts: list[SeedContact]) -> list[str]:
    """Adds each contact; returns the problems of those the sandbox refused, the others still load."""
    problems = []
    for contact in contacts:
        try:
            sandbox.add_contact(contact.email, contact.statuses, **contact.extras)
        except (ValueError, TypeError, KeyError) as error:
            problems.append(f"{contact.email}: {error}")
    return problems
