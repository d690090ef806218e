"""Records that enter the ledger: consent events, purchases and erasure requests (validated input).

The reconciliation runner builds them from vendor records; ``sync-worker import`` parses them from
JSONL or CSV. Validation errors name the field, so a bad line is reported and the run goes on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sync_worker.identity import normalise_email
from sync_worker.policy import ALL_PURPOSES, Evidence
from sync_worker.policy.facts import GLOBAL_ACTIONS

MAX_AGE = 130  # R11: a stated age above it is a typo


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str
    source: str = Field(min_length=1, max_length=64)
    source_event_id: str = Field(min_length=1, max_length=255)
    external_id: str | None = Field(default=None, max_length=255)  # the person's id in ``source``

    @field_validator("email")
    @classmethod
    def _normalise(cls, raw: str) -> str:
        return normalise_email(raw)

    @property
    def ref(self) -> str:
        return f"{self.source}:{self.source_event_id}"


class ConsentEventIn(Record):
    type: Literal["consent"] = "consent"
    purpose: str = Field(default=ALL_PURPOSES, min_length=1, max_length=64)
    action: Literal["grant", "confirm", "withdraw", "object", "complaint", "erasure"]
    occurred_at: AwareDatetime | None = None  # R31: a grant without it is unproven
    method: str = Field(default="", max_length=64)
    collection_point: str | None = Field(default=None, max_length=128)
    evidence: Evidence = Evidence()

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, moment: datetime | None) -> datetime | None:
        return _utc(moment)

    @field_validator("evidence", mode="before")
    @classmethod
    def _age_is_a_number(cls, evidence: Any) -> Any:
        # Validation would read JSON ``true`` as age 1 and void the grant for a typo (R11). A ValueError,
        # as pydantic reports it as a validation error of the field (a TypeError would escape).
        if isinstance(evidence, dict) and isinstance(evidence.get("age"), bool):
            raise ValueError(f"age must be a whole number of years, got {evidence['age']!r}")  # noqa: TRY004 (pydantic reports ValueError)
        return evidence

    @field_validator("evidence")
    @classmethod
    def _plausible_age(cls, evidence: Evidence, info: ValidationInfo) -> Evidence:
        # R11 reads these: a typo must be reported, not decide about a child.
        if evidence.age is not None and not 0 <= evidence.age <= MAX_AGE:
            raise ValueError(f"age must be 0 to {MAX_AGE}, got {evidence.age}")
        occurred = info.data.get("occurred_at")
        if evidence.birth_date is not None and occurred is not None and evidence.birth_date > occurred.date():
            raise ValueError(f"birth_date {evidence.birth_date} is after the event ({occurred.date()})")
        return evidence

    @model_validator(mode="before")
    @classmethod
    def _global_actions_cover_all(cls, data: Any) -> Any:
        # R17/R18/R21 stop all marketing whatever purpose the source named.
        if isinstance(data, dict) and data.get("action") in GLOBAL_ACTIONS:
            return {**data, "purpose": ALL_PURPOSES}
        return data


class PurchaseIn(Record):
    type: Literal["purchase"] = "purchase"
    occurred_at: AwareDatetime
    paid: bool
    order_id: str | None = Field(default=None, max_length=255)
    categories: list[str] = Field(default_factory=list)
    opt_out_offered: bool = True  # R12(b); set false when the checkout offered no opt-out
    opt_out_used: bool = False

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, moment: datetime) -> datetime:
        return moment.astimezone(UTC)


class ErasureIn(Record):
    type: Literal["erasure"] = "erasure"
    occurred_at: AwareDatetime | None = None
