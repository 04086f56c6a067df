"""The headless commands, as a person or a script runs them: JSON out, one clear line on failure."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from console.cli import main
from db.engine import make_engine
from db.models import Decision, OutboxRow, ReturnAuthorization

ORDERS = 400


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo station for the module (the demo builder has its own tests)."""
    home = tmp_path_factory.mktemp("cli-home")
    old = os.environ.get("RETURNS_CONSOLE_HOME")
    os.environ["RETURNS_CONSOLE_HOME"] = str(home)
    try:
        assert main(["demo", "--orders", str(ORDERS), "--seed", "5"]) == 0
    finally:
        if old is None:
            del os.environ["RETURNS_CONSOLE_HOME"]
        else:
            os.environ["RETURNS_CONSOLE_HOME"] = old
    return home


@pytest.fixture
def home(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RETURNS_CONSOLE_HOME", str(demo_home))
    return demo_home


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _scalar(path: Path, stmt) -> int:  # noqa: ANN001
    engine = make_engine(str(path), must_exist=True)
    try:
        with engine.connect() as conn:
            return conn.execute(stmt).scalar_one()
    finally:
        engine.dispose()


def test_demo_if_empty_leaves_existing_data(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "demo", "--if-empty")
    assert code == 0 and "leaving it as it is" in err


def test_lookup_prints_what_a_code_refers_to(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    station = home / "station.sqlite3"
    engine = make_engine(str(station), must_exist=True)
    with engine.connect() as conn:
        number, tracking = conn.execute(select(ReturnAuthorization.number, ReturnAuthorization.return_tracking_number)
                                        .where(ReturnAuthorization.return_tracking_number.is_not(None))
                                        .limit(1)).one()
    engine.dispose()
    code, out, _ = _run(capsys, "lookup", number)
    data = json.loads(out)
    assert code == 0 and data["kind"] == "rma" and data["rmas"][0]["number"] == number
    assert data["rma_details"][0]["items"], "the RMA's lines are shown"
    code, out, _ = _run(capsys, "lookup", tracking.lower())
    assert code == 0 and json.loads(out)["kind"] == "return_tracking"


@pytest.mark.parametrize("code", ["NOPE-123", "R-00000010", "", "\x1b[A"])
def test_lookup_of_unknown_or_garbled_code_fails_in_one_line(home: Path, capsys: pytest.CaptureFixture[str],
                                                            code: str) -> None:
    status, out, err = _run(capsys, "lookup", code)
    assert status == 1 and out == ""
    assert _one_line_error(err).startswith("returns-console: ")


def test_simulate_clerk_then_sync_twice(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    station = home / "station.sqlite3"
    status, out, _ = _run(capsys, "simulate", "clerk", "--returns", "12", "--seed", "4")
    summary = json.loads(out)
    assert status == 0 and summary["processed"] == 12 and summary["error_count"] == 0
    assert sum(summary["decisions"].values()) == 12
    assert summary["software_ms_per_return"]["p50"] > 0
    decisions = _scalar(station, select(func.count()).select_from(Decision))
    assert decisions >= 12

    status, out, _ = _run(capsys, "sync", "--once")
    first = json.loads(out)
    assert status == 0 and first["pushed"] > 0 and first["pending_after"] == 0
    status, out, _ = _run(capsys, "sync", "--once")
    assert status == 0 and json.loads(out)["pushed"] == 0
    central = home / "central.sqlite3"
    assert _scalar(central, select(func.count()).select_from(Decision)) == decisions
    assert _scalar(station, select(func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))) == 0


def test_missing_station_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "--station", str(tmp_path / "none.sqlite3"), "lookup", "R-00000010")
    assert status == 1 and "does not exist" in _one_line_error(err)
    assert not (tmp_path / "none.sqlite3").exists()


def test_wrong_central_url_fails_fast_and_keeps_the_outbox(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "--central", "postgresql://postgres@127.0.0.1:1/nothing", "sync", "--once")
    assert status == 1
    assert "127.0.0.1" in _one_line_error(err)
    status, _, err = _run(capsys, "--central", "ftp://example/db", "sync", "--once")
    assert status == 1 and "unsupported database" in _one_line_error(err)


def test_malformed_policy_and_zone(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("version = [unclosed", encoding="utf-8")
    status, _, err = _run(capsys, "--policy", str(policy), "lookup", "SO-1000001")
    assert status == 1 and "not valid TOML" in _one_line_error(err)
    status, _, err = _run(capsys, "--time-zone", "Mars/Olympus", "lookup", "SO-1000001")
    assert status == 1 and "unknown time zone" in _one_line_error(err)


def test_a_file_that_is_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "station.sqlite3"
    bogus.write_text("these are my notes, not a database\n" * 100, encoding="utf-8")
    status, _, err = _run(capsys, "--station", str(bogus), "lookup", "SO-1000001")
    assert status == 1 and "not a database" in _one_line_error(err)
    assert bogus.read_text(encoding="utf-8").startswith("these are my notes"), "the file is left untouched"


def test_console_script_runs_as_a_process(home: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "console.cli", "lookup", "SO-1000001"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "RETURNS_CONSOLE_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["order_number"] == "SO-1000001"


@pytest.mark.postgres
def test_sync_to_postgresql_central_is_idempotent(home: Path, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    # A copy of the demo station, so this test's outbox is its own.
    station = home / "station-pg.sqlite3"
    src = make_engine(str(home / "station.sqlite3"), must_exist=True)
    with src.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    src.dispose()
    shutil.copy(home / "station.sqlite3", station)
    before = make_engine(str(station), must_exist=True)
    with before.connect() as conn:
        already_synced = set(conn.execute(select(Decision.id)).scalars())
    before.dispose()
    status, out, _ = _run(capsys, "--station", str(station), "simulate", "clerk", "--returns", "5", "--seed", "9")
    assert status == 0 and json.loads(out)["processed"] == 5
    status, _, err = _run(capsys, "--station", str(station), "--central", pg_url, "sync", "--once")
    assert status == 1 and "central init" in _one_line_error(err)  # stations never migrate central
    status, _, _ = _run(capsys, "--central", pg_url, "central", "init")
    assert status == 0
    status, out, _ = _run(capsys, "--station", str(station), "--central", pg_url, "sync", "--once")
    report = json.loads(out)
    assert status == 0 and report["pushed"] > 0 and report["failed"] == 0
    status, out, _ = _run(capsys, "--station", str(station), "--central", pg_url, "sync", "--once")
    assert status == 0 and json.loads(out)["pushed"] == 0
    central = make_engine(pg_url)
    try:
        with central.connect() as conn:
            central_ids = set(conn.execute(select(Decision.id)).scalars())
    finally:
        central.dispose()
    local = make_engine(str(station), must_exist=True)
    try:
        with local.connect() as conn:
            local_ids = set(conn.execute(select(Decision.id)).scalars())
    finally:
        local.dispose()
    assert len(local_ids - already_synced) == 5 and central_ids == local_ids - already_synced
