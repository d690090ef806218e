"""``sync-worker health``: asks the running worker's ``/healthz`` endpoint; the container's HEALTHCHECK."""

from __future__ import annotations

import httpx
import typer

from config import load_settings

HEALTHY = 0
UNHEALTHY = 1


def check_health(port: int, timeout: float) -> tuple[bool, str]:
    """GET http://127.0.0.1:<port>/healthz; healthy exactly when it answers 200 within ``timeout``."""
    # Always loopback: the check runs inside the container next to the worker, whatever SYNC_HTTP__HOST binds.
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as error:
        return False, f"{url}: {type(error).__name__}: {error}"
    if response.status_code != 200:
        return False, f"{url}: HTTP {response.status_code}"
    return True, f"{url}: HTTP 200"


def health(
    timeout: float = typer.Option(3.0, "--timeout", min=0.1, help="Seconds to wait for the answer."),
) -> None:
    """Ask the worker on SYNC_HTTP__PORT for GET /healthz: exit 0 on HTTP 200, else 1 (the HEALTHCHECK)."""
    healthy, detail = check_health(load_settings().http.port, timeout)
    typer.echo(f"{'healthy' if healthy else 'unhealthy'}: {detail}", err=not healthy)
    raise typer.Exit(HEALTHY if healthy else UNHEALTHY)
