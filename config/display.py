"""How the commands show settings: every secret masked, a database URL without its password, and the
problems an operator should hear about. ``config check`` and the Art. 30 export (R36) share it."""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

from config.settings import Settings

MASK = "********"
# The user part of a URL as SQLAlchemy reads it (``make_url``): the password runs up to the first "@", so
# it may hold "?", "#" or "/" unescaped, and only that "@" ends it.
USER_PART = re.compile(r"(?P<user>[^:/]*)(?::(?P<password>[^@]*))?@")


def masked(value: Any) -> Any:
    """``value`` (a dump of settings) with every secret replaced by MASK (an unset one by "")."""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def masked_url(url: str) -> str:
    """A database URL with its password masked, in the user part or as a query parameter (libpq and
    psycopg take ``?password=``): postgresql://user:pw@host/db -> postgresql://user:********@host/db."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    head = ""
    user = USER_PART.match(rest)
    if user is not None:
        head = f"{user['user']}:{MASK}@" if user["password"] is not None else user.group(0)
        rest = rest[user.end() :]
    base, question, query = rest.partition("?")
    if question:
        query = "&".join(_masked_parameter(part) for part in query.split("&"))
    return f"{scheme}://{head}{base}{question}{query}"


def _masked_parameter(part: str) -> str:
    name, equals, _ = part.partition("=")
    return f"{name}={MASK}" if equals and "password" in name.lower() else part


def problems(settings: Settings) -> list[str]:
    """What an operator should fix although the settings are valid."""
    return (
        []
        if settings.secret_key
        else ["SYNC_SECRET_KEY is not set: needed for keyed-hash suppressions (R21)"]
    )
