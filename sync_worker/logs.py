"""Structured logging: JSON lines off a terminal, readable console output on one.

Two processors guard every event: e-mail addresses are masked (unless the operator opts in) and
values under secret-looking keys are replaced, whatever a caller passes.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal

import structlog
from pydantic import SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

from sync_worker.identity import mask_email

# A domain without a dot counts too: an invalid address quoted in an error (``jan@localhost``) is still one.
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
SECRET_KEY_PATTERN = re.compile(
    r"(secret|token|password|api_?key|authorization|signature|hmac)", re.IGNORECASE
)
REDACTED = "[redacted]"


def mask_emails_in(text: str) -> str:
    """``text`` with every e-mail address in it masked (``j***@example.com``)."""
    return EMAIL_PATTERN.sub(lambda m: mask_email(m.group(0)), text)


def _clean(value: Any, mask: bool) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, str):
        return mask_emails_in(value) if mask else value
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_secret_key(k) else _clean(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_clean(v, mask) for v in value]
    return value


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and SECRET_KEY_PATTERN.search(key) is not None


def scrubber(show_emails: bool) -> Processor:
    """Processor that redacts secrets always, and masks e-mail addresses unless ``show_emails``."""

    def scrub(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        return {
            key: REDACTED if _is_secret_key(key) else _clean(value, not show_emails)
            for key, value in event_dict.items()
        }

    return scrub


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
    show_emails: bool = False,
    stream: Any = None,
) -> None:
    """Configure structlog once, from the composition root."""
    out = stream if stream is not None else sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrubber(show_emails),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound)
