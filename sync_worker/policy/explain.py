"""Why a decision came out as it did: the decision with the events and purchases it rests on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sync_worker.policy.decide import decide_all
from sync_worker.policy.evidence import effective_evidence, grade
from sync_worker.policy.facts import (
    ConsentFact,
    Decision,
    Evidence,
    EvidenceLevel,
    PersonFacts,
    Policy,
    PurchaseFact,
)


@dataclass(frozen=True)
class CitedEvent:
    fact: ConsentFact
    level: EvidenceLevel | None  # grants only
    evidence: Evidence  # with the collection point's declared evidence filled in


@dataclass(frozen=True)
class Explanation:
    decision: Decision
    events: tuple[CitedEvent, ...]
    purchases: tuple[PurchaseFact, ...]


def explain(facts: PersonFacts, policy: Policy, now: datetime) -> tuple[Explanation, ...]:
    """One explanation per purpose of the policy, in the policy's purpose order."""
    by_id = {e.event_id: e for e in facts.events}
    purchases = {p.event_id: p for p in facts.purchases}
    result = []
    for decision in decide_all(facts, policy, now):
        cited = tuple(
            CitedEvent(
                fact,
                grade(fact, policy) if fact.action == "grant" else None,
                effective_evidence(fact, policy),
            )
            for fact in (by_id[i] for i in decision.event_ids if i in by_id)
        )
        bought = tuple(purchases[i] for i in decision.purchase_ids if i in purchases)
        result.append(Explanation(decision, cited, bought))
    return tuple(result)
