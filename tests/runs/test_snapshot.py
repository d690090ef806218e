"""The runner's snapshot: what load_seen reads back is what save_seen stored, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import JSON, DateTime, Engine, column, select, table

from connectors.base import GlobalState, Status
from sync_worker import db, snapshot
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


def test_people_showing_the_same_statuses_share_one_mapping_nobody_can_change(engine: Engine) -> None:
    with engine.begin() as conn:
        snapshot.save_seen(conn, "klaviyo", {"a@example.nl": PIET, "b@example.nl": PIET}, NOW)
        seen = snapshot.load_seen(conn, ["a@example.nl", "b@example.nl"])
    first, second = seen["a@example.nl"]["klaviyo"].statuses, seen["b@example.nl"]["klaviyo"].statuses
    assert first is second
    with pytest.raises(TypeError):
        first["newsletter"] = Status.SUBSCRIBED  # type: ignore[index]
    assert second == {"newsletter": Status.UNSUBSCRIBED}


def test_saving_again_replaces_what_a_system_showed(engine: Engine) -> None:
    with engine.begin() as conn:
        snapshot.save_seen(conn, "klaviyo", {"jan@example.nl": JAN}, NOW)
        snapshot.save_seen(conn, "klaviyo", {"jan@example.nl": PIET}, NOW)
        assert snapshot.load_seen(conn, ["jan@example.nl"]) == {"jan@example.nl": {"klaviyo": PIET}}


def test_upgrade_packs_each_system_and_person_into_one_row_and_downgrade_unpacks(database_url: str) -> None:
    """Migration 0006 keeps every snapshot the runner had, in both directions."""
    engine = db.make_engine(database_url)
    db.upgrade(engine, "0004")
    old = table(
        "observed_state",
        *(column(name) for name in ("system", "email", "slot", "value", "external_id", "dirty")),
        column("tags", JSON()),
        column("observed_at", DateTime(timezone=True)),
    )
    base = {"email": "jan@example.nl", "observed_at": NOW}
    rows = [
        {**base, "system": "klaviyo", "slot": "*", "value": "active", "external_id": "k-1",
         "tags": ["vip"], "dirty": False},
        {**base, "system": "klaviyo", "slot": "newsletter", "value": "subscribed", "external_id": "k-1",
         "tags": None, "dirty": True},
        {**base, "system": "klaviyo", "slot": "events", "value": "pending", "external_id": "k-1",
         "tags": None, "dirty": False},
        {**base, "system": "mailchimp", "slot": "*", "value": "complained", "external_id": None,
         "tags": [], "dirty": False},
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(old.insert(), rows)
    db.upgrade(engine)
    with engine.begin() as conn:
        assert snapshot.load_seen(conn, ["jan@example.nl"]) == {
            "jan@example.nl": {
                "klaviyo": Seen(
                    "k-1",
                    {"events": Status.PENDING, "newsletter": Status.SUBSCRIBED},
                    GlobalState.ACTIVE,
                    frozenset({"vip"}),
                ),
                "mailchimp": Seen(None, {}, GlobalState.COMPLAINED),
            }
        }
        assert snapshot.next_people(conn, "", dirty_only=True, limit=10) == ["jan@example.nl"]
    command.downgrade(db.alembic_config(engine), "0004")
    with engine.begin() as conn:
        back = conn.execute(select(old.c.system, old.c.slot, old.c.value, old.c.tags)).all()
    engine.dispose()
    assert sorted(back, key=str) == sorted(
        [
            ("klaviyo", "*", "active", ["vip"]),
            ("klaviyo", "events", "pending", None),
            ("klaviyo", "newsletter", "subscribed", None),
            ("mailchimp", "*", "complained", []),
        ],
        key=str,
    )
