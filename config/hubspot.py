"""HubSpot API settings (env prefix ``SYNC_HUBSPOT__``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from config.vendor import VendorSettings


class HubSpotSettings(VendorSettings):
    name: ClassVar[str] = "hubspot"
    title: ClassVar[str] = "HubSpot"
    kind: ClassVar[str] = "CRM"
    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"
    # purpose → subscription type id (communication preferences API), e.g. {"newsletter": "39644612"}.
    subscriptions: dict[str, str] = Field(default_factory=dict)
    client_secret: SecretStr | None = None  # for X-HubSpot-Signature-v3 on webhooks
    # Sent as legalBasisExplanation with every status write: the portal shows it on the contact.
    legal_basis_explanation: str = "Recorded by the consent sync worker from the consent ledger"
    # Private apps on Free/Starter: 100 requests per 10 s; Professional/Enterprise 190 (VENDOR-APIS 4.6).
    requests_per_10s: int = Field(default=100, ge=1)
    # CRM search is exempt from the 10-second limit but has its own per-second limit.
    searches_per_second: int = Field(default=4, ge=1)
    max_concurrency: int = Field(default=4, ge=1, le=20)
    list_page_size: int = Field(default=100, ge=1, le=100)
    search_page_size: int = Field(default=200, ge=1, le=200)
    # No documented maximum for the v4 status batches; CRM batches take 100, so we stay there.
    batch_size: int = Field(default=100, ge=1, le=100)
    # The batch status endpoints need Marketing Hub Enterprise. None: try them and fall back to one
    # request per contact on 403; False: never try; True: always batch (a 403 is then an error).
    batch_statuses: bool | None = None

    required: ClassVar[tuple[str, ...]] = ("access_token",)
    read_as: ClassVar[tuple[str, ...]] = ("subscriptions",)

    def effective_base_url(self) -> str | None:
        return self.base_url.rstrip("/")
