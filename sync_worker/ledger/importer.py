"""Reading ledger records from JSONL or CSV (the ``sync-worker import`` format, see the README).

Each line becomes a record or an error naming the line and the field; reading goes on after a bad line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TextIO

from pydantic import Field, TypeAdapter, ValidationError

from sync_worker.ledger.records import ConsentEventIn, ErasureIn, PurchaseIn
from sync_worker.line_error import LineError

AnyRecord = Annotated[ConsentEventIn | PurchaseIn | ErasureIn, Field(discriminator="type")]
RECORD = TypeAdapter(AnyRecord)
Format = Literal["jsonl", "csv"]


@dataclass(frozen=True)
class Parsed:
    line: int
    record: ConsentEventIn | PurchaseIn | ErasureIn


def read_records(stream: TextIO, fmt: Format) -> Iterator[Parsed | LineError]:
    raw = _jsonl(stream) if fmt == "jsonl" else _csv(stream)
    for line, data in raw:
        if isinstance(data, LineError):
            yield data
            continue
        try:
            yield Parsed(line, RECORD.validate_python(data))
        except ValidationError as error:
            for problem in error.errors():
                # The first location item is the record type picked by the discriminator.
                location = problem["loc"][1:] if len(problem["loc"]) > 1 else problem["loc"]
                yield LineError(line, ".".join(str(part) for part in location) or "type", problem["msg"])
                break


def _jsonl(stream: TextIO) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    for number, text in enumerate(stream, 1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            yield number, LineError(number, "(line)", f"not valid JSON: {error.msg} at column {error.colno}")
            continue
        if not isinstance(data, dict):
            yield number, LineError(number, "(line)", "must be a JSON object")
            continue
        yield number, data


def _csv(stream: TextIO) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    reader = csv.DictReader(stream)
    for row in reader:
        number = reader.line_num
        data: dict[str, Any] = {}
        evidence: dict[str, Any] = {}
        try:
            for column, value in row.items():
                if column is None or value is None or value == "":
                    continue
                if column == "categories":
                    data[column] = [c.strip() for c in value.split(";") if c.strip()]
                elif column == "evidence":
                    evidence.update(json.loads(value))
                elif column.startswith("evidence."):
                    evidence[column.removeprefix("evidence.")] = value
                else:
                    data[column] = value
        except json.JSONDecodeError as error:
            yield number, LineError(number, "evidence", f"not valid JSON: {error.msg}")
            continue
        if evidence:
            data["evidence"] = evidence
        yield number, data
