"""Shopify Admin API settings (env prefix ``SYNC_SHOPIFY__``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from config.vendor import VendorSettings


class ShopifySettings(VendorSettings):
    name: ClassVar[str] = "shopify"
    title: ClassVar[str] = "Shopify"
    kind: ClassVar[str] = "webshop"
    shop: str | None = None  # e.g. "my-shop.myshopify.com"
    access_token: SecretStr | None = None
    api_version: str = "2026-01"
    base_url: str | None = None  # default https://{shop}/admin/api/{api_version}
    # R3: when the checkout's marketing box is pre-selected, checkout consent is invalid.
    checkout_preselected: bool = False
    # purpose → customer tag that marks membership in Shopify.
    purposes: dict[str, str] = Field(default_factory=lambda: {"newsletter": "consent"})
    # Order line "product_type"/tags → product category used for soft opt-in (R12c); identity if absent.
    category_map: dict[str, str] = Field(default_factory=dict)
    webhook_secret: SecretStr | None = None  # the app's client secret, for X-Shopify-Hmac-Sha256

    required: ClassVar[tuple[str, ...]] = ("shop", "access_token")
    read_as: ClassVar[tuple[str, ...]] = ("shop", "purposes", "category_map", "checkout_preselected")

    def effective_base_url(self) -> str | None:
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://{self.shop}/admin/api/{self.api_version}" if self.shop else None
