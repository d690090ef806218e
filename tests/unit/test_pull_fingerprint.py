"""The pull fingerprint: a digest of the settings that decide what a vendor's pulls read (the purpose mapping
and its kin), equal across processes, blind to tuning and secrets, and stated by every connector."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from pydantic import SecretStr

from config import Settings
from config.hubspot import HubSpotSettings
from config.klaviyo import KlaviyoSettings
from config.mailchimp import MailchimpSettings
from config.shopify import ShopifySettings
from config.vendor import VendorSettings
from connectors.registry import VENDORS, connector_class

CONFIGURED: dict[str, VendorSettings] = {
    "mailchimp": MailchimpSettings(api_key=SecretStr("0123abcd-us14"), list_id="a1b2c3"),
    "shopify": ShopifySettings(shop="my-shop.myshopify.com", access_token=SecretStr("shpat_secret")),
    "klaviyo": KlaviyoSettings(api_key=SecretStr("pk_secret"), lists={"promotions": "PrOm01"}),
    "hubspot": HubSpotSettings(access_token=SecretStr("pat-secret"), subscriptions={"newsletter": "123"}),
}
# What each vendor's fingerprint leaves out: tuning, the address of the same account, secrets. A new
# setting fails this test until it is put on one side or the other (``read_as``).
LEFT_OUT = {
    "mailchimp": {"api_key", "base_url", "page_size", "webhook_secret"},
    "shopify": {"access_token", "api_version", "base_url", "webhook_secret"},
    "klaviyo": {
        "api_key", "base_url", "revision", "page_size", "webhook_secret", "webhook_signed_content",
        "webhook_signature_encoding",
    },
    "hubspot": {
        "access_token", "base_url", "client_secret", "legal_basis_explanation", "requests_per_10s",
        "searches_per_second", "max_concurrency", "list_page_size", "search_page_size", "batch_size",
        "batch_statuses",
    },
}  # fmt: skip
# One mapping change per vendor, of the kind an operator makes.
REMAPPED: dict[str, dict[str, Any]] = {
    "mailchimp": {"purposes": {"newsletter": "status", "promotions": "interest:9143cf3bd1"}},
    "shopify": {"purposes": {"newsletter": "consent", "events": "events"}},
    "klaviyo": {"lists": {"promotions": "PrOm01", "events": "EvNt02"}},
    "hubspot": {"subscriptions": {"newsletter": "123", "promotions": "456"}},
}


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_setting_is_either_read_as_or_left_out_and_no_secret_is_read_as(vendor: str) -> None:
    model = type(CONFIGURED[vendor])
    assert set(model.model_fields) == {*model.read_as, *LEFT_OUT[vendor]}
    assert not set(model.read_as) & LEFT_OUT[vendor]
    assert all(not isinstance(getattr(CONFIGURED[vendor], f), SecretStr) for f in model.read_as)


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_mapping_change_changes_the_fingerprint_and_tuning_or_a_new_key_does_not(vendor: str) -> None:
    settings = CONFIGURED[vendor]
    before = settings.pull_fingerprint()
    assert settings.model_copy(update=REMAPPED[vendor]).pull_fingerprint() != before
    tuned = {field: getattr(settings, field) for field in LEFT_OUT[vendor]}
    for field, value in tuned.items():
        if isinstance(value, SecretStr):
            tuned[field] = SecretStr("rotated-" + value.get_secret_value())
        elif field == "base_url":
            tuned[field] = "https://proxy.example.com"
    assert settings.model_copy(update=tuned).pull_fingerprint() == before


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_fingerprint_holds_no_secret_and_not_the_settings_themselves(vendor: str) -> None:
    settings = CONFIGURED[vendor]
    fingerprint = settings.pull_fingerprint()
    assert fingerprint.startswith("sha256:")
    assert len(fingerprint) == len("sha256:") + 64
    secrets = [v.get_secret_value() for v in vars(settings).values() if isinstance(v, SecretStr)]
    assert secrets
    assert not any(secret in fingerprint for secret in secrets)


def test_a_secret_named_as_read_as_is_refused() -> None:
    class Careless(KlaviyoSettings):
        read_as = ("lists", "api_key")

    with pytest.raises(TypeError, match=r"klaviyo\.api_key is a secret"):
        Careless(api_key=SecretStr("pk_secret")).pull_fingerprint()


def test_the_fingerprint_is_the_same_in_another_process() -> None:
    """Stored by one run and compared by the next: no per-process hashing (str hash seeds) may enter."""
    code = (
        "from pydantic import SecretStr; from config.klaviyo import KlaviyoSettings; "
        "print(KlaviyoSettings(api_key=SecretStr('pk_secret'), lists={'promotions': 'PrOm01'}).pull_fingerprint())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == CONFIGURED["klaviyo"].pull_fingerprint()


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_connector_states_its_settings_fingerprint(vendor: str) -> None:
    settings = CONFIGURED[vendor]
    connector = connector_class(vendor).from_settings(Settings(**{vendor: settings}))
    try:
        assert connector.capabilities().pull_fingerprint == settings.pull_fingerprint()
    finally:
        asyncio.run(connector.aclose())
