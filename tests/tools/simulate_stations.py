"""`scripts/simulate-stations`: N station processes, each with its own SQLite database, processing returns
against one central database at once — with chaos if asked (stations killed with SIGKILL and
started again, central cut off for a few seconds) — and then the invariants, checked at central:

- every decision a station committed is at central exactly once, and so is every event;
- no return item is refunded twice (one standing decision line per item);
- every decision that lost a race for an item is kept as a conflict with an open review flag;
- every station database passes SQLite's integrity check.

Each station gets its own slice of the demo's authorized RMAs; ``--overlap`` hands a share of
each slice to the next station as well, as if one parcel were worked at two benches while both
were offline, so conflicts happen and their handling is checked.
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from console.errors import EnvironmentProblem
from console.files import copy_sqlite

AUTHORIZED_SHARE = 0.05
KILLS_PER_STATION = 3
MAX_OUTAGES = 5
FINAL_SYNC_S = 120.0  # a station's last sync before it stops (central may be cut off meanwhile)  # of demo orders carry an authorized RMA a clerk can receive (measured)


@dataclass
class StationRun:
    station_id: str
    db: Path
    rmas: list[int]
    process: subprocess.Popen[str] | None = None
    starts: int = 0
    kills: int = 0
    summaries: list[dict[str, Any]] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


def _template(work: Path, orders: int, seed: int) -> Path:
    from console.demo.data import generate_demo

    path = work / "template.sqlite3"
    generate_demo(path, orders=orders, seed=seed, now=datetime.now(timezone.utc), station_id="SIM-TEMPLATE")
    return path


def _authorized(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(
            "SELECT id FROM return_authorizations WHERE status = 'authorized' AND channel != 'keep_it' ORDER BY id")]
    finally:
        conn.close()


def _check_central_matches(central_url: str, template: Path) -> None:
    """Central must be empty or hold this very demo: order ids are central's, and a station's
    copy never overwrites central's, so another data set would mix two orders under one id."""
    from sqlalchemy import select

    from db.engine import make_engine
    from db.models import Order

    engine = make_engine(central_url)
    try:
        with engine.connect() as conn:
            theirs = dict(conn.execute(select(Order.id, Order.number).order_by(Order.id).limit(200)).all())
    finally:
        engine.dispose()
    if not theirs:
        return
    conn = sqlite3.connect(template)
    try:
        mine = dict(conn.execute("SELECT id, number FROM orders ORDER BY id LIMIT 200").fetchall())
    finally:
        conn.close()
    if any(mine.get(k) not in (None, v) for k, v in theirs.items()):
        raise EnvironmentProblem("central already holds other orders under the demo's ids: simulate against an "
                                 "empty central database (e.g. a new schema or database), or the same --seed")


