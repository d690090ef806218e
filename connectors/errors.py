"""One error tree for every connector. Each client maps vendor responses onto it at exactly one place.

ConnectorError
 ├── AuthError            401/403: bad or missing credentials; never retried
 ├── NotFoundError        404: the list, audience or record does not exist
 ├── RejectedError        400/422: the vendor refused the payload; carries the vendor's reason
 ├── PaginationError      the vendor repeated a page token: stop instead of looping
 └── TransientError       5xx, time-outs, dropped connections: retried with backoff
      └── RateLimitedError   429: retried after the vendor's Retry-After
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every connector error; ``system`` names the vendor."""

    def __init__(self, system: str, message: str, *, status: int | None = None) -> None:
        self.system = system
        self.status = status
        super().__init__(f"{system}: {message}")


class AuthError(ConnectorError):
    pass


class NotFoundError(ConnectorError):
    pass


class RejectedError(ConnectorError):
    pass


class PaginationError(ConnectorError):
    pass


class TransientError(ConnectorError):
    pass


class RateLimitedError(TransientError):
    def __init__(
        self, system: str, message: str, *, retry_after: float | None = None, status: int = 429
    ) -> None:
        self.retry_after = retry_after
        super().__init__(system, message, status=status)


def error_for_status(
    system: str, status: int, message: str, retry_after: float | None = None
) -> ConnectorError | None:
    """The error an HTTP status means, or None for success. ``message`` is the vendor's own reason."""
    if status < 400:
        return None
    if status in (401, 403):
        return AuthError(system, message, status=status)
    if status == 404:
        return NotFoundError(system, message, status=status)
    if status == 429:
        return RateLimitedError(system, message, retry_after=retry_after)
    if status >= 500 or status == 408:
        return TransientError(system, message, status=status)
    return RejectedError(system, message, status=status)
