"""Central sync benchmarks, against the real PostgreSQL (``RETURNS_BENCH_PG_URL``, default the
local server's ``test`` database; each benchmark works in a schema of its own, dropped after).

- push throughput: a station whose outbox holds N decision events (each as the services write
  one: the RMA, item, decision, decision line, deduction and risk assessment in full, the
  station, clerk, customer, order, line and shipment by key) pushed to a central that holds the
  orders, through the station's own login (central's door in force); beside it, in the same run,
  the rows central writes loaded by a raw psycopg ``COPY`` into another schema holding the same
  orders. Targets: push ≥ 10,000 decisions/s and ≥ 0.9 × COPY (the door must not cost the speed).
- pull: 100,000 rows changed at central pulled into an empty station. Target ≤ 5 s.
- catch-up: a station that worked 1,000 returns offline (``simulate clerk``: receipts, scans,
  grades, decisions, put-away, every event) syncs one pass (push, pull, conflicts). Target ≤ 2 s.
- GUI heartbeat while the console's sync worker pushes 10,000 decisions. Target ≤ 50 ms.
- 20 simulated stations against one central (``scripts/simulate-stations``): sustained decisions/s and
  p99 push latency (from the event's commit at the station to its commit at central).
"""
from __future__ import annotations

import os
import secrets
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from console.files import copy_sqlite

if TYPE_CHECKING:
    from scripts.dev.benchmarks.common import Row, Sizes

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
PUSH_TARGET = 10_000.0
# The door (central's functions and triggers, migration 0009) must not cost the speed: the push
# through a station's own login against a raw COPY of the same rows.
COPY_RATIO_TARGET = 0.9
PULL_TARGET_S = 5.0
CATCH_UP_TARGET_S = 2.0
GAP_TARGET_MS = 50.0
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def pg_base() -> str:
    return os.environ.get("RETURNS_BENCH_PG_URL", PG_DEFAULT)


@contextmanager
def pg_schema(label: str) -> Iterator[str]:
    """A fresh schema for one benchmark; the URL points at it; dropped afterwards."""
    import psycopg

    base = pg_base()
    name = f"rc_bench_{label}_{os.getpid()}_{secrets.token_hex(2)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={name}')}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# -- CPU time: the bench process, and a PostgreSQL server on this machine ---------------------

@dataclass
class CpuUse:
    """Seconds of CPU a step took: this process (every thread) and central's server processes
    (None when the server is not on this machine, or /proc cannot tell)."""
    seconds: float = 0.0
    here_s: float = 0.0
    central_s: float | None = None


def _local_postgres_cpu_s(url: str) -> float | None:
    """CPU seconds of every PostgreSQL process on this machine (backends, background writers,
    and those already ended, as their postmaster's children), if the URL names this machine."""
    from sqlalchemy.engine import make_url

    if make_url(url).host not in (None, "", "localhost", "127.0.0.1", "::1"):
        return None
    tick, total, found = os.sysconf("SC_CLK_TCK"), 0, False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # ended meanwhile, or not ours to read
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if name.startswith("postgres"):
            found = True
            total += sum(int(f) for f in fields[11:15])  # utime, stime, and of children reaped
    return total / tick if found else None


@contextmanager
def cpu_use(url: str) -> Iterator[CpuUse]:
    use = CpuUse()
    wall, here, central = time.perf_counter(), time.process_time(), _local_postgres_cpu_s(url)
    try:
        yield use
    finally:
        use.seconds = time.perf_counter() - wall
        use.here_s = time.process_time() - here
        after = _local_postgres_cpu_s(url) if central is not None else None
        use.central_s = after - central if central is not None and after is not None else None


# -- a station whose outbox holds N decision events ------------------------------------------

