"""Risk benchmarks: one assessment (facts gathered + signals) on the benchmark database of a
million orders, and one PIN verification with the console's Argon2id parameters."""
from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from scripts.dev.benchmarks.common import Row, Sizes, percentile
from console.files import copy_sqlite

RISK_TARGET_MS = 5.0
PIN_TARGET_MS = 500.0
CLERK_DECISIONS = 5000  # a busy clerk's 90 days: what the employee-fraud counts go through


def bench_risk(path: Path, sizes: Sizes) -> list[Row]:
    from sqlalchemy import select, text

    from console.config import load_settings
    from console.risk import assess
    from console.risk_facts import Refund, forget_baselines, gather
    from console.station import Station
    from db.models import Order, ReturnAuthorization, Shipment

    samples = max(200, sizes.returns * 5)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "station.sqlite3"
        copy_sqlite(path, copy)
        station = Station.open(replace(load_settings(), station_db=copy, user="aiko"))
        try:
            ctx = station.ctx()
            now = ctx.now()
            with station.engine.begin() as conn:
                orders = conn.execute(text("SELECT id, currency FROM orders ORDER BY id LIMIT 1")).one()
                rng = random.Random(7)
                conn.execute(text(
                    "INSERT INTO decisions (id, order_id, kind, status, amount_minor, store_credit_bonus_minor, "
                    "shipping_refund_minor, currency, policy_version, policy_kind, review_reasons, decided_by_id, "
                    "station_id, decided_at) VALUES (:id, :o, :k, 'approved', 100, 0, 0, :c, 'bench', :pk, '[]', "
                    ":u, :s, :at)"),
                    [{"id": uuid.uuid4().hex, "o": orders.id, "k": "full_refund",
                      "pk": "full_refund" if rng.random() < 0.9 else "deny", "c": orders.currency,
                      "u": ctx.actor.user_id, "s": ctx.station_id,
                      "at": (now - timedelta(minutes=25 * n)).strftime("%Y-%m-%d %H:%M:%S.%f")} for n in range(CLERK_DECISIONS)])
            with station.read_uow() as uow:
                s = uow.session
                ids = list(s.scalars(select(ReturnAuthorization.id).order_by(ReturnAuthorization.id)))
                chosen = random.Random(3).sample(ids, min(samples, len(ids)))

                def load(rma_id: int) -> tuple[ReturnAuthorization, Refund, object]:
                    """What the bench holds before it assesses: the RMA, its units, its window
                    (read when the parcel was scanned; measured by the lookup benchmarks)."""
                    rma = s.get(ReturnAuthorization, rma_id)
                    order = s.get(Order, rma.order_id)
                    delivered = s.scalar(select(Shipment.delivered_at).where(Shipment.order_id == order.id))
                    window = ctx.policy.check_window(delivered or now, now, rma.items[0].order_line.category,
                                                     order.customer.loyalty_tier, ctx.zone)
                    return rma, Refund("full_refund", 5000, "original_payment", [i.id for i in rma.items], 0), window

                def assess_one(rma: ReturnAuthorization, refund: Refund, window: object) -> None:
                    assess(gather(s, ctx, rma, refund, window), ctx.policy.risk)  # type: ignore[arg-type]

                forget_baselines()
                started = time.perf_counter()
                assess_one(*load(chosen[0]))  # computes the all-customers baseline: once a day
                first_ms = (time.perf_counter() - started) * 1000
                times = []
                for rma_id in chosen[1:]:
                    s.expunge_all()  # every return read from the database, as at the bench
                    held = load(rma_id)
                    started = time.perf_counter()
                    assess_one(*held)
                    times.append((time.perf_counter() - started) * 1000)
        finally:
            station.close()
    p50, p99 = statistics.median(times), percentile(times, 99)
    label = f"{sizes.orders:,} orders"
    rows = [
        Row(f"risk assessment p50 ({label}, {len(times)} returns)", round(p50, 3), "ms", RISK_TARGET_MS, "target",
            round(p50 / RISK_TARGET_MS, 3), "≤ 5 ms", p50 <= RISK_TARGET_MS),
        Row(f"risk assessment p99 ({label})", round(p99, 3), "ms", RISK_TARGET_MS, "target",
            round(p99 / RISK_TARGET_MS, 3), "≤ 5 ms", p99 <= RISK_TARGET_MS),
        Row(f"risk assessment, first of the day (all-customers baseline, {label})", round(first_ms, 1), "ms",
            None, "-", None, "informative"),
    ]
    return rows + bench_pin()


def bench_pin(runs: int = 7) -> list[Row]:
    from console.passwords import password_hasher

    hasher = password_hasher()
    stored = hasher.hash("4821-demo")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        hasher.verify(stored, "4821-demo")
        times.append((time.perf_counter() - started) * 1000)
    worst = max(times)
    return [Row(f"PIN verification, Argon2id {hasher.memory_cost // 1024} MiB t={hasher.time_cost} "
                f"p={hasher.parallelism} (worst of {runs})", round(worst, 1), "ms", PIN_TARGET_MS, "target",
                round(worst / PIN_TARGET_MS, 3), "≤ 500 ms", worst <= PIN_TARGET_MS)]
