"""Building frozen dataclass values cheaply where millions are built (the policy core, planning, the
snapshot, the ledger's facts). Pure, like the rest of the policy package, so the core may use it too.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (its own ``__setattr__``
refuses): about three times the cost of plain assignment, paid for every field of every value. A full
planning pass at 1M people builds some 10 million such values. ``draft_of(cls)`` is a class with the same
memory layout as ``cls`` (the same slots, or an instance dict) whose attributes are set plainly; a builder
fills one in and then turns it into a ``cls`` (``retype``): one guarded step per value instead of one per
field. The result is an ordinary, frozen ``cls`` value, equal to the one its constructor builds
(tests/unit/test_frozen_builders.py holds every builder to that, field by field). Give such a class slots:
a retyped value with an instance dict reads its attributes more slowly than one its constructor built.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def draft_of(cls: type) -> Any:
    """A mutable class laid out like the frozen dataclass ``cls`` (which must derive from ``object`` only)."""
    if not is_dataclass(cls) or cls.__bases__ != (object,):
        raise TypeError(f"{cls!r} is not a dataclass derived from object alone")
    namespace: dict[str, Any] = {"__doc__": f"A {cls.__name__} being built (sync_worker.policy.frozen)."}
    if "__slots__" in cls.__dict__:
        namespace["__slots__"] = cls.__dict__["__slots__"]
    return type(f"{cls.__name__}Draft", (), namespace)


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


_set_class = object.__setattr__


def retype(draft: Any, cls: type[T]) -> T:
    """The filled-in ``draft`` as a ``cls`` value (the layouts match, so Python allows the class change)."""
    _set_class(draft, "__class__", cls)
    result: T = draft
    return result
