"""The root Settings model and its loader."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.collection_points import CollectionPoint, default_catalog
from config.errors import SettingsError
from config.hubspot import HubSpotSettings
from config.klaviyo import KlaviyoSettings
from config.mailchimp import MailchimpSettings
from config.policy import PolicySettings
from config.shopify import ShopifySettings
from config.vendor import VendorSettings


class ScheduleSettings(BaseModel):
    interval_seconds: int | None = Field(default=900, ge=10)
    cron: str | None = None  # five-field crontab; wins over interval_seconds when set
    # /readyz fails when the last run is older than this; default: three scheduled periods.
    max_run_age_seconds: int | None = Field(default=None, ge=1)

    @field_validator("cron")
    @classmethod
    def _cron_has_five_fields(cls, cron: str | None) -> str | None:
        if cron is not None and len(cron.split()) != 5:
            raise ValueError("cron must have five fields, e.g. '*/15 * * * *'")
        return cron


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port (tests)
    # The URL vendors call, when a proxy sits in front (HubSpot signs the full URL it called).
    public_url: str | None = None
    # SIGTERM: how long a run in flight may finish before it is abandoned (the outbox makes that safe).
    shutdown_grace_seconds: float = Field(default=20, ge=0)
    webhook_max_age_seconds: int = Field(default=300, ge=1)  # HubSpot's and Klaviyo's replay window


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SYNC_",
        env_nested_delimiter="__",
        env_file=None,
        extra="ignore",
        secrets_dir=None,
    )

    database_url: str = "sqlite:///data/sync-worker.db"
    secret_key: SecretStr | None = None
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_show_emails: bool = False  # e-mail addresses are masked in logs unless the operator opts in
    controller: str = ""  # legal entity that collects consent (R5, Art. 30 export)
    # Processes a long planning pass may use; None: the CPUs the worker may run on, within its CPU limit.
    plan_processes: int | None = Field(default=None, ge=1)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    collection_points: dict[str, CollectionPoint] = Field(default_factory=default_catalog)
    mailchimp: MailchimpSettings = Field(default_factory=MailchimpSettings)
    shopify: ShopifySettings = Field(default_factory=ShopifySettings)
    klaviyo: KlaviyoSettings = Field(default_factory=KlaviyoSettings)
    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)

    def vendors(self) -> dict[str, VendorSettings]:
        return {
            "mailchimp": self.mailchimp,
            "shopify": self.shopify,
            "klaviyo": self.klaviyo,
            "hubspot": self.hubspot,
        }

    def enabled_vendors(self) -> list[str]:
        return [name for name, vendor in self.vendors().items() if vendor.enabled()]

    def sqlite_path(self) -> Path | None:
        prefix = "sqlite:///"
        return Path(self.database_url[len(prefix) :]) if self.database_url.startswith(prefix) else None


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (prefix SYNC_, nested "__"); errors name the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError.from_validation_error(error) from None
