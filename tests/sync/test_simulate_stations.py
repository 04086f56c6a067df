"""`scripts/simulate-stations` end to end on the real PostgreSQL: station processes killed with SIGKILL and
restarted, central cut off through a proxy, two benches working the same parcels — and every
invariant holds at the end."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools.simulate_stations import simulate_stations

pytestmark = pytest.mark.postgres


def test_chaos_keeps_every_invariant(pg_url: str, tmp_path: Path) -> None:
    lines: list[str] = []
    report = simulate_stations(pg_url, 3, 8, seed=4, overlap=0.2, chaos=True, kill_every_s=0.7,
                               outage_every_s=2.0, outage_s=1.0, work_dir=tmp_path, log=lines.append)
    assert report["ok"], (report["invariants"], report["station_errors"])
    assert all(report["invariants"].values()) and len(report["invariants"]) == 6
    assert report["kills"] >= 1 and report["restarts"] == report["kills"]
    assert report["central_outages"] >= 1 and any(line == "central cut off" for line in lines)
    assert report["conflicts"] >= 1  # parcels worked at two benches: one refund each, the rest in review
    assert report["decisions"] >= 3 * 8 and report["events"] > report["decisions"]
