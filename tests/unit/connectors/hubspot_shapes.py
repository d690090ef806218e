"""Validate HubSpot JSON against the shapes of HubSpot's published OpenAPI specs.

The shapes live in tests/fixtures/hubspot/openapi_shapes.json (types, required fields and enums derived
from HubSpot/HubSpot-public-api-spec-collection; the spec files themselves may not be redistributed).
Objects are validated strictly: a property the spec does not name is an error, so the sandbox cannot drift
into fields HubSpot never sends.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SHAPES = Path(__file__).parents[2] / "fixtures" / "hubspot" / "openapi_shapes.json"


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _strict(value) for key, value in node.items()}
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(item) for item in node]
    return node


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value


FORMATS = jsonschema.FormatChecker()
FORMATS.checks("date-time", raises=ValueError)(_date_time)


@cache
def _documents() -> dict[str, Any]:
    return dict(json.loads(SHAPES.read_text()))


def validator(
    api: str, schema: str, *, strict: bool = True, relax: tuple[str, ...] = ()
) -> jsonschema.Validator:
    """A validator for ``#/components/schemas/<schema>`` of ``api`` ("contacts_v3" or "communication_preferences_v4").

    ``relax`` names ``Schema.property`` pairs whose shape is not checked (a documented deviation).
    """
    document = copy.deepcopy(_documents()[api])
    for pair in relax:
        name, _, prop = pair.partition(".")
        if name in document["components"]["schemas"]:
            document["components"]["schemas"][name]["properties"][prop] = {}
    if strict:
        document = _strict(document)
    root = {"$ref": f"#/components/schemas/{schema}", **document}
    return jsonschema.Draft202012Validator(root, format_checker=FORMATS)


def problems(api: str, schema: str, instance: Any, **options: Any) -> list[str]:
    """Every way ``instance`` departs from the spec's shape, as readable lines (empty when it conforms)."""
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator(api, schema, **options).iter_errors(instance)
    ]
