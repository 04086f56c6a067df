"""Back-testing a candidate policy: how would past returns have been routed under it?

Every assessment stores the facts its signals were computed from (console.risk.RiskFacts), so a
candidate's weights and thresholds are applied to exactly what was known at the bench — not to
today's database, where a customer's history has moved on. Routing is the whole question a
supervisor cares about: decided at the bench, sent to review (by score or by amount), or
proposed for denial. Assessments made before facts were stored are counted, not guessed.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.money import Money
from console.policy import Policy
from console.risk import RiskFacts, assess
from db.models import Decision, RiskAssessment

ROUTES = ("bench", "review", "suggest_deny")
_SETTLED = ("superseded", "conflict")


def route(facts: RiskFacts, policy: Policy) -> tuple[int, str]:
    """Score and route of one return under ``policy``: what the bench would have done."""
    assessment = assess(facts, policy.risk)
    if not facts.pays:
        return assessment.score, "bench"  # nothing is paid: no review, whatever the score
    limit = policy.review_amount(facts.currency)
    if assessment.outcome == "suggest_deny":
        return assessment.score, "suggest_deny"
    if assessment.outcome == "review" or (limit is not None and facts.refund_minor >= limit):
        return assessment.score, "review"
    return assessment.score, "bench"


@dataclass
class BacktestReport:
    candidate: str
    current: str
    days: int
    rescored: int = 0
    without_facts: int = 0
    changed: int = 0
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (from, to) -> currency -> refund minor units that would take the other route
    money: dict[tuple[str, str], dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "current": self.current, "days": self.days, "rescored": self.rescored,
                "without_facts": self.without_facts, "changed": self.changed,
                "moves": [{"from": a, "to": b, "returns": n, "refund_minor": dict(self.money[(a, b)])}
                          for (a, b), n in sorted(self.moves.items())],
                "examples": self.examples}

    def lines(self) -> list[str]:
        out = [f"Back-test of policy {self.candidate} against {self.current}, returns decided in the last "
               f"{self.days} days",
               f"Returns re-scored: {self.rescored:,}" + (f" ({self.without_facts:,} more were assessed before facts "
                                                          "were stored and are left out)" if self.without_facts else ""),
               f"Outcomes that would change: {self.changed:,}"]
        for (a, b), n in sorted(self.moves.items(), key=lambda kv: -kv[1]):
            money = ", ".join(str(Money(v, c)) for c, v in sorted(self.money[(a, b)].items())) or "no refund"
            out.append(f"  {_label(a)} → {_label(b)}: {n:,} returns ({money})")
        if self.examples:
            out.append("For example:")
            out += [f"  decision {e['decision']}: score {e['score_before']} → {e['score_after']}, "
                    f"{_label(e['from'])} → {_label(e['to'])}" for e in self.examples]
        return out


def _label(route_name: str) -> str:
    return {"bench": "decided at the bench", "review": "supervisor review",
            "suggest_deny": "proposed for denial"}[route_name]


def backtest(session: Session, current: Policy, candidate: Policy, days: int, now: datetime,
             *, examples: int = 5) -> BacktestReport:
    """Re-route every assessed decision of the last ``days`` days under ``candidate`` and compare
    with ``current`` (the policy the station runs now), both applied to the stored facts."""
    report = BacktestReport(candidate.version, current.version, days)
    since = now - timedelta(days=days)
    # Assessments from before 0008 name no decision and hold no facts.
    report.without_facts = session.scalar(select(func.count()).select_from(RiskAssessment).where(
        RiskAssessment.decision_id.is_(None), RiskAssessment.assessed_at >= since)) or 0
    rows = session.execute(
        select(RiskAssessment.facts, Decision.id).join(Decision, Decision.id == RiskAssessment.decision_id)
        .where(Decision.decided_at >= since, Decision.status.not_in(_SETTLED))
        .order_by(Decision.decided_at)).yield_per(2000)
    for raw, decision_id in rows:
        if not raw:
            report.without_facts += 1
            continue
        facts = RiskFacts.from_dict(raw)
        before_score, before = route(facts, current)
        after_score, after = route(facts, candidate)
        report.rescored += 1
        if before == after:
            continue
        report.changed += 1
        report.moves[(before, after)] += 1
        if facts.pays:
            report.money[(before, after)][facts.currency] += facts.refund_minor
        if len(report.examples) < examples:
            report.examples.append({"decision": str(decision_id), "score_before": before_score,
                                    "score_after": after_score, "from": before, "to": after})
    return report
