"""The fewest push requests each vendor's API allows for the changes a run enqueued (VENDOR-APIS.md).

``ceil(changes / batch_max)`` per system and action is too low wherever one request cannot carry any mix of
purposes and people; per vendor the shape of its write endpoints sets the floor:

- Mailchimp: status and interests of up to 500 members per batch call, one member body carrying all of a
  member's purposes (so distinct addresses count); a tag is a static segment, up to 500 addresses added
  and 500 removed per call and tag; GDPR marketing permissions exist only on the member itself (the
  batch call takes no ``marketing_permissions``), so one PATCH per member; erasure one call per member.
- Klaviyo: a subscribe job carries up to 1000 profiles for one list (or none) and is a historical import
  or not for all of them (``consented_at`` needs ``historical_import``), so one job per list and kind;
  unsubscribe jobs 100 profiles; list membership 1000 profiles per list and direction; one deletion
  request per profile.
- HubSpot: status writes for any subscriptions, 100 per batch; opt-outs of all email 100 per batch;
  GDPR delete one contact per call.
- Shopify: aliased mutations of any kind, as many per request as one query's 1000-point cost allows
  (76 consent updates of 13 points).
A lower bound still: it never counts a lookup or a retry.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from connectors.sandbox import Sandbox
from connectors.shopify.connector import ShopifyConnector
from sync_worker.outbox import DEFAULT_BATCH

Row = tuple[str, str, str, str, str]  # outbox item: system, email, slot, action, the Change as JSON
ERASE, TAG, UNTAG, SUBSCRIBE = "erase", "tag", "untag", "subscribe"


def _ceil(count: int, size: int) -> int:
    return math.ceil(count / size)


def mailchimp(rows: list[Row], box: Any) -> int:
    members: set[str] = set()
    permissions: set[str] = set()
    adds: dict[str, set[str]] = defaultdict(set)
    removes: dict[str, set[str]] = defaultdict(set)
    erasures = 0
    for _, email, slot, action, change in rows:
        if action == ERASE:
            erasures += 1
            continue
        if action in (TAG, UNTAG):
            (adds if action == TAG else removes)[json.loads(change)["tag"]].add(email)
            continue
        construct = box.purposes[slot]
        if construct.kind in ("status", "interest") or action == SUBSCRIBE:
            members.add(email)  # a subscribe of any purpose also sets the member subscribed
        if construct.kind == "tag":
            (adds if action == SUBSCRIBE else removes)[construct.ref].add(email)
        elif construct.kind == "permission":
            permissions.add(email)
    tags = sum(_ceil(max(len(adds[t]), len(removes[t])), 500) for t in {*adds, *removes})
    return _ceil(len(members), 500) + tags + len(permissions) + erasures


def klaviyo(rows: list[Row], box: Any) -> int:
    groups: Counter[tuple[str, ...]] = Counter()
    list_purposes = box.purposes.list_purposes()
    for _, _, slot, action, change in rows:
        if action == ERASE:
            groups[("erase", change)] += 1  # one per profile: a distinct key each
        elif slot in list_purposes:
            groups[("list", list_purposes[slot], action)] += 1
        elif action == SUBSCRIBE:
            historical = json.loads(change).get("consent_at") is not None
            groups[("subscribe", str(box.purposes.lists.get(slot)), str(historical))] += 1
        else:
            groups[("unsubscribe",)] += 1
    size = {"erase": 1, "list": 1000, "subscribe": 1000, "unsubscribe": 100}
    return sum(_ceil(count, size[key[0]]) for key, count in groups.items())


def hubspot(rows: list[Row], _box: Any) -> int:
    kinds = Counter(
        "erase" if r[3] == ERASE else "all" if json.loads(r[4]).get("purpose") is None else "status"
        for r in rows
    )
    return kinds["erase"] + _ceil(kinds["status"], 100) + _ceil(kinds["all"], 100)


def shopify(rows: list[Row], _box: Any) -> int:
    # Any mix of aliased mutations fits one document, up to one query's cost.
    return _ceil(len(rows), ShopifyConnector.batch_size)


def declared(rows: list[Row], batch_max: Mapping[str, int]) -> int:
    per_action = Counter(row[3] for row in rows)
    return sum(_ceil(count, batch_max.get(action, DEFAULT_BATCH)) for action, count in per_action.items())


def least_requests(
    rows: Iterable[Row], boxes: Iterable[Sandbox], batch_max: Mapping[str, Mapping[str, int]]
) -> tuple[dict[str, int], dict[str, int]]:
    """Per system: (the vendor-shaped minimum, the declared-batch formula ceil(changes / batch_max))."""
    by_system: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_system[row[0]].append(row)
    shaped = {"mailchimp": mailchimp, "klaviyo": klaviyo, "hubspot": hubspot, "shopify": shopify}
    least, formula = {}, {}
    for box in boxes:
        mine = by_system.get(box.name, [])
        formula[box.name] = declared(mine, batch_max[box.name])
        least[box.name] = shaped[box.name](mine, box) if box.name in shaped else formula[box.name]
    return least, formula
