"""Every setting is documented: .env.example and the README table list exactly the variables of Settings.

The variables are found by walking the Settings model (nested models joined by ``__``), so a new field
without documentation, or documentation of a field that is gone, fails here.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
VARIABLE_LINE = re.compile(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
# Variables that are no worker setting but appear in the docs: the test switch and compose's own.
NOT_SETTINGS = {"SYNC_TEST_POSTGRES_URL", "POSTGRES_PASSWORD"}


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model behind ``Model`` or ``Model | None``; None for leaves (scalars, lists, dicts)."""
    candidates = (
        [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) in (Union, types.UnionType)
        else [annotation]
    )
    model = candidates[0] if len(candidates) == 1 else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def setting_variables(model: type[BaseModel] = Settings, prefix: str = "SYNC_") -> list[str]:
    names = []
    for field_name, field in model.model_fields.items():
        name = prefix + field_name.upper()
        inner = nested_model(field.annotation)
        names.extend(setting_variables(inner, name + "__") if inner else [name])
    return names


def env_example_entries() -> dict[str, tuple[str, str]]:
    """.env.example → {variable: (example value, the one-line explanation just above it)}."""
    entries = {}
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        found = VARIABLE_LINE.match(line)
        if not found:
            continue
        above = lines[number - 1] if number else ""
        problem = f".env.example line {number + 1}: {found.group(1)} needs a one-line explanation above it"
        assert above.startswith("# "), problem
        assert not VARIABLE_LINE.match(above), problem
        entries[found.group(1)] = (found.group(2), above[2:])
    return entries


def readme_row(name: str, example: str, explanation: str) -> str:
    return f"| `{name}` | {f'`{example}`' if example else ''} | {explanation} |"


def readme_variables() -> set[str]:
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", README.read_text(), flags=re.MULTILINE))


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    documented = set(env_example_entries()) - NOT_SETTINGS
    expected = set(setting_variables())
    assert sorted(expected - documented) == [], "settings missing from .env.example"
    assert sorted(documented - expected) == [], ".env.example documents variables that are no setting"


def test_readme_table_is_the_env_example_table() -> None:
    text = README.read_text()
    rows = [readme_row(name, *entry) for name, entry in env_example_entries().items()]
    missing = [row for row in rows if row not in text.splitlines()]
    assert missing == [], "README.md table lacks (or differs in) these rows:\n" + "\n".join(missing)
    assert readme_variables() == set(env_example_entries())


def test_every_example_value_is_accepted_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON-valued examples (dicts, lists) must parse, and every example must validate."""
    entries = env_example_entries()
    for name, (example, _) in entries.items():
        if name.startswith("SYNC_"):
            monkeypatch.setenv(name, example)
    settings = load_settings()
    assert settings.enabled_vendors() == ["mailchimp", "shopify", "klaviyo", "hubspot"]
    assert settings.mailchimp.purposes == {"newsletter": "status"}
    assert "shop:footer-form" in settings.collection_points


def test_docs_name_only_real_settings() -> None:
    """A SYNC_ name in the docs, Dockerfile or compose file is a setting, or a group of settings."""
    real = set(setting_variables()) | NOT_SETTINGS
    files = [README, ROOT / "Dockerfile", ROOT / "docker-compose.yml", *sorted((ROOT / "docs").glob("*.md"))]
    unknown = set()
    for path in files:
        for name in re.findall(r"\bSYNC_[A-Z][A-Z0-9_]*[A-Z0-9]", path.read_text()):
            if name not in real and not any(variable.startswith(name + "__") for variable in real):
                unknown.add(f"{path.name}: {name}")
    assert sorted(unknown) == []


def test_walk_finds_nested_and_json_valued_settings() -> None:
    names = setting_variables()
    assert "SYNC_HTTP__PORT" in names
    assert "SYNC_POLICY__SOFT_OPT_IN_MONTHS" in names
    assert "SYNC_MAILCHIMP__PURPOSES" in names  # a dict: one JSON-valued variable, not a group
    assert "SYNC_COLLECTION_POINTS" in names
    assert "SYNC_HTTP" not in names