def decision_station(path: Path, count: int, station_id: str = "BENCH-01") -> Path:
    """Build (once; cached by the caller's path) a station with ``count`` decisions, each written
    with its outbox event the way the services write them (rows and event in the same database)."""
    from db.engine import make_engine
    from db.migrate import upgrade
    from db.models import (
        Customer, Decision, DecisionLine, Deduction, Order, OrderLine, ReturnAuthorization, ReturnItem,
        RiskAssessment, Shipment, Station, User,
    )
    from db.outbox import outbound_snapshot
    from db.uow import UnitOfWork

    if path.exists():
        return path
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    engine = make_engine(str(building))
    try:
        upgrade(engine)
        with UnitOfWork.for_engine(engine) as uow:
            s = uow.session
            station = Station(id=station_id, name="Bench", site="WH1", time_zone="UTC", created_at=T0)
            clerk = User(id=1, username="aiko", display_name="Aiko Tanaka", role="clerk", password_hash="!",
                         failed_attempts=0, active=True, created_at=T0)
            s.add_all([station, clerk])
            s.flush()
            for start in range(0, count, 1000):
                chunk = range(start + 1, min(count, start + 1000) + 1)
                objs: list[list[Any]] = []
                for i in chunk:
                    customer = Customer(id=i, name=f"Customer {i}", email=f"c{i}@example.com", phone="+1 555 0100",
                                        loyalty_tier="standard", country="US", address=f"{i} Main St\nSpringfield",
                                        orders_count=1, returns_count=1, created_at=T0)
                    order = Order(id=i, number=f"SO-{i:07d}", customer_id=i, channel="web", currency="USD",
                                  placed_at=T0, order_discount_minor=0, shipping_minor=0, shipping_tax_minor=0,
                                  payment_brand="visa", payment_last4="4242")
                    line = OrderLine(id=i, order_id=i, line_no=1, sku=f"SKU-{i % 5000}", gtin=None, title="Mug",
                                     category="home", quantity=1, unit_price_minor=2500, line_discount_minor=0,
                                     tax_minor=200, weight_g=400, serial_numbers=[])
                    shipment = Shipment(id=i, order_id=i, carrier="ups", tracking_number=f"1ZB{i:012d}",
                                        shipped_at=T0, delivered_at=T0 + timedelta(days=2), status="delivered",
                                        weight_g=450)
                    rma = ReturnAuthorization(id=i, number=f"RB-{i:08d}", order_id=i, channel="mail", status="closed",
                                              reason_code="changed_mind", created_at=T0 + timedelta(days=3),
                                              closed_at=T0 + timedelta(days=9), closed_by_id=1)
                    item = ReturnItem(id=i, rma_id=i, order_line_id=i, reason_code="changed_mind",
                                      reception_status="received", acceptance_status="accepted")
                    decision = Decision(id=uuid.uuid4(), rma_id=i, order_id=i, kind="partial_refund", status="approved",
                                        amount_minor=2400, store_credit_bonus_minor=0, shipping_refund_minor=0,
                                        currency="USD", refund_method="original_payment", policy_version="bench",
                                        review_reasons=[], decided_by_id=1, station_id=station_id,
                                        decided_at=T0 + timedelta(days=9))
                    dline = DecisionLine(decision_id=decision.id, return_item_id=i, paid_minor=2700, refund_minor=2400,
                                         grade="B", active=True)
                    deduction = Deduction(id=uuid.uuid4(), decision_id=decision.id, return_item_id=i, code="opened",
                                          label="Opened box", amount_minor=300)
                    risk = RiskAssessment(id=uuid.uuid4(), rma_id=i, score=12, signals=[], rules_version="bench",
                                          assessed_at=T0 + timedelta(days=9))
                    objs.append([customer, order, line, shipment, rma, item, decision, dline, deduction, risk])
                for group in zip(*objs):  # table by table: foreign keys hold at every flush
                    s.add_all(group)
                    s.flush()
                for row in objs:
                    # As console.rmas.add_event writes them: the order system's rows and the clerk by key.
                    rows = [outbound_snapshot(o) for o in row[4:]]
                    refs = {"stations": [station_id], "users": [clerk.id], "customers": [row[0].id],
                            "orders": [row[1].id], "order_lines": [row[2].id], "shipments": [row[3].id]}
                    uow.add_outbox("decision", str(row[6].id), {"station_id": station_id, "rows": rows, "refs": refs})
                s.flush()
            uow.commit()
    finally:
        engine.dispose()
    building.rename(path)
    return path


