"""A bad line of an input file (ledger import, sandbox seed): which line, which field, what is wrong.

Readers report it and go on with the next line, so one bad record never stops a file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"
