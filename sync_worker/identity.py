"""Who a person is: the normalised e-mail address (DESIGN.md §2), and how it is masked and hashed."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

import idna


class InvalidEmailError(ValueError):
    """An address that cannot be normalised; the message says what is wrong."""


def normalise_email(raw: str) -> str:
    """Trim, lower-case both parts (as every ESP here does) and IDNA-encode the domain."""
    address = raw.strip()
    if address.count("@") != 1:
        raise InvalidEmailError("must contain exactly one '@'")
    local, domain = address.split("@")
    if not local or not domain:
        raise InvalidEmailError("local part and domain must both be present")
    if any(c.isspace() for c in address):
        raise InvalidEmailError("must not contain white space")
    domain = domain.rstrip(".").lower()
    try:
        ascii_domain = domain if domain.isascii() else idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise InvalidEmailError(f"domain is not a valid IDNA name: {error}") from error
    if "." not in ascii_domain:
        raise InvalidEmailError("domain must contain a dot")
    return f"{local.lower()}@{ascii_domain}"


def mask_email(address: str) -> str:
    """``jan@example.com`` → ``j***@example.com``: enough for an operator, not for a mailing list."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def keyed_hash(secret: bytes, normalised_address: str) -> str:
    """HMAC-SHA256 of the normalised address: a plain hash would still be personal data (R21)."""
    # Computed for every address of a planning chunk when suppressions exist: a copy of the state already
    # keyed with the secret costs about a quarter less than keying a new one for each address.
    keyed = _keyed(secret).copy()
    keyed.update(normalised_address.encode("utf-8"))
    return keyed.hexdigest()


@lru_cache(maxsize=4)
def _keyed(secret: bytes) -> hmac.HMAC:
    return hmac.new(secret, digestmod=hashlib.sha256)