def _event_rows(station: Path) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Every row the outbox events carry or name by key, per table, each once (its last version)."""
    import json

    from sqlalchemy import select

    from db.engine import make_engine
    from db.models import Base
    from db.snapshot import restore_values

    tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    named: dict[str, set[Any]] = {}
    conn = sqlite3.connect(station)
    try:
        for (payload,) in conn.execute("SELECT payload FROM outbox ORDER BY id"):
            event = json.loads(payload)
            for row in event["rows"]:
                table, values = restore_values(row["table"], row["values"])
                key = tuple(values[c.name] for c in Base.metadata.tables[table.name].primary_key.columns)
                tables.setdefault(table.name, {})[key] = values
            for name, keys in event.get("refs", {}).items():
                named.setdefault(name, set()).update(keys)
    finally:
        conn.close()
    engine = make_engine(str(station))
    try:
        with engine.connect() as local:
            for name, keys in named.items():
                table = Base.metadata.tables[name]
                (pk,) = table.primary_key.columns
                for row in local.execute(select(table)).mappings():
                    if row[pk.name] in keys:
                        tables.setdefault(name, {}).setdefault((row[pk.name],), dict(row))
    finally:
        engine.dispose()
    return tables


# What central holds before any station pushes: the order system's data (central import-orders)
# and its users. A decision event names these rows by key; central only checks it has them.
REFERENCE_TABLES = frozenset({"stations", "users", "customers", "orders", "order_lines", "shipments"})


def copy_baseline(station: Path, url: str, tables: frozenset[str] | None = None, *, migrate: bool = True) -> CpuUse:
    """Time and CPU a raw psycopg COPY of the rows the events carry (``tables``: only those)
    takes into a schema at the current revision, tables in foreign-key order, one transaction."""
    import psycopg
    from sqlalchemy.engine import make_url

    from db.engine import make_engine
    from db.migrate import upgrade
    from db.models import Base

    if migrate:
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    rows = _event_rows(station)
    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    # CPU read before the connection closes: a backend that has ended is only counted once its
    # postmaster has reaped it.
    with psycopg.connect(dsn) as conn, cpu_use(url) as use:
        with conn.cursor() as cur:
            for table in Base.metadata.sorted_tables:
                if table.name not in rows or (tables is not None and table.name not in tables):
                    continue
                columns = [c.name for c in table.columns]
                with cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for values in rows[table.name].values():
                        copy.write_row([_pg_value(values.get(c)) for c in columns])
        conn.commit()
    return use


def _pg_value(value: Any) -> Any:
    import json

    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


# -- the benchmarks --------------------------------------------------------------------------

@contextmanager
def station_login(url: str, station_id: str) -> Iterator[str]:
    """Central prepared as ``central init`` does and a login issued to the station (``central
    station add``); the URL the station connects with. The login role is dropped afterwards."""
    import psycopg

    from db.central import add_station, init_central
    from db.engine import make_engine

    admin = make_engine(url)
    role = f"rc_bench_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        init_central(admin)
        add_station(admin, station_id, role=role)
    finally:
        admin.dispose()
    try:
        yield url.replace("postgres@", f"{role}@", 1) if "postgres@" in url else url
    finally:
        with psycopg.connect(pg_base(), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def bench_push(work: Path, cache: Path, decisions: int) -> list[Row]:
    """Central already holds the orders (as the order system's import put them there); beside
    it the same decisions into an empty central, where every row is new (informative)."""
    from scripts.dev.benchmarks.common import Row
    from db.engine import make_engine
    from db.push import push_once

    source = decision_station(cache / f"sync-decisions-{decisions}-refs.sqlite3", decisions)

    def push(url: str, name: str) -> CpuUse:
        copy = copy_sqlite(source, work / name)
        with station_login(url, "BENCH-01") as login_url:
            # Through the door, as a station does: its own login, central's triggers and functions.
            central, station = make_engine(login_url), make_engine(str(copy))
            try:
                with cpu_use(url) as use:
                    report = push_once(station, central, station_id="BENCH-01")
            finally:
                central.dispose()
                station.dispose()
        if report.pushed != decisions or report.failed:
            raise RuntimeError(f"push benchmark: {report.pushed} of {decisions} pushed, errors {report.errors[:2]}")
        return use

    decision_tables = frozenset(t for t in _event_rows(source) if t not in REFERENCE_TABLES)
    with pg_schema("push") as url, pg_schema("copy") as copy_url, pg_schema("cold") as cold_url:
        copy_baseline(source, url, REFERENCE_TABLES)  # central's orders, before the shift: not timed
        pushed = push(url, "push-station.sqlite3")
        copy_baseline(source, copy_url, REFERENCE_TABLES)
        copied = copy_baseline(source, copy_url, decision_tables, migrate=False)
        cold_s = push(cold_url, "push-cold-station.sqlite3").seconds
    rate, copy_rate, cold = decisions / pushed.seconds, decisions / copied.seconds, decisions / cold_s
    ratio = rate / copy_rate
    return [
        Row(f"push to central PostgreSQL ({decisions:,} decisions; central holds the orders)", round(rate),
            "decisions/s", PUSH_TARGET, "target", round(rate / PUSH_TARGET, 3), f"≥ {PUSH_TARGET:,.0f}/s",
            rate >= PUSH_TARGET),
        Row(f"push vs raw psycopg COPY of the rows central writes ({', '.join(sorted(decision_tables))})",
            round(rate), "decisions/s", round(copy_rate), "COPY", round(ratio, 3), f"ratio ≥ {COPY_RATIO_TARGET}",
            ratio >= COPY_RATIO_TARGET),
        Row("push into an empty central (every row of the events new)", round(cold), "decisions/s", None, "-",
            None, "informative", None),
    ] + _cpu_rows(pushed, copied, decisions)


def _cpu_rows(pushed: CpuUse, copied: CpuUse, decisions: int) -> list[Row]:
    """Where the push's time goes: CPU per decision, this process (the station's side: reading,
    parsing, checking, sending) and central's server, beside the raw COPY's. However well the
    two sides overlap, the cores cannot do more than their sum allows: the ceiling the push
    target meets on this machine."""
    from scripts.dev.benchmarks.common import Row

    if pushed.central_s is None or copied.central_s is None:
        return []  # central is elsewhere: its CPU cannot be read from here
    cores = os.cpu_count() or 1

    def per_decision(here_s: float, central_s: float) -> tuple[float, float, float]:
        here, central = here_s / decisions * 1e6, central_s / decisions * 1e6
        return here, central, cores * 1e6 / (here + central)

    here, central, ceiling = per_decision(pushed.here_s, pushed.central_s)
    copy_here, copy_central, copy_ceiling = per_decision(copied.here_s, copied.central_s)
    return [Row(f"CPU per pushed decision: station {here:.0f} + central {central:.0f} µs (raw COPY: client "
                f"{copy_here:.0f} + central {copy_central:.0f} µs)", round(here + central), "µs",
                round(copy_here + copy_central), "COPY", round((here + central) / (copy_here + copy_central), 2),
                f"informative: on {cores} cores at most {ceiling:,.0f}/s (COPY {copy_ceiling:,.0f}/s)", None)]


def bench_pull(work: Path, rows: int) -> list[Row]:
    import psycopg
    from sqlalchemy.engine import make_url

    from scripts.dev.benchmarks.common import Row
    from db.central import init_central
    from db.engine import make_engine
    from db.migrate import upgrade
    from db.pull import pull_once

    orders = rows // 2
    with pg_schema("pull") as url:
        central = make_engine(url)
        try:
            init_central(central)
        finally:
            central.dispose()
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO customers (id, name, email, loyalty_tier, country, orders_count, returns_count, "
                        "created_at) VALUES (1, 'Pat', 'pat@example.com', 'standard', 'US', 0, 0, now())")
            with cur.copy("COPY orders (id, number, customer_id, channel, currency, placed_at, order_discount_minor, "
                          "shipping_minor, shipping_tax_minor) FROM STDIN") as copy:
                for i in range(1, orders + 1):
                    copy.write_row((i, f"SO-{i:07d}", 1, "web", "USD", T0, 0, 0, 0))
            with cur.copy("COPY order_lines (id, order_id, line_no, sku, title, category, quantity, unit_price_minor, "
                          "line_discount_minor, tax_minor, weight_g, serial_numbers) FROM STDIN") as copy:
                for i in range(1, orders + 1):
                    copy.write_row((i, i, 1, f"SKU-{i % 5000}", "Mug", "home", 1, 2500, 0, 200, 400, "[]"))
            conn.commit()
        station = make_engine(str(work / "pull-station.sqlite3"))
        central = make_engine(url)
        try:
            upgrade(station)
            _settle(central)
            started = time.perf_counter()
            report = pull_once(station, central)
            pull_s = time.perf_counter() - started
        finally:
            station.dispose()
            central.dispose()
    if report.pulled != orders * 2 + 1:
        raise RuntimeError(f"pull benchmark: {report.pulled} rows pulled, {orders * 2 + 1} expected")
    return [Row(f"pull {orders * 2:,} changed rows from central into an empty station", round(pull_s, 3), "s",
                PULL_TARGET_S, "target", round(pull_s / PULL_TARGET_S, 3), f"≤ {PULL_TARGET_S:g} s",
                pull_s <= PULL_TARGET_S)]


def _settle(central: Any) -> None:
    """Wait for transactions older than now to end (the feed's horizon is server-wide)."""
    from sqlalchemy import text

    with central.begin() as conn:
        mine = int(conn.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
    for _ in range(1500):
        with central.connect() as conn:
            if int(conn.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
                   .scalar_one()) > mine:
                return
        time.sleep(0.02)


def bench_catch_up(work: Path, demo: Path, returns: int) -> list[Row]:
    from scripts.dev.benchmarks.common import Row
    from console.config import Settings
    from console.demo.clerk import simulate_clerk
    from console.station import Station
    from console.sync_runner import SyncLoop
    from db.engine import make_engine, sqlite_url

    copy = copy_sqlite(demo, work / "offline-shift.sqlite3")
    with pg_schema("catchup") as url:
        settings = Settings(data_dir=work, config_file=work / "config.toml", station_db=copy, central_url=url,
                            user="aiko")
        from db.central import init_central

        central = make_engine(url)
        try:
            init_central(central)  # as an admin would, once
        finally:
            central.dispose()
        # Central holds what the station got from it: the order system's orders and their RMAs
        # (import-orders, then the pull); not timed.
        seed_central_from_station(copy, url, CENTRAL_SOURCED)
        loop = SyncLoop(sqlite_url(copy), url, settings.station_id)
        try:
            loop.pass_once()  # in sync before the shift: not timed
            station = Station.open(settings)
            try:
                summary = simulate_clerk(station, returns, seed=5)  # the shift, central never asked
            finally:
                station.close()
            events = _pending(copy)
            _settle(loop.central)
            started = time.perf_counter()
            status = loop.pass_once()
            took = time.perf_counter() - started
        finally:
            loop.close()
    if not status.online or status.pending:
        raise RuntimeError(f"catch-up: {status.message}")
    return [Row(f"catch-up after an offline shift ({summary.processed:,} returns decided, {events:,} events)",
                round(took, 3), "s", CATCH_UP_TARGET_S, "target", round(took / CATCH_UP_TARGET_S, 3),
                f"≤ {CATCH_UP_TARGET_S:g} s", took <= CATCH_UP_TARGET_S)]


CENTRAL_SOURCED = ("stations", "users", "customers", "orders", "order_lines", "shipments", "carrier_events",
                   "return_authorizations", "parcel_receipts", "return_items", "policy_versions")


def seed_central_from_station(station: Path, url: str, tables: tuple[str, ...]) -> None:
    """Copy ``tables`` of a station file into central with COPY, users without credentials."""
    import psycopg
    from psycopg.types.json import Json
    from sqlalchemy import JSON, select
    from sqlalchemy.engine import make_url

    from db.engine import make_engine
    from db.models import Base

    from db.migrate import ensure_at_head

    engine = make_engine(str(station))
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        ensure_at_head(engine)
        with engine.connect() as local, psycopg.connect(dsn) as conn, conn.cursor() as cur:
            for table in Base.metadata.sorted_tables:
                if table.name not in tables:
                    continue
                names = [c.name for c in table.columns]
                wrap = [isinstance(c.type, JSON) for c in table.columns]
                with cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in local.execute(select(*table.columns)):
                        values = [Json(v) if w and v is not None else v for v, w in zip(row, wrap)]
                        if table.name == "users":
                            values[names.index("password_hash")] = "!"
                        copy.write_row(values)
            conn.commit()
    finally:
        engine.dispose()


def _pending(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])
    finally:
        conn.close()


def bench_gui_during_sync(work: Path, cache: Path, decisions: int) -> list[Row]:
    from PySide6.QtCore import QTimer, Qt

    from scripts.dev.benchmarks.common import Row, percentile
    from scripts.dev.benchmarks.window import _app, spin_until
    from console.config import Settings
    from console.station import Station
    from ui.app import freeze_startup_garbage, make_window

    source = decision_station(cache / f"sync-decisions-{decisions}-refs.sqlite3", decisions)
    copy = copy_sqlite(source, work / "gui-station.sqlite3")
    beats: list[int] = []
    with pg_schema("gui") as url:
        from db.central import init_central
        from db.engine import make_engine

        central = make_engine(url)
        try:
            init_central(central)
        finally:
            central.dispose()
        settings = Settings(data_dir=work, config_file=work / "config.toml", station_db=copy, central_url=url,
                            user="aiko", station_id="BENCH-01", sounds=False)
        station = Station.open(settings)
        _app()
        try:
            window = make_window(station, sync=True)
            statuses: list[Any] = []
            assert window.sync is not None
            window.sync.status_changed.connect(statuses.append)
            timer = QTimer()
            timer.setTimerType(Qt.TimerType.PreciseTimer)
            timer.setInterval(16)
            timer.timeout.connect(lambda: beats.append(time.perf_counter_ns()))
            window.show()
            freeze_startup_garbage()
            timer.start()
            done = spin_until(lambda: any(s.online and s.pending == 0 and s.pushed for s in statuses)
                              or any(s.online and s.pending == 0 for s in statuses[1:]), timeout_s=600)
            timer.stop()
            window.close()
            window.deleteLater()
        finally:
            station.close()
    if not done:
        raise RuntimeError("GUI benchmark: the sync worker never finished: "
                           + (statuses[-1].message if statuses else "no status"))
    gaps = [(b - a) / 1e6 for a, b in zip(beats, beats[1:])]
    longest = max(gaps)
    # Events pushed: the decisions, plus the audit event of the station starting under its policy.
    pushed = sum(s.pushed for s in statuses)
    return [
        Row(f"GUI heartbeat longest gap while the sync worker pushes {decisions:,} decisions ({pushed:,} events)", round(longest, 3), "ms",
            GAP_TARGET_MS, "target", round(longest / GAP_TARGET_MS, 3), f"≤ {GAP_TARGET_MS:g} ms",
            longest <= GAP_TARGET_MS),
        Row(f"GUI heartbeat p99 gap during that sync ({len(gaps)} beats)", round(percentile(gaps, 99), 3), "ms",
            None, "-", None, "informative", None),
    ]


def bench_stations(work: Path, stations: int, returns: int) -> list[Row]:
    from scripts.dev.benchmarks.common import Row
    from tests.tools.simulate_stations import simulate_stations

    with pg_schema("stations") as url:
        report = simulate_stations(url, stations, returns, seed=3, work_dir=work / "sim")
    bad = [name for name, ok in report["invariants"].items() if not ok]
    what = f"{stations} stations × {returns} returns, {report['decisions']:,} decisions, {report['conflicts']} conflicts"
    if bad:
        what += ", INVARIANTS BROKEN: " + "; ".join(bad)
    return [
        Row(f"simulated stations against one central ({what})", report["decisions_per_s"], "decisions/s", None, "-",
            None, "informative", None),
        Row("simulated stations: p99 push latency (event committed at the station → at central)",
            report["push_latency_ms"]["p99"], "ms", None, "-", None, "informative", None),
    ]


def bench_sync(path: Path, sizes: Sizes) -> list[Row]:
    from scripts.dev.benchmarks.common import QUICK, cache_dir, bench_database

    full = sizes.orders >= 1_000_000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="rc-bench-sync-") as tmp:
        work = Path(tmp)
        cache = cache_dir()
        (work / "sim").mkdir()
        rows += bench_push(work, cache, 20_000 if full else 2_000)
        rows += bench_pull(work, 100_000 if full else 10_000)
        rows += bench_catch_up(work, bench_database(QUICK.orders), 1_000 if full else 100)
        rows += bench_gui_during_sync(work, cache, 10_000 if full else 1_000)
        rows += bench_stations(work, 20 if full else 4, 25 if full else 10)
    return rows
