"""The lookup benchmarks: what a scan finds, through the console's query and through raw sqlite3."""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from scripts.dev.benchmarks.common import Row, Sizes, percentile, sample_codes


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

    codes = sample_codes(path, sizes.lookups)
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
        o, r = percentile(orm_ms, pct), percentile(raw_ms, pct)
        target = "≤ 5 ms and ≤ 3× raw" if pct == 99 else "(informative)"
        met = (o <= 5 and o <= 3 * r) if pct == 99 else None
        rows.append(Row(f"lookup p{pct} ({label})", round(o, 4), "ms", round(r, 4), "raw sqlite3",
                        round(o / r, 2) if r else None, target, met))
    u99, r99 = percentile(uow_ms, 99), percentile(raw_ms, 99)
    rows.append(Row(f"lookup p99 in a unit of work ({label})", round(u99, 4), "ms", round(r99, 4), "raw sqlite3",
                    round(u99 / r99, 2) if r99 else None, "≤ 5 ms", u99 <= 5))
    return rows
