"""A person is their normalised e-mail address (DESIGN.md §2)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from sync_worker.identity import InvalidEmailError, keyed_hash, mask_email, normalise_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jan.Jansen@Example.COM ", "jan.jansen@example.com"),
        ("piet@bücher.de", "piet@xn--bcher-kva.de"),
        ("a+tag@b.nl.", "a+tag@b.nl"),
    ],
)
def test_normalise_email(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "no-at-sign", "a@@b.nl", "@b.nl", "a@", "a b@c.nl", "a@localhost"])
def test_invalid_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidEmailError):
        normalise_email(raw)


def test_mask_keeps_first_letter_and_domain() -> None:
    assert mask_email("jan@example.com") == "j***@example.com"


def test_keyed_hash_depends_on_the_secret() -> None:
    assert keyed_hash(b"k1", "a@b.nl") != keyed_hash(b"k2", "a@b.nl")
    assert keyed_hash(b"k1", "a@b.nl") == keyed_hash(b"k1", "a@b.nl")
    assert "a@b.nl" not in keyed_hash(b"k1", "a@b.nl")


def test_keyed_hash_is_hmac_sha256_in_hex_so_stored_suppressions_keep_matching() -> None:
    expected = hmac.new(b"k1", b"a@b.nl", hashlib.sha256).hexdigest()
    assert keyed_hash(b"k1", "a@b.nl") == expected
