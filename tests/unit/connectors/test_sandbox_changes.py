"""Every way of changing a sandbox's records counts as a change, so kept list answers are never stale."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from connectors.sandbox_changes import Changes, Queries, Tracked, TrackedAttribute, TrackedDict, TrackedList

CHANGES = Changes()


@dataclass
class Record(Tracked):
    changes: ClassVar[Changes] = CHANGES

    name: str
    tags: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)


def counts(change: Callable[[], object]) -> bool:
    before = CHANGES.count
    change()
    return CHANGES.count > before


@pytest.mark.parametrize(
    "change",
    [
        lambda r: setattr(r, "name", "other"),
        lambda r: r.tags.append("x"),
        lambda r: r.tags.extend(["x"]),
        lambda r: r.tags.insert(0, "x"),
        lambda r: r.tags.__setitem__(0, "x"),
        lambda r: r.tags.__setitem__(slice(0, 1), ["x", "y"]),
        lambda r: r.tags.__delitem__(0),
        lambda r: r.tags.pop(),
        lambda r: r.tags.remove("a"),
        lambda r: r.tags.clear(),
        lambda r: r.tags.sort(),
        lambda r: r.tags.sort(key=len, reverse=True),
        lambda r: r.tags.reverse(),
        lambda r: r.tags.__iadd__(["x"]),
        lambda r: r.tags.__imul__(2),
        lambda r: r.extra.__setitem__("k", 1),
        lambda r: r.extra.__delitem__("nested"),
        lambda r: r.extra.pop("nested"),
        lambda r: r.extra.popitem(),
        lambda r: r.extra.setdefault("new", 1),
        lambda r: r.extra.update(k=1),
        lambda r: r.extra.__ior__({"k": 1}),
        lambda r: r.extra.clear(),
        lambda r: r.extra["nested"].__setitem__("deep", 2),  # a dict inside a dict
        lambda r: r.extra["nested"]["list"].append(3),  # a list inside that
        lambda r: r.seen.add("x"),
        lambda r: r.seen.discard("s"),
        lambda r: r.seen.remove("s"),
        lambda r: r.seen.pop(),
        lambda r: r.seen.clear(),
        lambda r: r.seen.update({"x"}),
        lambda r: r.seen.difference_update({"s"}),
        lambda r: r.seen.intersection_update(set()),
        lambda r: r.seen.symmetric_difference_update({"x"}),
        lambda r: r.seen.__ior__({"x"}),
        lambda r: r.seen.__iand__(set()),
        lambda r: r.seen.__isub__({"s"}),
        lambda r: r.seen.__ixor__({"x"}),
    ],
)
def test_every_change_to_a_tracked_record_counts(change: Callable[[Record], object]) -> None:
    record = Record("a", ["b", "a"], {"nested": {"deep": 1, "list": [1]}}, {"s"})
    assert counts(lambda: change(record))


def test_containers_assigned_later_are_tracked_too() -> None:
    record = Record("a")
    plain: dict[str, Any] = {}
    record.extra = plain
    assert isinstance(record.extra, TrackedDict)
    assert counts(lambda: record.extra.__setitem__("inner", []))
    assert isinstance(record.extra["inner"], TrackedList)
    assert counts(lambda: record.extra["inner"].append({"x": 1}))
    assert counts(lambda: record.extra["inner"][0].__setitem__("x", 2))


def test_reading_and_a_setdefault_that_finds_its_key_do_not_count() -> None:
    record = Record("a", ["b"], {"k": 1})
    assert not counts(lambda: (record.name, list(record.tags), dict(record.extra), record.extra.get("k")))
    assert not counts(lambda: record.extra.setdefault("k", 2))
    assert record.extra == {"k": 1}
    assert record.tags == ["b"]


def test_a_kept_result_lasts_until_the_store_changes() -> None:
    queries = Queries(CHANGES)
    computed: list[int] = []

    def compute() -> int:
        computed.append(1)
        return len(computed)

    assert queries.get("q", compute) == 1
    assert queries.get("q", compute) == 1
    Record("new")  # creating a record is a change too
    assert queries.get("q", compute) == 2


def test_a_result_whose_computation_changed_the_store_is_not_kept() -> None:
    queries = Queries(CHANGES)
    record = Record("a")

    def compute() -> str:
        record.name += "!"
        return record.name

    assert queries.get("q", compute) == "a!"
    assert queries.get("q", compute) == "a!!"


def test_the_least_recently_used_result_goes_first() -> None:
    queries = Queries(CHANGES, keep=2)
    queries.get("list", lambda: "pages")
    queries.get("lookup 1", lambda: "one")
    assert queries.get("list", lambda: "again") == "pages"  # the list's next page
    queries.get("lookup 2", lambda: "two")  # pushes out lookup 1, not the list
    assert queries.get("list", lambda: "again") == "pages"
    assert queries.get("lookup 1", lambda: "again") == "again"


def test_only_a_few_results_are_kept() -> None:
    queries = Queries(CHANGES, keep=2)
    for key in ("a", "b", "c"):
        queries.get(key, lambda key=key: key)  # type: ignore[misc]
    assert queries.get("a", lambda: "again") == "again"
    assert queries.get("c", lambda: "again") == "c"


class Store:
    records = TrackedAttribute[dict[str, Record]](CHANGES)

    def __init__(self) -> None:
        self.records = {}
        self.log: list[str] = []  # not tracked: a request log is no change of the records


def test_a_tracked_attribute_counts_assignments_and_changes_inside_what_was_assigned() -> None:
    store = Store()
    assert counts(lambda: setattr(store, "records", {"a": Record("a")}))
    assert counts(lambda: store.records.__setitem__("b", Record("b")))
    assert counts(lambda: store.records.pop("a"))
    assert not counts(lambda: store.log.append("GET /"))
