"""`bench --quick` runs every benchmark and writes the table and the JSON it promises."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.bench import format_table, raw_find, raw_lookup_sql
from console.cli import main


def test_quick_bench_prints_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text(encoding="utf-8"))
    names = [r["name"] for r in data["results"]]
    assert any(n.startswith("lookup p99") for n in names)
    assert any(n.startswith("simulate clerk") for n in names)
    assert any(n.startswith("barcode interpretation") for n in names)
    assert any(n.startswith("serial scan to Qt signal, p99") for n in names)
    for row in data["results"]:
        assert row["figure"] > 0 and row["unit"] in ("ms", "codes/s")
        assert row["name"] in printed
        if row["baseline_label"] == "raw sqlite3":
            assert row["ratio"] == pytest.approx(row["figure"] / row["baseline"], rel=0.02)
    assert data["quick"] is True and data["sizes"]["orders"] == 20_000


def test_raw_lookup_runs_the_same_statement_as_the_console(tmp_path: Path) -> None:
    """The baseline must do the same work: same rows for the same code."""
    import sqlite3

    from console.bench import bench_database
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
    from console.bench import Row

    table = format_table([Row("x", 2.0, "ms", 1.0, "raw", 2.0, "≤ 1×", False)])
    assert "| NO " in table and "1 (raw)" in table
