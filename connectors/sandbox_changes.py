"""Change counts of a sandbox's records, and its list queries' results kept while nothing changed.

A pull asks a vendor for the same filtered, sorted list page after page. A vendor answers each page from
its indexes; a sandbox that filtered and sorted every record it holds for every page would make reading
a list of n records cost n squared. So a sandbox keeps a query's filtered and sorted result
(``Queries``) and serves the following pages from it, until anything in its store changes.

No code path can change a record without the count seeing it: records are ``Tracked`` (every
attribute assignment counts), and every dict, list or set they hold, or that is assigned to them,
becomes a ``TrackedDict``/``TrackedList``/``TrackedSet`` (every in-place change counts, nested ones too).
Other values held by records are immutable (str, numbers, datetimes, tuples of those) or are not what a
query reads (a store's clock, its purpose map).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, ClassVar, Generic, SupportsIndex, TypeVar

T = TypeVar("T")


class Changes:
    """How many changes a store has seen; only its growth matters."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def bump(self) -> None:
        self.count += 1


def tracked(value: Any, changes: Changes) -> Any:
    """``value``, with every dict and list in it (at any depth) counting its changes in ``changes``."""
    if isinstance(value, TrackedDict | TrackedList | TrackedSet) and value.changes is changes:
        return value
    if isinstance(value, dict):
        return TrackedDict(changes, value)
    if isinstance(value, list):
        return TrackedList(changes, value)
    if isinstance(value, set):
        return TrackedSet(changes, value)
    return value


def _counting(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of a built-in container, counting a change first (for those that take no new values,
    which need no tracking of their own)."""

    def counted(self: TrackedDict | TrackedList | TrackedSet, *args: Any, **kwargs: Any) -> Any:
        self.changes.bump()
        return method(self, *args, **kwargs)

    return counted


class TrackedDict(dict[Any, Any]):
    __slots__ = ("changes",)

    def __init__(self, changes: Changes, items: Iterable[Any] | dict[Any, Any] = ()) -> None:
        super().__init__()
        self.changes = changes
        self.update(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.changes.bump()
        super().__setitem__(key, tracked(value, self.changes))

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[misc]
        self.update(other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    __delitem__ = _counting(dict.__delitem__)
    pop = _counting(dict.pop)
    popitem = _counting(dict.popitem)
    clear = _counting(dict.clear)


class TrackedList(list[Any]):
    __slots__ = ("changes",)

    def __init__(self, changes: Changes, items: Iterable[Any] = ()) -> None:
        super().__init__(tracked(item, changes) for item in items)
        self.changes = changes

    def __setitem__(self, index: Any, value: Any) -> None:
        self.changes.bump()
        if isinstance(index, slice):
            super().__setitem__(index, [tracked(v, self.changes) for v in value])
        else:
            super().__setitem__(index, tracked(value, self.changes))

    def __iadd__(self, other: Iterable[Any]) -> TrackedList:  # type: ignore[misc]
        self.extend(other)
        return self

    def append(self, value: Any) -> None:
        self.changes.bump()
        super().append(tracked(value, self.changes))

    def extend(self, values: Iterable[Any]) -> None:
        self.changes.bump()
        super().extend(tracked(v, self.changes) for v in values)

    def insert(self, index: SupportsIndex, value: Any) -> None:
        self.changes.bump()
        super().insert(index, tracked(value, self.changes))

    __delitem__ = _counting(list.__delitem__)
    __imul__ = _counting(list.__imul__)
    pop = _counting(list.pop)
    remove = _counting(list.remove)
    clear = _counting(list.clear)
    sort = _counting(list.sort)
    reverse = _counting(list.reverse)


class TrackedSet(set[Any]):
    """Its elements are hashable values (strings, numbers, tuples): only the set itself needs counting."""

    __slots__ = ("changes",)

    def __init__(self, changes: Changes, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        self.changes = changes

    add = _counting(set.add)
    discard = _counting(set.discard)
    remove = _counting(set.remove)
    pop = _counting(set.pop)
    clear = _counting(set.clear)
    update = _counting(set.update)
    difference_update = _counting(set.difference_update)
    intersection_update = _counting(set.intersection_update)
    symmetric_difference_update = _counting(set.symmetric_difference_update)
    __ior__ = _counting(set.__ior__)
    __iand__ = _counting(set.__iand__)
    __isub__ = _counting(set.__isub__)
    __ixor__ = _counting(set.__ixor__)


class Tracked:
    """A sandbox record or store: every attribute assignment counts as a change of its store's ``changes``,
    and dicts and lists assigned to it count their own changes there too."""

    changes: ClassVar[Changes]

    def __setattr__(self, name: str, value: Any) -> None:
        self.changes.bump()
        object.__setattr__(self, name, tracked(value, self.changes))


class TrackedAttribute(Generic[T]):
    """One attribute of an object that is not ``Tracked`` whole (a sandbox with request logs and rate
    windows besides its records): assigning it, or changing the dicts and lists in it, counts."""

    def __init__(self, changes: Changes) -> None:
        self.changes = changes
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, instance: object, owner: type | None = None) -> T:
        value: T = getattr(instance, self.slot)
        return value

    def __set__(self, instance: object, value: T) -> None:
        self.changes.bump()
        setattr(instance, self.slot, tracked(value, self.changes))


class Queries:
    """A sandbox's list query results (by a key naming everything the result depends on), kept until its
    store next changes; a few at a time (each may hold every record), the least recently used dropped
    first (one-off lookups between a list's pages do not push the list out)."""

    def __init__(self, changes: Changes, keep: int = 4) -> None:
        self.changes = changes
        self.keep = keep
        self._seen = changes.count
        self._results: dict[Hashable, Any] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        if self._seen != self.changes.count:
            self._results.clear()
            self._seen = self.changes.count
        if key in self._results:
            result: T = self._results.pop(key)
            self._results[key] = result  # now the most recently used
            return result
        result = compute()
        if self._seen != self.changes.count:  # computing it changed the store: do not keep it
            return result
        if len(self._results) >= self.keep:
            del self._results[next(iter(self._results))]
        self._results[key] = result
        return result
