"""The cyclic garbage collector's set-up for planning: the sync-worker command and each planning process."""

from __future__ import annotations

import gc


def tune_collector() -> None:
    """Set the cyclic garbage collector up for planning, once at start-up.

    First, move everything alive after start-up (modules, classes, settings: about 100,000 objects) out of
    its reach. They live as long as the process anyway, and otherwise every full collection walks them
    again: planning a million people triggers thousands of those collections, which cost a third of its
    time (docs/benchmarks.md, Scale 1).

    Then collect the youngest generation only after 50,000 net new objects instead of CPython's 700. A
    chunk of 1,000 people being planned holds some tens of thousands (facts, decisions, the snapshot's rows,
    the changes) for its whole pass, so at 700 the collector walked them again and again: about a tenth of
    a full planning pass. Garbage cycles wait a little longer for it (a few MB at most); nothing else
    changes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


YOUNG_THRESHOLD = 50_000
