"""The one error raised for bad configuration: it names the env variable and what is expected."""

from __future__ import annotations

import re

from pydantic import ValidationError

ENV_PREFIX = "SYNC_"
NESTED_DELIMITER = "__"
SECRET_WORDS = re.compile("KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)


def env_name(loc: tuple[int | str, ...]) -> str:
    """Map a pydantic error location such as ``('http', 'port')`` to ``SYNC_HTTP__PORT``."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    # Errors inside a JSON-valued variable (a dict field) point below the variable itself.
    return ENV_PREFIX + NESTED_DELIMITER.join(parts[:2]).upper() if parts else ENV_PREFIX


class SettingsError(Exception):
    """Configuration that cannot be used; ``problems`` lists (env variable, what is expected)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"{name}: {message}" for name, message in problems]
        super().__init__("invalid configuration:\n  " + "\n  ".join(lines))

    @classmethod
    def from_validation_error(cls, error: ValidationError) -> SettingsError:
        problems = []
        for item in error.errors(include_url=False):
            name = env_name(item["loc"])
            given = item.get("input")
            # Never echo a secret's value back, only its length.
            if isinstance(given, dict | list) or given is None:
                shown = ""
            elif SECRET_WORDS.search(name):
                shown = f" (got a value of {len(str(given))} characters)"
            else:
                shown = f" (got {str(given)[:60]!r})"
            problems.append((name, f"{item['msg']}{shown}"))
        return cls(problems)
