"""Klaviyo REST API settings (env prefix ``SYNC_KLAVIYO__``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from config.vendor import VendorSettings


class KlaviyoSettings(VendorSettings):
    name: ClassVar[str] = "klaviyo"
    title: ClassVar[str] = "Klaviyo"
    kind: ClassVar[str] = "ESP"
    api_key: SecretStr | None = None
    base_url: str = "https://a.klaviyo.com"
    revision: str = "2026-07-15"
    # purpose → list id; the account-wide email consent stands for the purposes in `consent_purposes`.
    lists: dict[str, str] = Field(default_factory=dict)
    consent_purposes: list[str] = Field(default_factory=lambda: ["newsletter"])
    # A Klaviyo UNSUBSCRIBE suppression is account-wide. True: read it as "stop all marketing" (R17);
    # False: read it as a withdrawal of the consent purposes only (R16/R20).
    unsubscribe_is_objection: bool = True
    # Collection point assumed for subscribed profiles (a key of the collection-point catalog), if any.
    collection_point: str | None = None
    page_size: int = Field(default=100, ge=1, le=100)
    webhook_secret: SecretStr | None = None
    # How Klaviyo builds Klaviyo-Signature is UNCONFIRMED (VENDOR-APIS 2.6): both parts are settings.
    webhook_signed_content: Literal["body_timestamp", "timestamp_body"] = "body_timestamp"
    webhook_signature_encoding: Literal["hex", "base64"] = "hex"

    required: ClassVar[tuple[str, ...]] = ("api_key",)
    read_as: ClassVar[tuple[str, ...]] = (
        "lists",
        "consent_purposes",
        "unsubscribe_is_objection",
        "collection_point",
    )

    def effective_base_url(self) -> str | None:
        return self.base_url.rstrip("/")