def simulate_stations(central_url: str, stations: int, returns: int, *, seed: int = 1, overlap: float = 0.02,
                      chaos: bool = False, kill_every_s: float = 1.5, outage_every_s: float = 4.0,
                      outage_s: float = 1.5, sync_interval_s: float = 0.5, work_dir: Path | None = None,
                      log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the simulation; the report (with ``invariants`` and ``ok``)."""
    from db.central import init_central

    if stations < 1 or returns < 1:
        raise EnvironmentProblem("--stations and --returns must be at least 1")
    if not 0 <= overlap <= 0.5:
        raise EnvironmentProblem("--overlap must be between 0 and 0.5")
    from db.engine import make_engine

    central = make_engine(central_url)
    try:
        init_central(central)
    finally:
        central.dispose()
    owned = tempfile.TemporaryDirectory(prefix="rc-sim-") if work_dir is None else None
    work = Path(owned.name) if owned else Path(work_dir)  # type: ignore[arg-type]
    try:
        needed = stations * returns
        orders = max(2000, int(needed / AUTHORIZED_SHARE * 1.3))
        log(f"building the demo ({orders:,} orders) ...")
        template = _template(work, orders, seed)
        _check_central_matches(central_url, template)
        rmas = _authorized(template)
        random.Random(seed).shuffle(rmas)
        if len(rmas) < needed:
            raise EnvironmentProblem(f"the demo has {len(rmas)} authorized RMAs, {needed} needed")
        runs: list[StationRun] = []
        for i in range(stations):
            mine = rmas[i * returns:(i + 1) * returns]
            share = math.ceil(returns * overlap)
            if stations > 1 and share:
                neighbour = rmas[((i + 1) % stations) * returns:((i + 1) % stations) * returns + share]
                mine = mine + neighbour  # also worked here: the neighbour's first parcels
            db = work / f"station-{i + 1:02d}.sqlite3"
            copy_sqlite(template, db)
            runs.append(StationRun(f"SIM-{i + 1:02d}", db, mine))
        proxy = None
        url = central_url
        if chaos:
            from sqlalchemy.engine import make_url

            from tests.tools.tcp_proxy import TcpProxy
            from db.engine import normalize_url

            target = make_url(normalize_url(central_url))
            if target.get_backend_name() != "postgresql":
                raise EnvironmentProblem("--chaos cuts the network to central: it needs a PostgreSQL central")
            proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
            url = proxy.url(normalize_url(central_url), connect_timeout=2)
        started = time.perf_counter()
        kills, outages = _run_all(runs, url, work, seed, sync_interval_s, chaos, kill_every_s, outage_every_s,
                                  outage_s, proxy, log)
        wall_s = time.perf_counter() - started
        if proxy is not None:
            proxy.stop()
        report = _check(runs, central_url)
        report.update(stations=stations, returns_per_station=returns, overlap=overlap, chaos=chaos, kills=kills,
                      central_outages=outages, wall_s=round(wall_s, 2),
                      decisions_per_s=round(report["decisions"] / wall_s, 1) if wall_s else None,
                      restarts=sum(r.starts - 1 for r in runs),
                      station_errors=[e for r in runs for e in r.stderr][:10])
        report["ok"] = all(report["invariants"].values())
        return report
    finally:
        if owned is not None:
            owned.cleanup()


# The children import this module by name (``-m``), from the checkout it is in.
_REPO = str(Path(__file__).resolve().parents[2])


def _start(run: StationRun, url: str, seed: int, interval_s: float, block: int) -> None:
    rmas_file = run.db.with_suffix(".rmas.json")
    rmas_file.write_text(json.dumps(run.rmas))
    # The child's log goes to a file, not a pipe: a pipe nobody reads until the child exits fills
    # up with a chatty child's log and stops it mid-write.
    with run.db.with_suffix(f".{run.starts}.log").open("w") as log:
        run.process = subprocess.Popen(
            [sys.executable, "-m", "tests.tools.simulate_stations", "--child", str(run.db), url, run.station_id,
             str(block), str(rmas_file), str(seed), str(interval_s)],
            stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, "RETURNS_CONSOLE_HOME": str(run.db.parent), "PYTHONPATH": _REPO})
    run.starts += 1


def _run_all(runs: list[StationRun], url: str, work: Path, seed: int, interval_s: float, chaos: bool,
             kill_every_s: float, outage_every_s: float, outage_s: float, proxy: Any,
             log: Callable[[str], None]) -> tuple[int, int]:
    rng = random.Random(seed)
    for block, run in enumerate(runs, start=1):
        _start(run, url, seed, interval_s, block)
    kills = outages = 0
    next_kill = time.monotonic() + kill_every_s
    next_outage = time.monotonic() + outage_every_s
    outage_ends: float | None = None
    collected: set[subprocess.Popen[str]] = set()  # ended processes already read
    while True:
        alive = []
        for block, run in enumerate(runs, start=1):
            process = run.process
            assert process is not None
            if process.poll() is None:
                alive.append((block, run))
                continue
            if process in collected:
                continue
            collected.add(process)
            out, _ = process.communicate()
            if process.returncode == -signal.SIGKILL:
                continue  # restarted below
            if process.returncode != 0:
                err = run.db.with_suffix(f".{run.starts - 1}.log").read_text(errors="replace")
                run.stderr.append(f"{run.station_id}: exit {process.returncode}: {err.strip()[-500:]}")
            for line in out.splitlines():
                if line.startswith("{"):
                    run.summaries.append(json.loads(line))
        # Killed stations start again, as a clerk would restart the console.
        for block, run in enumerate(runs, start=1):
            if run.process is not None and run.process.returncode == -signal.SIGKILL:
                _start(run, url, seed, interval_s, block)
                alive.append((block, run))
        now = time.monotonic()
        if outage_ends is not None and now >= outage_ends:
            proxy.set_mode("pass")
            outage_ends = None
        if not alive:
            break
        # Chaos is bounded (each station killed at most KILLS_PER_STATION times, at most
        # MAX_OUTAGES cut-offs): a run always ends, however slow the machine.
        killable = [(b, r) for b, r in alive if r.kills < KILLS_PER_STATION]
        if chaos and killable and now >= next_kill:
            _, victim = rng.choice(killable)
            assert victim.process is not None
            victim.process.kill()
            victim.kills += 1
            kills += 1
            log(f"killed {victim.station_id}")
            next_kill = now + rng.uniform(0.5, 1.5) * kill_every_s
        if chaos and proxy is not None and outage_ends is None and now >= next_outage and outages < MAX_OUTAGES:
            proxy.set_mode("drop")
            outages += 1
            outage_ends = now + outage_s
            next_outage = now + outage_s + rng.uniform(0.5, 1.5) * outage_every_s
            log("central cut off")
        time.sleep(0.05)
    if proxy is not None:
        proxy.set_mode("pass")
    return kills, outages


def _check(runs: list[StationRun], central_url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from db.engine import make_engine
    from db.models import AppliedEvent, Decision, DecisionLine, OrderLine, ReturnItem, SyncConflict

    station_ids = [r.station_id for r in runs]
    decided: dict[str, set[str]] = {}
    events: dict[str, dict[str, str]] = {}
    integrity = True
    for run in runs:
        conn = sqlite3.connect(run.db)
        try:
            integrity &= conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            decided[run.station_id] = {_uuid(r[0]) for r in conn.execute(
                "SELECT id FROM decisions WHERE station_id = ?", (run.station_id,))}
            events[run.station_id] = {_uuid(r[0]): r[1] for r in conn.execute("SELECT event_id, created_at FROM outbox")}
            unsent = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
        finally:
            conn.close()
        if unsent:
            run.stderr.append(f"{run.station_id}: {unsent} events never sent")
    engine = make_engine(central_url)
    try:
        with engine.connect() as conn:
            at_central = {_uuid(i): s for i, s in conn.execute(
                select(Decision.id, Decision.station_id).where(Decision.station_id.in_(station_ids)))}
            applied = {_uuid(e): a for e, a in conn.execute(
                select(AppliedEvent.event_id, AppliedEvent.applied_at).where(AppliedEvent.station_id.in_(station_ids)))}
            applied_total = conn.execute(select(func.count()).select_from(AppliedEvent)
                                         .where(AppliedEvent.station_id.in_(station_ids))).scalar_one()
            doubles = conn.execute(
                select(func.count()).select_from(
                    select(DecisionLine.return_item_id).join(Decision, Decision.id == DecisionLine.decision_id)
                    .where(DecisionLine.active, Decision.station_id.in_(station_ids),
                           Decision.status.in_(("approved", "pending_review")))
                    .group_by(DecisionLine.return_item_id).having(func.count() > 1).subquery())).scalar_one()
            beyond_shipped = conn.execute(
                select(func.count()).select_from(
                    select(ReturnItem.order_line_id)
                    .join(DecisionLine, DecisionLine.return_item_id == ReturnItem.id)
                    .join(Decision, Decision.id == DecisionLine.decision_id)
                    .join(OrderLine, OrderLine.id == ReturnItem.order_line_id)
                    .where(DecisionLine.active, Decision.station_id.in_(station_ids),
                           Decision.status.in_(("approved", "pending_review")))
                    .group_by(ReturnItem.order_line_id, OrderLine.quantity)
                    .having(func.count() > OrderLine.quantity).subquery())).scalar_one()
            conflicts = {_uuid(i) for i in conn.execute(
                select(Decision.id).where(Decision.station_id.in_(station_ids), Decision.status == "conflict")).scalars()}
            flagged = {_uuid(i) for i in conn.execute(
                select(SyncConflict.decision_id).where(SyncConflict.station_id.in_(station_ids),
                                                       SyncConflict.kind == "item_already_decided",
                                                       SyncConflict.resolved_at.is_(None))).scalars()}
    finally:
        engine.dispose()
    everything = set().union(*decided.values()) if decided else set()
    all_events = {e: created for per in events.values() for e, created in per.items()}
    latencies = []
    for event_id, created in all_events.items():
        at = applied.get(event_id)
        if at is not None:
            latencies.append((at - _parse(created)).total_seconds() * 1000)
    latencies.sort()
    return {
        "decisions": len(everything),
        "events": len(all_events),
        "conflicts": len(conflicts),
        "push_latency_ms": {"p50": round(statistics.median(latencies), 1) if latencies else None,
                            "p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
                            if latencies else None},
        "invariants": {
            "every decision at central exactly once": everything == set(at_central) and all(
                at_central[d] == s for s, ds in decided.items() for d in ds),
            "every event applied exactly once": applied_total == len(all_events) and set(applied) == set(all_events),
            "no item refunded twice": doubles == 0,
            "no order line refunded beyond the units shipped": beyond_shipped == 0,
            "every conflict in review": conflicts == flagged,
            "station databases intact": integrity,
        },
    }


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- the station process ---------------------------------------------------------------------

def _child(db: str, url: str, station_id: str, block: int, rmas_file: str, seed: int, interval_s: float) -> int:
    """One station: work through its RMAs (skipping what it already decided: it may be a restart
    after a kill) with the sync worker on a thread, then sync until everything has left."""
    from sqlalchemy import select

    from console.config import load_settings
    from console.demo.clerk import ClerkSummary, process_return
    from console.station import Station
    from console.sync_runner import SyncLoop
    from db.models import Decision

    settings = load_settings(station_db=Path(db), central_url=url, user="aiko")
    from dataclasses import replace

    settings = replace(settings, station_id=station_id, station_name=f"Simulated {station_id}", id_block=block)
    station = Station.open(settings)
    loop = SyncLoop(settings.station_url, url, station_id, interval_s=interval_s)
    worker = threading.Thread(target=loop.run, args=(lambda status: None,), daemon=True)
    worker.start()
    summary = ClerkSummary(requested=0)
    try:
        with station.read_uow() as uow:
            done = set(uow.session.scalars(select(Decision.rma_id).where(Decision.station_id == station_id)))
        todo = [r for r in json.loads(Path(rmas_file).read_text()) if r not in done]
        summary.requested = len(todo)
        rng = random.Random(f"{seed}-{station_id}")
        for rma_id in todo:
            process_return(station, rma_id, rng, seed, summary)
            loop.wake()
    finally:
        loop.stop()
        worker.join()
        station.close()
    # Everything out before leaving: central may be cut off right now, so keep trying.
    final = SyncLoop(settings.station_url, url, station_id)
    deadline = time.monotonic() + FINAL_SYNC_S
    try:
        while True:
            status = final.pass_once()
            # Done when all is out, or what is left is refused by central (reported by the check).
            if status.online and status.pending <= status.failed:
                break
            if time.monotonic() > deadline:
                print(f"{station_id}: {status.pending} events still waiting after {FINAL_SYNC_S:g} s: "
                      f"{status.message}", file=sys.stderr)
                return 3
            time.sleep(min(status.retry_in_s, 1.0))
    finally:
        final.close()
    print(json.dumps({"station": station_id, "processed": summary.processed, "errors": summary.errors[:5],
                      "decisions": dict(summary.decisions)}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`scripts/simulate-stations --stations N --returns M [--central URL] [--chaos] [--overlap P]`."""
    import argparse

    from console.config import load_settings

    parser = argparse.ArgumentParser(prog="scripts/simulate-stations",
                                     description="N station processes against one central, then the invariants")
    parser.add_argument("--stations", type=int, required=True)
    parser.add_argument("--returns", type=int, required=True, help="returns per station")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--overlap", type=float, default=0.02,
                        help="share of each station's parcels also worked at the next station (conflicts)")
    parser.add_argument("--chaos", action="store_true", help="kill stations (SIGKILL) and cut central off meanwhile")
    parser.add_argument("--central", metavar="URL",
                        help="the central database (default: RETURNS_CENTRAL_URL / the console's settings)")
    args = parser.parse_args(argv)
    try:
        report = simulate_stations(args.central or load_settings().central_url, args.stations, args.returns,
                                   seed=args.seed, overlap=args.overlap, chaos=args.chaos,
                                   log=lambda line: print(line, file=sys.stderr, flush=True))
    except EnvironmentProblem as exc:
        print(f"simulate-stations: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    if len(sys.argv) == 9 and sys.argv[1] == "--child":
        a = sys.argv[2:]
        raise SystemExit(_child(a[0], a[1], a[2], int(a[3]), a[4], int(a[5]), float(a[6])))
    raise SystemExit(main())
