"""Builds the policy core's `Policy` value from the operator's settings (the shell's side of the seam)."""

from __future__ import annotations

from config import Settings
from config.collection_points import CollectionPoint
from sync_worker.policy import Point, Policy


def to_point(point: CollectionPoint) -> Point:
    return Point(
        purposes=tuple(point.purposes),
        wording=point.wording,
        notice_version=point.notice_version,
        language=point.language,
        prechecked=point.prechecked,
        bundled=point.bundled,
        was_required=point.was_required,
        double_opt_in=point.double_opt_in,
        authenticated=point.authenticated,
        since=point.since,
    )


def policy_from_settings(settings: Settings) -> Policy:
    rules = settings.policy
    return Policy(
        purposes=tuple(rules.purposes),
        min_evidence=rules.min_evidence,
        soft_opt_in_months=rules.soft_opt_in_months,
        related_categories=tuple((k, tuple(v)) for k, v in sorted(rules.related_categories.items())),
        pending_expiry_days=rules.pending_expiry_days,
        skew_window_seconds=rules.skew_window_seconds,
        minor_age=rules.minor_age,
        purpose_versions=tuple(sorted(rules.purpose_versions.items())),
        material_changes=tuple((k, tuple(v)) for k, v in sorted(rules.material_changes.items())),
        collection_points=tuple(
            (name, to_point(p)) for name, p in sorted(settings.collection_points.items())
        ),
        controller=settings.controller,
    )


def secret_of(settings: Settings) -> bytes | None:
    key = settings.secret_key.get_secret_value() if settings.secret_key else ""
    return key.encode("utf-8") if key else None
