"""What every connector's from_settings shares: the vendor's settings section, the clock, the base URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from config.hubspot import HubSpotSettings
from config.mailchimp import MailchimpSettings
from config.settings import Settings
from config.shopify import ShopifySettings
from connectors.assembly import configured_base_url, now_of, vendor_section
from connectors.sandbox import Clock

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def test_clock_may_be_a_clock_object_or_a_callable() -> None:
    clock = Clock(T0)
    by_object = now_of(clock)
    assert by_object is not None
    assert by_object() == T0
    clock.advance(60)
    assert by_object() == T0 + timedelta(seconds=60)  # follows the clock, not a copy of its time
    later = datetime(2025, 1, 1, tzinfo=UTC)
    by_callable = now_of(lambda: later)
    assert by_callable is not None
    assert by_callable() == later
    assert now_of(None) is None


def test_vendor_section_is_picked_from_root_settings_or_taken_as_given() -> None:
    root = Settings(hubspot=HubSpotSettings(base_url="https://hub.test/"))
    assert vendor_section(root, HubSpotSettings) is root.hubspot
    alone = HubSpotSettings()
    assert vendor_section(alone, HubSpotSettings) is alone
    with pytest.raises(TypeError, match="expected Settings or HubSpotSettings, got ShopifySettings"):
        vendor_section(ShopifySettings(), HubSpotSettings)


def test_unconfigured_vendor_names_the_variables_to_set() -> None:
    with pytest.raises(ValueError, match="shopify is not configured: set SYNC_SHOPIFY__ACCESS_TOKEN"):
        configured_base_url(ShopifySettings(shop="s.myshopify.com"))
    # All variables set, but the key carries no data center: no base URL follows from it.
    keyless = MailchimpSettings(api_key="abc", list_id="L1")
    with pytest.raises(ValueError, match="mailchimp is not configured: set a valid API key"):
        configured_base_url(keyless, otherwise="a valid API key")
    ready = MailchimpSettings(api_key="abc-us14", list_id="L1")
    assert configured_base_url(ready) == "https://us14.api.mailchimp.com/3.0"
