"""`bench --quick` runs every benchmark and writes the table and the JSON it promises."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scripts.dev.benchmarks.common import format_table
from scripts.dev.benchmarks.lookup import raw_find, raw_lookup_sql
from scripts.dev.benchmarks.sync import _local_postgres_cpu_s, pg_base

# The station benchmarks open the window, which plays sounds on a station's default settings:
# a machine without audio output says so.
pytestmark = pytest.mark.qt_log_ignore("PulseAudio")
REPO = Path(__file__).resolve().parents[2]


def test_quick_bench_prints_table_and_writes_json(tmp_path: Path) -> None:
    """`scripts/bench --quick` as the README gives it, in a process of its own."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([str(REPO / "scripts" / "bench"), "--quick", "--out", str(out)], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    names = [r["name"] for r in data["results"]]
    assert any(n.startswith("lookup p99") for n in names)
    assert any(n.startswith("simulate clerk") for n in names)
    assert any(n.startswith("barcode interpretation") for n in names)
    assert any(n.startswith("serial scan to Qt signal, p99") for n in names)
    assert any(n.startswith("scan to screen (Enter to parcel_shown), p99") for n in names)
    assert any(n.startswith("GUI heartbeat longest gap") for n in names)
    assert any(n.startswith("cold start to ready-to-scan") for n in names)
    assert any(n.startswith("push to central PostgreSQL (2,000 decisions") for n in names)
    assert any(n.startswith("push vs raw psycopg COPY") for n in names)
    assert any(n.startswith("pull 10,000 changed rows") for n in names)
    assert any(n.startswith("catch-up after an offline shift") for n in names)
    assert any(n.startswith("GUI heartbeat longest gap while the sync worker pushes 1,000 decisions") for n in names)
    cpu = [r for r in data["results"] if r["name"].startswith("CPU per pushed decision: station ")]
    if _local_postgres_cpu_s(pg_base()) is not None:  # central's CPU can be read only on this machine
        assert cpu[0]["baseline_label"] == "COPY" and cpu[0]["baseline"] > 0 and "cores at most" in cpu[0]["target"]
    stations = next(n for n in names if n.startswith("simulated stations against one central"))
    assert "4 stations" in stations and "INVARIANTS BROKEN" not in stations
    for row in data["results"]:
        assert row["figure"] > 0 and row["unit"] in ("ms", "µs", "codes/s", "decisions/s", "s")
        assert row["name"] in printed
        if row["baseline_label"] == "raw sqlite3":
            assert row["ratio"] == pytest.approx(row["figure"] / row["baseline"], rel=0.02)
    assert data["quick"] is True and data["sizes"]["orders"] == 20_000


def test_cpu_use_counts_the_local_servers_work_apart_from_this_process(pg_url: str) -> None:
    import psycopg

    from scripts.dev.benchmarks.sync import cpu_use

    if _local_postgres_cpu_s(pg_url) is None:
        pytest.skip("the server's CPU is read from /proc, and this test server is on another machine")
    with psycopg.connect(pg_url) as conn, cpu_use(pg_url) as use:
        conn.execute("SELECT count(*) FROM generate_series(1, 3000000)").fetchone()
    assert use.central_s is not None and use.central_s >= 0.05  # the server counted, not this process
    assert use.here_s < use.central_s
    with cpu_use("postgresql://postgres@central.example.com/returns") as elsewhere:
        pass
    assert elsewhere.central_s is None  # a server on another machine cannot be read from here


def test_raw_lookup_runs_the_same_statement_as_the_console(tmp_path: Path) -> None:
    """The baseline must do the same work: same rows for the same code."""
    import sqlite3

    from scripts.dev.benchmarks.common import bench_database
    from console.config import load_settings
    from console.lookup import LOOKUP, lookup_params
    from db.engine import make_engine

    path = bench_database(20_000)
    engine = make_engine(str(path), must_exist=True)
    conn = sqlite3.connect(path)
    try:
        for code in ["SO-1000042", "SO-1000043"]:
            with engine.connect() as c:
                ours = [tuple(r) for r in c.execute(LOOKUP, lookup_params(code))]
            assert ours and ours == [tuple(r) for r in raw_find(conn, raw_lookup_sql(), code)]
    finally:
        conn.close()
        engine.dispose()
    assert load_settings()


def test_table_format_marks_misses() -> None:
    from scripts.dev.benchmarks.common import Row

    table = format_table([Row("x", 2.0, "ms", 1.0, "raw", 2.0, "≤ 1×", False)])
    assert "| NO " in table and "1 (raw)" in table


def test_station_benchmarks_drive_the_window_and_leave_the_cached_database_alone(tmp_path: Path) -> None:
    """A tiny run of the scan-station benchmarks: every row is there with a sane figure; how
    fast is the benchmark's business, not the test's."""
    import sqlite3
    from datetime import datetime, timezone

    from scripts.dev.benchmarks.common import Sizes
    from scripts.dev.benchmarks.window import bench_station
    from console.demo.data import generate_demo

    path = tmp_path / "demo.sqlite3"
    generate_demo(path, orders=2000, seed=11, now=datetime.now(timezone.utc))

    def receipts() -> int:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT count(*) FROM parcel_receipts").fetchone()[0]
        finally:
            conn.close()

    before = receipts()
    rows = bench_station(path, Sizes(orders=2000, lookups=100, returns=10), scans=6, warmup=2, parcels=2,
                         cold_runs=1, cold_warmup=False)
    assert receipts() == before  # the scans wrote to a copy

    by_start = {r.name.split(" (")[0].split(",")[0]: r for r in rows}
    assert len(rows) == 7
    for row in rows:
        assert row.unit == "ms" and row.figure > 0, row
        assert (row.met is None) == (row.target == "informative"), row
    p50, p99, painted = (r.figure for r in rows[:3])
    assert "6 scans" in rows[0].name and "refused" not in rows[0].name
    assert p50 <= p99 <= painted  # the paint comes after parcel_shown, scan by scan
    longest, gap99 = rows[3], rows[4]
    assert longest.name.startswith("GUI heartbeat longest gap (2 parcels") and "sync errors" not in longest.name
    assert gap99.figure <= longest.figure and longest.figure >= 10  # beats 16 ms apart, never closer than ~10
    median, worst = rows[5], rows[6]
    assert "sign-in screen" in median.name and "1 runs" in median.name
    assert median.figure == worst.figure and median.figure > 100  # a whole interpreter, Qt and the window
    assert set(by_start) >= {"scan to screen", "GUI heartbeat longest gap", "cold start to ready-to-scan"}
