"""The policy core stays pure: no I/O libraries, no logging, no clock (DESIGN.md §5)."""

from __future__ import annotations

import ast
from pathlib import Path

import sync_worker.policy

FORBIDDEN_MODULES = {
    "httpx",
    "sqlmodel",
    "sqlalchemy",
    "logging",
    "structlog",
    "time",
    "os",
    "socket",
    "random",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time"}
SOURCES = sorted(Path(sync_worker.policy.__file__).parent.glob("*.py"))


def test_policy_package_has_modules() -> None:
    assert len(SOURCES) >= 5


def test_policy_imports_no_io_logging_or_clock() -> None:
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.module and not node.module.startswith("sync_worker.policy"):
                    assert not node.module.startswith("sync_worker"), (
                        f"{path.name} imports the shell: {node.module}"
                    )
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"


def test_policy_never_reads_the_clock() -> None:
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in FORBIDDEN_CALLS, (
                    f"{path.name}:{node.lineno} calls .{node.func.attr}()"
                )
