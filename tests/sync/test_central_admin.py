"""An admin's view of central: stations that have gone quiet, and their open conflicts."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from console.central_admin import station_states
from console.cli import main
from db.engine import make_engine
from db.models import Station
from db.push import ensure_central_schema, push_once
from db.types import utcnow
from tests.sync.test_sync import decide, make_station

pytestmark = pytest.mark.postgres


def test_quiet_stations_and_their_conflicts(pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    central = make_engine(pg_url)
    first, second = make_station(tmp_path / "a.sqlite3", "WH1-01"), make_station(tmp_path / "b.sqlite3", "WH1-02")
    try:
        ensure_central_schema(central)
        decide(first, 101)
        decide(second, 101, station_id="WH1-02")  # the same item: a conflict for WH1-02
        push_once(first, central, station_id="WH1-01")
        push_once(second, central, station_id="WH1-02")
        with central.begin() as conn:  # WH1-01 last heard from two hours ago
            conn.execute(update(Station).where(Station.id == "WH1-01")
                         .values(last_synced_at=utcnow() - timedelta(hours=2)))
        states = {s.station_id: s for s in station_states(central, timedelta(minutes=30))}
        assert states["WH1-01"].quiet and states["WH1-01"].open_conflicts == 0
        assert not states["WH1-02"].quiet and states["WH1-02"].open_conflicts == 1
        assert [s.station_id for s in station_states(central)][0] == "WH1-01"  # quiet ones first
        assert not any(s.quiet for s in station_states(central, timedelta(hours=3)))

        assert main(["--central", pg_url, "central", "stations"]) == 2
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(d["station"], d["quiet"], d["open_conflicts"]) for d in lines] == [
            ("WH1-01", True, 0), ("WH1-02", False, 1)]
        assert main(["--central", pg_url, "central", "stations", "--quiet-after", "180"]) == 0
        capsys.readouterr()
        assert main(["--central", pg_url, "central", "stations", "--quiet-after", "0"]) == 1
        assert "--quiet-after" in capsys.readouterr().err
    finally:
        first.dispose()
        second.dispose()
        central.dispose()
