"""HubSpot API settings (env prefix ``SYNC_HUBSPOT__``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from config.vendor import VendorSettings


class HubSpotSettings(VendorSettings):
    name: ClassVar[str] = "hubspot"
    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"
    # purpose → subscription type id (communication preferences API).
    subscriptions: dict[str, str] = Field(default_factory=dict)
    client_secret: SecretStr | None = None  # for X-HubSpot-Signature-v3 on webhooks

    required: ClassVar[tuple[str, ...]] = ("access_token",)

    def effective_base_url(self) -> str | None:
        return self.base_url.rstrip("/")
