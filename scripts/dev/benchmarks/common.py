"""What every benchmark shares: a row of the table, the sizes, the cached demo database, percentiles.

Figures are wall-clock on whatever machine runs them; each row names its baseline (a raw
`sqlite3` run of the same queries, or the target from the issue) and the ratio to it.
"""
from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class Row:
    name: str
    figure: float
    unit: str
    baseline: float | None
    baseline_label: str
    ratio: float | None
    target: str = ""
    met: bool | None = None


@dataclass(frozen=True)
class Sizes:
    orders: int
    lookups: int
    returns: int


FULL = Sizes(orders=1_000_000, lookups=5000, returns=200)
QUICK = Sizes(orders=20_000, lookups=1000, returns=40)
SEED = 11


def cache_dir() -> Path:
    home = os.environ.get("RETURNS_CONSOLE_HOME")
    from db.migrate import head_revision

    base = Path(home) / "cache" if home else Path(platformdirs.usercache_dir("returns-console"))
    # One folder per schema: a database cached by an earlier version lacks the columns of later
    # migrations, and would fail the benchmarks instead of being built again.
    path = base / "bench" / f"schema-{head_revision()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def bench_database(orders: int) -> Path:
    """A demo station database of ``orders`` orders, built once and reused across runs."""
    from console.demo.data import generate_demo

    path = cache_dir() / f"demo-{orders}-seed{SEED}.sqlite3"
    if not path.exists():
        print(f"building benchmark database with {orders:,} orders at {path} (once) ...", flush=True)
        started = time.perf_counter()
        generate_demo(path, orders=orders, seed=SEED, now=datetime.now(timezone.utc))
        print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def sample_codes(path: Path, count: int) -> list[str]:
    """Every kind of parcel code a clerk scans, spread over the whole database."""
    conn = sqlite3.connect(path)
    try:
        per_kind = max(1, count // 4)
        queries = [
            "SELECT number FROM return_authorizations ORDER BY (id * 2654435761) % 1000003 LIMIT ?",
            "SELECT return_tracking_number FROM return_authorizations WHERE return_tracking_number IS NOT NULL "
            "ORDER BY (id * 2654435761) % 1000003 LIMIT ?",
            "SELECT tracking_number FROM shipments ORDER BY (id * 2654435761) % 1000003 LIMIT ?",
            "SELECT number FROM orders ORDER BY (id * 2654435761) % 1000003 LIMIT ?",
        ]
        codes: list[str] = []
        for q in queries:
            codes.extend(r[0] for r in conn.execute(q, (per_kind,)))
    finally:
        conn.close()
    # Interleave kinds so caches do not favour one.
    return [c for group in zip(*(codes[i::4] for i in range(4))) for c in group] or codes


def format_table(rows: list[Row]) -> str:
    header = ("benchmark", "figure", "unit", "baseline", "ratio", "target", "met")
    body = [(r.name, f"{r.figure:g}", r.unit,
             f"{r.baseline:g} ({r.baseline_label})" if r.baseline is not None else "-",
             f"{r.ratio:g}" if r.ratio is not None else "-", r.target,
             "yes" if r.met else ("NO" if r.met is not None else "-")) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(b) for b in body)])


