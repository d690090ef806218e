"""The pure consent policy core (RULES.md Part B): no I/O, no clock, no logging; ``now`` is passed in."""

from sync_worker.policy.decide import decide, decide_all
from sync_worker.policy.downstream import downstream_status
from sync_worker.policy.evidence import effective_evidence, grade
from sync_worker.policy.explain import CitedEvent, Explanation, explain
from sync_worker.policy.facts import (
    ALL_PURPOSES,
    ConsentFact,
    Decision,
    Evidence,
    PersonFacts,
    Point,
    Policy,
    PurchaseFact,
)
from sync_worker.policy.grants import event_time

__all__ = [
    "ALL_PURPOSES",
    "CitedEvent",
    "ConsentFact",
    "Decision",
    "Evidence",
    "Explanation",
    "PersonFacts",
    "Point",
    "Policy",
    "PurchaseFact",
    "decide",
    "decide_all",
    "downstream_status",
    "effective_evidence",
    "event_time",
    "explain",
    "grade",
]
