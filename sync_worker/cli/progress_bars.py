"""Rich progress bars on stderr for a run on a terminal: one bar per connector for pulls and for pushes.

Totals are unknown ahead (vendors page by cursor, retries join the outbox), so each bar counts up
records pulled / changes pushed and pulses instead of filling.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


class ProgressBars(AbstractContextManager["ProgressBars"]):
    """The runner's ``Progress`` port drawn with Rich; use it as a context manager around the run."""

    def __init__(self, console: Console) -> None:
        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:>8.0f} {task.fields[unit]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[tuple[str, str], TaskID] = {}

    def _task(self, kind: str, connector: str, unit: str) -> TaskID:
        key = (kind, connector)
        if key not in self.tasks:
            self.tasks[key] = self.bars.add_task(f"{kind} {connector}", total=None, unit=unit)
        return self.tasks[key]

    def pulled_page(self, connector: str, stream: str, page: int, records: int) -> None:
        task = self._task("pull", connector, "records")
        self.bars.update(task, advance=records, description=f"pull {connector} {stream} page {page}")

    def pushed_batch(self, connector: str, changes: int) -> None:
        self.bars.update(self._task("push", connector, "changes"), advance=changes)

    def __enter__(self) -> ProgressBars:
        self.bars.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.bars.stop()
