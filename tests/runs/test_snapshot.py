"""The runner's snapshot: what load_seen reads back is what save_seen stored, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from connectors.base import GlobalState, Status
from sync_worker import snapshot
from sync_worker.observe import Seen

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
JAN = Seen(
    "k-1",
    {"newsletter": Status.SUBSCRIBED, "events": Status.PENDING},
    GlobalState.ACTIVE,
    frozenset({"vip", "sync-worker:re-permission"}),
)
PIET = Seen(None, {"newsletter": Status.UNSUBSCRIBED}, GlobalState.COMPLAINED)


def test_load_seen_reads_back_every_slot_state_and_tag(engine: Engine) -> None:
    with engine.begin() as conn:
        snapshot.save_seen(conn, "klaviyo", {"jan@example.nl": JAN, "piet@example.nl": PIET}, NOW)
        snapshot.save_seen(conn, "mailchimp", {"jan@example.nl": Seen("m-1", {}, GlobalState.BOUNCED)}, NOW)
    with engine.begin() as conn:
        seen = snapshot.load_seen(conn, ["jan@example.nl", "piet@example.nl", "nobody@example.nl"])
        only = snapshot.load_seen(conn, ["jan@example.nl"], "mailchimp")
    assert seen == {
        "jan@example.nl": {"klaviyo": JAN, "mailchimp": Seen("m-1", {}, GlobalState.BOUNCED)},
        "piet@example.nl": {"klaviyo": PIET},
    }
    assert only == {"jan@example.nl": {"mailchimp": Seen("m-1", {}, GlobalState.BOUNCED)}}
    assert all(type(s) is Status for s in seen["jan@example.nl"]["klaviyo"].statuses.values())


def test_saving_again_replaces_what_a_system_showed(engine: Engine) -> None:
    with engine.begin() as conn:
        snapshot.save_seen(conn, "klaviyo", {"jan@example.nl": JAN}, NOW)
        snapshot.save_seen(conn, "klaviyo", {"jan@example.nl": PIET}, NOW)
        assert snapshot.load_seen(conn, ["jan@example.nl"]) == {"jan@example.nl": {"klaviyo": PIET}}
