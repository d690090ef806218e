"""The collector set-up of the sync-worker command (sync_worker.collector.tune_collector)."""

from __future__ import annotations

import gc

from sync_worker.collector import YOUNG_THRESHOLD, tune_collector


def test_start_up_objects_are_frozen_and_the_young_generation_is_collected_less_often() -> None:
    before = gc.get_threshold()  # another test may have run the command (and tuned it) in this process
    try:
        gc.set_threshold(700, *before[1:])  # CPython's default
        tune_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
