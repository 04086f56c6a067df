"""Printing benchmarks: rendering a disposition label as PDF and as ZPL, and storing a print
job in the station's queue (what the bench waits for before the next parcel).

Targets (issue 4): PDF label ≤ 15 ms, ZPL label ≤ 1 ms, enqueue ≤ 2 ms, each at p99.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scripts.dev.benchmarks.common import Row, Sizes


def _labels(n: int) -> list:
    from printing.content import DispositionLabel

    kinds = ("restock", "refurbish", "outlet", "return-to-vendor", "recycle", "quarantine")
    return [DispositionLabel(lpn=f"LPN{i:09d}X", disposition=kinds[i % len(kinds)], rma=f"R-{i:07d}K",
                             sku=f"AP-{10000 + i}", title=("Kestrel ワイヤレスイヤホン, Black" if i % 3 == 0 else
                                                           f"Fieldhouse Oxford shirt, Navy, M #{i}"),
                             grade="ABCDF"[i % 5], date="2026-11-23", station="Warehouse 1, bench 1",
                             bin_hint="RS-APPA") for i in range(n)]


def _timed(fn, items: list) -> list[float]:  # noqa: ANN001
    times = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - started) * 1000)
    return times


def bench_printing(path: Path, sizes: Sizes) -> list[Row]:  # noqa: ARG001 - needs no orders
    from scripts.dev.benchmarks.common import Row, percentile
    from printing.pdf import disposition_label_pdf
    from printing.zpl import disposition_label_zpl

    n = 200 if sizes.orders < 100_000 else 1_000
    labels = _labels(n)
    disposition_label_pdf(labels[0])  # fonts registered, caches warm
    disposition_label_zpl(labels[0])
    pdf_ms = _timed(disposition_label_pdf, labels)
    zpl_ms = _timed(disposition_label_zpl, labels)
    enqueue_ms = _bench_enqueue(n)
    rows = []
    for name, times, target in (("PDF disposition label", pdf_ms, 15.0), ("ZPL disposition label", zpl_ms, 1.0),
                                ("print-queue enqueue", enqueue_ms, 2.0)):
        p50, p99 = percentile(times, 50), percentile(times, 99)
        rows.append(Row(f"{name}, p50 ({n})", round(p50, 4), "ms", None, "-", None, "informative", None))
        rows.append(Row(f"{name}, p99", round(p99, 4), "ms", target, "target", round(p99 / target, 3),
                        f"≤ {target:g} ms", p99 <= target))
    return rows


def _bench_enqueue(n: int) -> list[float]:
    """One job stored (with its audit event) and committed per call, on a real station file."""
    from zoneinfo import ZoneInfo

    from console.context import Actor, StationContext
    from console.policy import load_policy
    from console.print_queue import enqueue
    from db.engine import make_engine
    from db.migrate import upgrade
    from db.models import Station, User
    from db.uow import UnitOfWork
    from printing.printers import PrintPayload

    payload = PrintPayload(b"^XA" + b"x" * 700 + b"^XZ", "zpl", "label")
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(str(Path(folder) / "queue.sqlite3"))
        try:
            upgrade(engine)
            with UnitOfWork.for_engine(engine) as uow:
                uow.session.add(Station(id="BENCH", name="bench"))
                uow.session.add(User(id=1, username="bench", display_name="Bench", role="clerk", password_hash="x"))
                uow.commit()
            ctx = StationContext("BENCH", ZoneInfo("UTC"), load_policy(), Actor(1, "bench", "Bench", "clerk"))
            factory = UnitOfWork.for_engine(engine)._factory  # noqa: SLF001 - one sessionmaker, as the station keeps
            times = []
            for i in range(n + 20):
                started = time.perf_counter()
                with UnitOfWork(factory) as uow:
                    enqueue(uow, ctx, "disposition-label", f"LPN{i:09d}X", "folder", payload)
                    uow.commit()  # the step's own commit: what the row times
                if i >= 20:  # the first commits grow the file
                    times.append((time.perf_counter() - started) * 1000)
            return times
        finally:
            engine.dispose()
