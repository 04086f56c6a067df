"""The simulated clerk's benchmark: demo returns processed end to end through the services."""
from __future__ import annotations

import sqlite3
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from scripts.dev.benchmarks.common import Row, Sizes, percentile


def bench_simulate(path: Path, sizes: Sizes) -> list[Row]:
    from console.config import load_settings
    from console.demo.clerk import simulate_clerk
    from console.station import Station

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "station.sqlite3"
        src = sqlite3.connect(path)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)  # a consistent copy; the cached database stays untouched
        finally:
            src.close()
            dst.close()
        station = Station.open(replace(load_settings(), station_db=copy, user="aiko"))
        try:
            summary = simulate_clerk(station, sizes.returns, seed=3)
        finally:
            station.close()
    times = summary.per_return_ms
    mean = statistics.fmean(times) if times else float("nan")
    p99 = percentile(times, 99) if times else float("nan")
    return [
        Row(f"simulate clerk, mean per return ({summary.processed} returns)", round(mean, 2), "ms", 50.0,
            "target", round(mean / 50.0, 2), "≤ 50 ms", mean <= 50),
        Row("simulate clerk, p99 per return", round(p99, 2), "ms", 50.0, "target", round(p99 / 50.0, 2),
            "≤ 50 ms (informative)", p99 <= 50),
    ]
