"""Commands whose work belongs to an open issue: they say so and exit non-zero, never pretend."""

from __future__ import annotations

from collections.abc import Callable

import typer

OWNERS: dict[str, str] = {}


def _pending(name: str) -> Callable[[], None]:
    def command() -> None:
        typer.echo(f"sync-worker {name}: not implemented yet; it arrives with {OWNERS[name]}.", err=True)
        raise typer.Exit(3)

    command.__doc__ = f"Not implemented yet: arrives with {OWNERS[name]}."
    return command


def register(app: typer.Typer, names: list[str] | None = None) -> None:
    for name in names if names is not None else list(OWNERS):
        app.command(name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
            _pending(name)
        )
