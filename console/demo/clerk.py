"""`simulate clerk`: demo returns processed end to end through the same services the UI calls."""
from __future__ import annotations

import random
import statistics
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from console.deciding import DecideCommand, decide
from console.demo.data import parcel_contents, plan_scans
from console.disposition import dispose
from console.errors import DomainError
from console.inspection import inspect_item
from console.receiving import receive_parcel, scan_item
from console.station import Station
from db.models import ReturnAuthorization, ReturnItem

GRADE_MIX = [("A", 50), ("B", 30), ("C", 12), ("D", 6), ("F", 2)]


@dataclass
class ClerkSummary:
    requested: int
    processed: int = 0
    errors: list[str] = field(default_factory=list)
    scenarios: Counter[str] = field(default_factory=Counter)
    flagged_scans: Counter[str] = field(default_factory=Counter)
    weight_mismatches: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    dispositions: Counter[str] = field(default_factory=Counter)
    refunded_minor: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    per_return_ms: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        times = sorted(self.per_return_ms)
        return {
            "requested": self.requested, "processed": self.processed, "errors": self.errors[:20],
            "error_count": len(self.errors), "scenarios": dict(self.scenarios),
            "flagged_scans": dict(self.flagged_scans), "weight_mismatches": self.weight_mismatches,
            "decisions": dict(self.decisions), "decision_statuses": dict(self.statuses),
            "dispositions": dict(self.dispositions), "refunded_minor": dict(self.refunded_minor),
            "software_ms_per_return": {
                "mean": round(statistics.fmean(times), 3) if times else None,
                "p50": round(times[len(times) // 2], 3) if times else None,
                "p99": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3) if times else None,
            },
        }


def _pick_rmas(station: Station, count: int, seed: int) -> list[int]:
    with station.uow() as uow:
        ids = list(uow.session.scalars(select(ReturnAuthorization.id)
                                       .where(ReturnAuthorization.status == "authorized",
                                              ReturnAuthorization.channel != "keep_it")
                                       .order_by(ReturnAuthorization.id)))
    random.Random(seed).shuffle(ids)
    return ids[:count]


def simulate_clerk(station: Station, returns: int, seed: int = 1, *, rma_ids: list[int] | None = None) -> ClerkSummary:
    """Process ``returns`` authorized demo RMAs (or exactly ``rma_ids``) as a clerk would: scan the
    label, weigh, scan each unit, grade, decide (policy's proposal), put each unit away. Device time
    is not simulated: the per-return figure is the console's own software time."""
    picked = rma_ids if rma_ids is not None else _pick_rmas(station, returns, seed)
    summary = ClerkSummary(requested=len(picked) if rma_ids is not None else returns)
    rng = random.Random(seed)
    for rma_id in picked:
        process_return(station, rma_id, rng, seed, summary)
    return summary


def process_return(station: Station, rma_id: int, rng: random.Random, seed: int, summary: ClerkSummary) -> None:
    """One parcel at the bench, start to finish; a refusal is counted in ``summary.errors``."""
    grades, weights = zip(*GRADE_MIX)
    ctx = station.ctx()
    with station.uow() as uow:
        rma = uow.session.get(ReturnAuthorization, rma_id)
        assert rma is not None
        items = list(uow.session.scalars(select(ReturnItem).where(ReturnItem.rma_id == rma_id)
                                         .order_by(ReturnItem.id)))
        used: dict[int, int] = defaultdict(int)
        expected = []
        for item in items:
            serials = item.order_line.serial_numbers or []
            # The k-th returned unit of a line carries the line's k-th shipped serial.
            serial = serials[used[item.order_line_id]] if used[item.order_line_id] < len(serials) else None
            used[item.order_line_id] += 1
            expected.append((item.order_line.gtin, serial, item.order_line.weight_g))
        label = rma.return_tracking_number or rma.number
        number = rma.number
    plan = parcel_contents(number, seed)
    weight_g, codes = plan_scans(plan, expected, station.policy.packaging_g)
    summary.scenarios[plan.scenario] += 1
    started = time.perf_counter()
    try:
        with station.uow() as uow:
            receipt = receive_parcel(uow, ctx, label, weight_g=weight_g, weight_source="scale")
        summary.weight_mismatches += receipt.weight.mismatch
        for code in codes:
            with station.uow() as uow:
                scanned = scan_item(uow, ctx, receipt.receipt_id, code)
            if scanned.flagged:
                summary.flagged_scans[scanned.result] += 1
        with station.uow() as uow:
            received = list(uow.session.scalars(select(ReturnItem.id).where(
                ReturnItem.rma_id == rma_id, ReturnItem.reception_status == "received")))
        for item_id in received:
            with station.uow() as uow:
                inspect_item(uow, ctx, item_id, rng.choices(grades, weights)[0])
        kind = None if received else "deny"
        with station.uow() as uow:
            result = decide(uow, ctx, DecideCommand(rma_id, kind, decision_id=uuid.uuid4()))
        summary.decisions[result.kind] += 1
        summary.statuses[result.status] += 1
        if result.status == "approved":
            summary.refunded_minor[result.amount.currency] += result.amount.minor
        for item_id in received:
            with station.uow() as uow:
                kind = dispose(uow, ctx, item_id).kind
                uow.commit()
            summary.dispositions[kind] += 1
        summary.processed += 1
    except DomainError as exc:
        summary.errors.append(f"{number}: {exc.message}")
    summary.per_return_ms.append((time.perf_counter() - started) * 1000)
