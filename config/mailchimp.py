"""Mailchimp Marketing API v3 settings (env prefix ``SYNC_MAILCHIMP__``)."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from config.vendor import VendorSettings


class MailchimpSettings(VendorSettings):
    name: ClassVar[str] = "mailchimp"
    title: ClassVar[str] = "Mailchimp"
    kind: ClassVar[str] = "ESP"
    api_key: SecretStr | None = None
    list_id: str | None = None
    # Derived from the key's data-center suffix (``…-us14`` → https://us14.api.mailchimp.com/3.0).
    base_url: str | None = None
    # purpose → "interest:<id>", "tag:<name>" or "permission:<marketing_permission_id>".
    purposes: dict[str, str] = Field(default_factory=lambda: {"newsletter": "status"})
    # Collection point assumed for members whose signup form is not otherwise known.
    collection_point: str | None = "mailchimp:signup-form"
    # Members per GET (Mailchimp's `count`, at most 1000).
    page_size: int = Field(default=1000, ge=1, le=1000)
    # Mailchimp signs nothing: the webhook URL carries this secret (VENDOR-APIS 1.6).
    webhook_secret: SecretStr | None = None

    @field_validator("purposes")
    @classmethod
    def _purposes_name_a_construct(cls, purposes: dict[str, str]) -> dict[str, str]:
        for purpose, spec in purposes.items():
            if not re.fullmatch(r"status|(interest|tag|permission):\S.*", spec):
                raise ValueError(
                    f"{purpose}: {spec!r} is not 'status', 'interest:<id>', 'tag:<name>' or 'permission:<id>'"
                )
        return purposes

    required: ClassVar[tuple[str, ...]] = ("api_key", "list_id")
    read_as: ClassVar[tuple[str, ...]] = ("list_id", "purposes", "collection_point")

    def effective_base_url(self) -> str | None:
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.api_key is None:
            return None
        parts = self.api_key.get_secret_value().split("-")
        return f"https://{parts[1]}.api.mailchimp.com/3.0" if len(parts) == 2 else None
