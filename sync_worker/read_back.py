"""Webhook facts that name a change without its state, answered by reading those people from the vendor.

HubSpot's event for one subscription's opt-out says which property changed, not the subscription's new
status, its time or its legal basis. Waiting for the scheduled pull would leave the person's opt-out
unpropagated for a whole period, so the targeted run reads just these people (``ReadsPeople``) and the
runner takes the answer like a pulled page: the same ``observe``, so a state we pushed that comes back is
an echo and never the person's act (R8), and a withdrawal always counts (R20).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from connectors.base import Connector, ContactRecord, Page, ReadsPeople
from sync_worker import snapshot
from sync_worker.logs import get_logger
from sync_worker.trigger import WebhookFact


@dataclass
class ReadBack:
    pages: list[tuple[str, Page]] = field(default_factory=list)  # (system, the people it read)
    rest: list[WebhookFact] = field(default_factory=list)  # facts for ``take_facts``
    failed: dict[str, str] = field(default_factory=dict)  # system -> why its read failed

    @property
    def emails(self) -> set[str]:
        return {r.email for _, page in self.pages for r in page.records if isinstance(r, ContactRecord)}


def people_to_read(
    conn: Connection, facts: Sequence[WebhookFact], readers: Mapping[str, ReadsPeople]
) -> tuple[dict[str, dict[str, str]], list[WebhookFact]]:
    """Per system: address -> vendor id of each known person a fact asks to read back; the other facts.

    A person no snapshot knows stays with the other facts: the scheduled pull reads them.
    """
    wanted: dict[str, dict[str, str]] = {}
    rest: list[WebhookFact] = []
    for fact in facts:
        if not fact.read_back or fact.system not in readers:
            rest.append(fact)
            continue
        email = fact.email or (
            snapshot.email_of(conn, fact.system, fact.external_id) if fact.external_id else None
        )
        vendor_id = fact.external_id or (_vendor_id(conn, fact.system, email) if email else None)
        if email is None or vendor_id is None:
            rest.append(fact)
            continue
        wanted.setdefault(fact.system, {})[email] = vendor_id
    return wanted, rest


def _vendor_id(conn: Connection, system: str, email: str) -> str | None:
    seen = snapshot.load_seen(conn, [email], system).get(email, {}).get(system)
    return seen.external_id if seen is not None else None


async def read_back(
    engine: Engine, connectors: Mapping[str, Connector], facts: Sequence[WebhookFact], run_id: str
) -> ReadBack:
    readers = {name: c for name, c in connectors.items() if isinstance(c, ReadsPeople)}
    with engine.begin() as conn:
        wanted, rest = people_to_read(conn, facts, readers)
    done = ReadBack(rest=rest)
    for name, people in sorted(wanted.items()):
        try:
            page = await readers[name].read_people(people)
        except Exception as error:  # one vendor failing leaves the rest of the run intact
            done.failed[name] = f"read back: {type(error).__name__}: {error}"
            get_logger(run_id=run_id, connector=name).warning(
                "read_back_failed", people=len(people), error=done.failed[name]
            )
            continue
        done.pages.append((name, page))
        get_logger(run_id=run_id, connector=name).info(
            "read_back", people=len(people), records=len(page.records), errors=len(page.errors)
        )
    return done
