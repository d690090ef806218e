"""Change counts of a sandbox's records, and its list queries' results kept while nothing changed.

A pull asks a vendor for the same filtered, sorted list page after page. A vendor answers each page from
its indexes; a sandbox that filtered and sorted every record it holds for every page would make reading
a list of n records cost n squared. So a sandbox keeps a query's filtered and sorted result
(``Queries``) and serves the following pages from it, until anything in its store changes.

No code path can change a record without the count seeing it: records are ``Tracked`` (every
attribute assignment counts), and every dict or list they hold, or that is assigned to them, becomes a
``TrackedDict``/``TrackedList`` (every in-place change counts, nested ones too). Values of other types
held by records must be immutable (str, numbers, datetimes, tuples of those).
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
    if isinstance(value, TrackedDict | TrackedList) and value.changes is changes:
        return value
    if isinstance(value, dict):
        return TrackedDict(changes, value)
    if isinstance(value, list):
        return TrackedList(changes, value)
    return value


class TrackedDict(dict[Any, Any]):
    __slots__ = ("changes",)

    def __init__(self, changes: Changes, items: Iterable[Any] | dict[Any, Any] = ()) -> None:
        super().__init__()
        self.changes = changes
        self.update(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.changes.bump()
        super().__setitem__(key, tracked(value, self.changes))

    def __delitem__(self, key: Any) -> None:
        self.changes.bump()
        super().__delitem__(key)

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

    def pop(self, *args: Any) -> Any:
        self.changes.bump()
        return super().pop(*args)

    def popitem(self) -> tuple[Any, Any]:
        self.changes.bump()
        return super().popitem()

    def clear(self) -> None:
        self.changes.bump()
        super().clear()


class TrackedList(list[Any]):
    __slots__ = ("changes",)

    def __init__(self, changes: Changes, items: Iterable[Any] = ()) -> None:
        super().__init__(tracked(item, changes) for item in items)
        self.changes = changes

    def _changed(self) -> None:
        self.changes.bump()

    def __setitem__(self, index: Any, value: Any) -> None:
        self._changed()
        if isinstance(index, slice):
            super().__setitem__(index, [tracked(v, self.changes) for v in value])
        else:
            super().__setitem__(index, tracked(value, self.changes))

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        self._changed()
        super().__delitem__(index)

    def __iadd__(self, other: Iterable[Any]) -> TrackedList:  # type: ignore[misc]
        self.extend(other)
        return self

    def __imul__(self, times: SupportsIndex) -> TrackedList:
        self._changed()
        super().__imul__(times)
        return self

    def append(self, value: Any) -> None:
        self._changed()
        super().append(tracked(value, self.changes))

    def extend(self, values: Iterable[Any]) -> None:
        self._changed()
        super().extend(tracked(v, self.changes) for v in values)

    def insert(self, index: SupportsIndex, value: Any) -> None:
        self._changed()
        super().insert(index, tracked(value, self.changes))

    def pop(self, index: SupportsIndex = -1) -> Any:
        self._changed()
        return super().pop(index)

    def remove(self, value: Any) -> None:
        self._changed()
        super().remove(value)

    def clear(self) -> None:
        self._changed()
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        self._changed()
        super().reverse()


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
    store next changes; a few at a time (each may hold every record)."""

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
            result: T = self._results[key]
            return result
        result = compute()
        if self._seen != self.changes.count:  # computing it changed the store: do not keep it
            return result
        if len(self._results) >= self.keep:
            del self._results[next(iter(self._results))]
        self._results[key] = result
        return result
