"""Catalog of collection points: where and how consent is asked (RULES.md R2-R6, R37).

Events from a known collection point inherit its declared evidence, which is what lifts a vendor's bare
timestamp to an `attested` grant.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CollectionPoint(BaseModel):
    purposes: list[str]
    wording: str = ""
    notice_version: str = ""
    language: str = "nl"
    prechecked: bool = False  # R3: a pre-ticked box grants nothing
    bundled: bool = False  # R2: one tick for several purposes grants nothing
    was_required: bool = False  # R4: consent as condition for something else grants nothing
    double_opt_in: bool = False  # R6
    authenticated: bool = False  # R6: checkout / logged-in account may be single opt-in
    since: datetime | None = None


def default_catalog() -> dict[str, CollectionPoint]:
    """An empty catalog: nothing is attested until the operator declares how consent was asked."""
    return {}


class CollectionPointCatalog(BaseModel):
    points: dict[str, CollectionPoint] = Field(default_factory=default_catalog)
