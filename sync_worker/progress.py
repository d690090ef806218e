"""How far a run has got, as a small port: the runner reports pages pulled and batches pushed.

The runner calls a ``Progress`` and knows nothing of terminals; the CLI plugs in Rich bars
(``sync_worker.cli.progress_bars``) when stderr is a terminal, and everything else keeps the no-op.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def pulled_page(self, connector: str, stream: str, page: int, records: int) -> None:
        """Page ``page`` (1-based) of ``stream`` from ``connector`` is in the ledger, with ``records`` records."""

    def pushed_batch(self, connector: str, changes: int) -> None:
        """``connector`` answered one batch of ``changes`` changes (accepted or not)."""


class NoProgress:
    """The default: nobody is watching, so every event is dropped."""

    def pulled_page(self, connector: str, stream: str, page: int, records: int) -> None:  # noqa: ARG002
        return None

    def pushed_batch(self, connector: str, changes: int) -> None:  # noqa: ARG002
        return None
