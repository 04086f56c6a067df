"""`returns-console bench`: named benchmarks printed as a table and written as JSON.

Figures are wall-clock on whatever machine runs them; each row names its baseline (a raw
`sqlite3` run of the same queries, or the target from the issue) and the ratio to it.
"""
from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


def _cache_dir() -> Path:
    home = os.environ.get("RETURNS_CONSOLE_HOME")
    from db.migrate import head_revision

    base = Path(home) / "cache" if home else Path(platformdirs.user_cache_dir("returns-console"))
    # One folder per schema: a database cached by an earlier version lacks the columns of later
    # migrations, and would fail the benchmarks instead of being built again.
    path = base / "bench" / f"schema-{head_revision()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def bench_database(orders: int) -> Path:
    """A demo station database of ``orders`` orders, built once and reused across runs."""
    from console.demo import generate_demo

    path = _cache_dir() / f"demo-{orders}-seed{SEED}.sqlite3"
    if not path.exists():
        print(f"building benchmark database with {orders:,} orders at {path} (once) ...", flush=True)
        started = time.perf_counter()
        generate_demo(path, orders=orders, seed=SEED, now=datetime.now(timezone.utc))
        print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def _sample_codes(path: Path, count: int) -> list[str]:
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


def raw_lookup_sql() -> str:
    """find_code's statement, compiled once for the sqlite3 module: the same query, no SQLAlchemy."""
    from sqlalchemy.dialects import sqlite

    from console.lookup import LOOKUP

    return str(LOOKUP.compile(dialect=sqlite.dialect()))


def raw_find(conn: sqlite3.Connection, sql: str, raw: str) -> list[Any]:
    from console.lookup import lookup_params

    p = lookup_params(raw)
    return conn.execute(sql, (p["rma"], p["order"], p["code"], p["code"])).fetchall()


def _time_each(fn: Callable[[str], object], codes: list[str]) -> list[float]:
    for code in codes[:200]:  # warm the page cache and statement caches
        fn(code)
    samples = []
    for code in codes:
        t0 = time.perf_counter_ns()
        fn(code)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return samples


def bench_lookup(path: Path, sizes: Sizes) -> list[Row]:
    from console.config import load_settings
    from console.lookup import find_code
    from console.station import Station

    codes = _sample_codes(path, sizes.lookups)
    station = Station.open(replace(load_settings(), station_db=path, user="aiko"))
    try:
        with station.reader() as reader:
            orm_ms = _time_each(lambda c: find_code(reader, c), codes)

        def in_unit_of_work(code: str) -> object:
            with station.uow() as uow:
                return find_code(uow.session, code)

        uow_ms = _time_each(in_unit_of_work, codes)
    finally:
        station.close()
    conn = sqlite3.connect(path)
    sql = raw_lookup_sql()
    try:
        raw_ms = _time_each(lambda c: raw_find(conn, sql, c), codes)
    finally:
        conn.close()
    label = f"{sizes.orders:,} orders"
    rows = []
    for pct in (50, 99):
        o, r = _percentile(orm_ms, pct), _percentile(raw_ms, pct)
        target = "≤ 5 ms and ≤ 3× raw" if pct == 99 else "(informative)"
        met = (o <= 5 and o <= 3 * r) if pct == 99 else None
        rows.append(Row(f"lookup p{pct} ({label})", round(o, 4), "ms", round(r, 4), "raw sqlite3",
                        round(o / r, 2) if r else None, target, met))
    u99, r99 = _percentile(uow_ms, 99), _percentile(raw_ms, 99)
    rows.append(Row(f"lookup p99 in a unit of work ({label})", round(u99, 4), "ms", round(r99, 4), "raw sqlite3",
                    round(u99 / r99, 2) if r99 else None, "≤ 5 ms", u99 <= 5))
    return rows


def bench_simulate(path: Path, sizes: Sizes) -> list[Row]:
    from console.config import load_settings
    from console.simulate import simulate_clerk
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
    p99 = _percentile(times, 99) if times else float("nan")
    return [
        Row(f"simulate clerk, mean per return ({summary.processed} returns)", round(mean, 2), "ms", 50.0,
            "target", round(mean / 50.0, 2), "≤ 50 ms", mean <= 50),
        Row("simulate clerk, p99 per return", round(p99, 2), "ms", 50.0, "target", round(p99 / 50.0, 2),
            "≤ 50 ms (informative)", p99 <= 50),
    ]


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


def _bench_interpret(path: Path, sizes: Sizes) -> list[Row]:
    from console.bench_scanning import bench_interpret

    return bench_interpret(path, sizes)


def _bench_serial(path: Path, sizes: Sizes) -> list[Row]:
    from console.bench_scanning import bench_serial

    return bench_serial(path, sizes)


def _bench_printing(path: Path, sizes: Sizes) -> list[Row]:
    from console.bench_printing import bench_printing

    return bench_printing(path, sizes)


def _bench_station(path: Path, sizes: Sizes) -> list[Row]:
    from console.bench_station import bench_station

    return bench_station(path, sizes)


def _bench_risk(path: Path, sizes: Sizes) -> list[Row]:
    from console.bench_risk import bench_risk

    return bench_risk(path, sizes)


def _bench_sync(path: Path, sizes: Sizes) -> list[Row]:
    from console.bench_sync import bench_sync

    return bench_sync(path, sizes)


BENCHMARKS: dict[str, Callable[[Path, Sizes], list[Row]]] = {
    "lookup": bench_lookup,
    "simulate": bench_simulate,
    "interpret": _bench_interpret,
    "serial": _bench_serial,
    "printing": _bench_printing,
    "station": _bench_station,
    "risk": _bench_risk,
    "sync": _bench_sync,
}


def run_benchmarks(*, quick: bool, out: Path, only: list[str] | None = None) -> int:
    sizes = QUICK if quick else FULL
    path = bench_database(sizes.orders)
    rows: list[Row] = []
    for name, fn in BENCHMARKS.items():
        if only and not any(name.startswith(o) for o in only):
            continue
        rows.extend(fn(path, sizes))
    print(format_table(rows))
    result = {
        "when": datetime.now(timezone.utc).isoformat(), "quick": quick,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "sizes": asdict(sizes), "results": [asdict(r) for r in rows],
    }
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nwritten to {out}")
    return 0

