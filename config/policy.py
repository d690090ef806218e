"""Rule parameters of the consent policy (RULES.md); every field names the rule it tunes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

DEFAULT_PURPOSES = ("newsletter", "promotions", "events", "lead_magnet")


class PolicySettings(BaseModel):
    purposes: list[str] = Field(default_factory=lambda: list(DEFAULT_PURPOSES))
    # R5 / product decision: does an `attested` grant suffice, or only `proven`?
    min_evidence: Literal["attested", "proven"] = "attested"
    # R14: soft opt-in lapses this long after the last paid purchase; hard cap 36.
    soft_opt_in_months: int = Field(default=24, ge=1, le=36)
    # R12(c): bought category -> categories that count as "similar" for promotions.
    related_categories: dict[str, list[str]] = Field(default_factory=dict)
    # R6: a double opt-in grant still pending after this many days lapses.
    pending_expiry_days: int = Field(default=30, ge=1)
    # R30: events of different systems this close together are treated as ties.
    skew_window_seconds: int = Field(default=300, ge=0)
    # R11: below this age a grant needs parental consent; Art. 8 GDPR lets member states pick 13 to 16.
    minor_age: int = Field(default=16, ge=13, le=16)
    # R33: unused consent expires; must stay below 17 months.
    consent_idle_expiry_months: int = Field(default=12, ge=1, le=16)
    # R34: reconfirmation of consents in continuous use.
    consent_refresh_months: int = Field(default=24, ge=1)
    # R35: how long evidence is kept after the grant is no longer relied on.
    evidence_retention_years: int = Field(default=5, ge=1)
    # R10: current version per purpose, and versions that were a material change.
    purpose_versions: dict[str, str] = Field(default_factory=dict)
    material_changes: dict[str, list[str]] = Field(default_factory=dict)
    # R36: the purpose's description in the Art. 30 export; built-in texts cover the default purposes.
    purpose_texts: dict[str, str] = Field(default_factory=dict)

    @field_validator("purpose_texts")
    @classmethod
    def _texts_describe_configured_purposes(
        cls, texts: dict[str, str], info: ValidationInfo
    ) -> dict[str, str]:
        # ``purposes`` is declared first, so it is validated (or has failed) by now.
        purposes = info.data.get("purposes")
        if purposes is None:
            return texts
        for purpose, text in texts.items():
            if purpose not in purposes:
                raise ValueError(
                    f"{purpose!r} is not a configured purpose (SYNC_POLICY__PURPOSES: {purposes})"
                )
            if not text.strip():
                raise ValueError(f"{purpose!r}: the text is empty")
        return texts
