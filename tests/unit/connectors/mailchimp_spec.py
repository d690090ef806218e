"""Mailchimp's official OpenAPI spec (../shared/specs), read at test time to check shapes against it.

The spec is not part of the repository: tests that need it skip with a reason when it is absent.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).parents[3]
SPEC_NAME = Path("shared") / "specs" / "mailchimp" / "marketing-3.0.55.openapi.json"
# The repository's sibling ../shared; a git worktree one level deeper (wt/<branch>) also looks one up.
CANDIDATES = (ROOT / ".." / SPEC_NAME, ROOT / ".." / ".." / SPEC_NAME)


SKIP_REASON = f"Mailchimp spec not found at {CANDIDATES[0].resolve()}: shape checks against it are skipped"


def spec_path() -> Path | None:
    return next((path for path in CANDIDATES if path.is_file()), None)


@functools.cache
def spec() -> dict[str, Any]:
    path = spec_path()
    if path is None:
        pytest.skip(SKIP_REASON)
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def response_schema(path: str, method: str, status: str = "200") -> dict[str, Any]:
    operation = spec()["paths"][path][method]
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema


def request_schema(path: str, method: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec()["paths"][path][method]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    return schema


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Validate like an OpenAPI 3.0 consumer: JSON Schema draft 4 keywords, formats not enforced."""
    jsonschema.Draft4Validator(schema).validate(instance)
