"""Each connector says in words where it keeps each purpose (the Art. 30 export, R36), for exactly the
purposes its Capabilities say it represents."""

from __future__ import annotations

import asyncio

import pytest

from config import Settings, load_settings
from connectors.registry import VENDORS, connector_class

CREDENTIALS = {
    "mailchimp": {"api_key": "key-us1", "list_id": "aud1"},
    "shopify": {"shop": "shop.example", "access_token": "shpat"},
    "klaviyo": {"api_key": "pk"},
    "hubspot": {"access_token": "pat"},
}
MAPPINGS = {
    "mailchimp": {
        "purposes": {
            "newsletter": "status",
            "promotions": "interest:9143cf",
            "events": "tag:events",
            "lead_magnet": "permission:p7",
        }
    },
    "shopify": {"purposes": {"newsletter": "consent", "promotions": "promo"}},
    "klaviyo": {
        "lists": {"newsletter": "NL1", "events": "EV1"},
        "consent_purposes": ["newsletter", "promotions"],
    },
    "hubspot": {"subscriptions": {"newsletter": "111", "events": "222"}},
}
EXPECTED = {
    "mailchimp": {
        "newsletter": "member status in audience aud1",
        "promotions": "interest (group) '9143cf' in audience aud1",
        "events": "tag 'events' in audience aud1",
        "lead_magnet": "marketing permission 'p7' in audience aud1",
    },
    "shopify": {
        "newsletter": "customer e-mail marketing consent in shop shop.example",
        "promotions": "customer tag 'promo' in shop shop.example",
    },
    "klaviyo": {
        "newsletter": "profile's e-mail marketing consent (account-wide) and list NL1",
        "promotions": "profile's e-mail marketing consent (account-wide)",
        "events": "list EV1",
    },
    "hubspot": {
        "newsletter": "subscription type 111 (communication preferences)",
        "events": "subscription type 222 (communication preferences)",
    },
}


def settings_for(name: str, mapped: bool) -> Settings:
    section = CREDENTIALS[name] | (MAPPINGS[name] if mapped else {})
    return load_settings(**{name: section})


@pytest.mark.parametrize("mapped", [False, True], ids=["default mapping", "custom mapping"])
@pytest.mark.parametrize("name", VENDORS)
def test_targets_cover_exactly_the_purposes_the_connector_represents(name: str, mapped: bool) -> None:
    settings = settings_for(name, mapped)
    cls = connector_class(name)
    connector = cls.from_settings(settings)
    try:
        assert set(cls.purpose_targets(settings)) == connector.capabilities().purposes
    finally:
        asyncio.run(connector.aclose())


@pytest.mark.parametrize("name", VENDORS)
def test_targets_name_the_vendor_construct(name: str) -> None:
    assert connector_class(name).purpose_targets(settings_for(name, mapped=True)) == EXPECTED[name]
