"""The outbox push under faults, against the real PostgreSQL server.

Duplicate and concurrent pushes, a station killed (SIGKILL) after central committed and before it
could mark the events sent, a sync worker killed at random over and over, central's backend
terminated or the connection reset mid-push, central unreachable or black-holed behind a proxy
(``console/tcp_proxy.py``; a black hole is ``db.watchdog``'s case), and an offline shift caught up
in one go. Every test ends with the same questions: does central hold every decision the station
committed exactly once, was no event applied twice (central's own later edits survive a
re-delivery), and does the station know no more than central committed?

``RETURNS_TEST_QUICK=1``: 20 random kills instead of 150.

Stations are copies (SQLite backup API) of one template per module with many orders, so each
test has items enough for hundreds of decisions.
"""
from __future__ import annotations

import multiprocessing
import os
import random
import select as io_select
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

import db.push.pipeline
from console.errors import EnvironmentProblem
from db.engine import make_engine
from db.migrate import upgrade
from db.models import (
    AppliedEvent,
    Customer,
    Decision,
    DecisionLine,
    Deduction,
    Order,
    OrderLine,
    OutboxRow,
    ReturnAuthorization,
    ReturnItem,
    Shipment,
    Station,
    User,
)
from db.push import SyncReport, ensure_central_schema, pending_count, push_once
from db.uow import UnitOfWork
from db.watchdog import deadline, guard_engine
from console.files import copy_sqlite
from tests.tools.tcp_proxy import TcpProxy
from tests.sync.test_sync import PRICE, T0, count, payload

pytestmark = [
    pytest.mark.postgres,
    # Python 3.12+ warns on fork() in a process with threads; the children here never use a
    # lock or a connection they inherited (each builds its own engines).
    pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning"),
]

STATION = "WH1-01"
ORDERS = 400  # 1,200 return items: room for every decision one test makes
DECIDED = 600  # decisions in the pre-decided template
FAST = {"connect_timeout": "2", "tcp_user_timeout": "2000"}  # a dead link fails in seconds
QUICK = os.environ.get("RETURNS_TEST_QUICK") == "1"
FORK = multiprocessing.get_context("fork")


# --- stations with many orders ----------------------------------------------------------------
# Order o has three lines (ids 3(o-1)+1..3) and three return items 100*o+1..3 on RMA o, like the
# one order of tests.sync.test_sync.make_station (whose items 101..103 are order 1's here).

def item_ids(orders: int = ORDERS) -> list[int]:
    return [100 * o + k for o in range(1, orders + 1) for k in (1, 2, 3)]


def build_station(path: Path, station_id: str = STATION, orders: int = ORDERS) -> Engine:
    engine = make_engine(str(path))
    upgrade(engine)
    with UnitOfWork.for_engine(engine) as uow:
        s = uow.session
        s.add(Station(id=station_id, name=f"Bench {station_id}"))
        s.add(User(id=1, username="aiko", display_name="Aiko", role="clerk", password_hash="x"))
        s.add(Customer(id=1, name="Ada Lovelace", email="ada@example.com", created_at=T0))
        s.flush()
        s.add_all([Order(id=o, number=f"SO-{1000000 + o}", customer_id=1, currency="USD", placed_at=T0)
                   for o in range(1, orders + 1)])
        s.flush()
        s.add_all([OrderLine(id=3 * (o - 1) + k, order_id=o, line_no=k, sku=f"SKU-{100 + k}",
                             title=f"Thing {100 + k}", category="home", quantity=1,
                             unit_price_minor=PRICE[100 + k], serial_numbers=[f"SN{100 * o + k}"])
                   for o in range(1, orders + 1) for k in (1, 2, 3)])
        s.add_all([Shipment(id=o, order_id=o, carrier="ups", tracking_number=f"1Z{o:08d}", shipped_at=T0)
                   for o in range(1, orders + 1)])
        s.add_all([ReturnAuthorization(id=o, number=f"R-{o:08d}", order_id=o, reason_code="changed_mind",
                                       created_at=T0) for o in range(1, orders + 1)])
        s.flush()
        s.add_all([ReturnItem(id=100 * o + k, rma_id=o, order_line_id=3 * (o - 1) + k,
                              reason_code="changed_mind")
                   for o in range(1, orders + 1) for k in (1, 2, 3)])
        uow.commit()
    return engine


def decide_items(engine: Engine, items: list[int], *, station_id: str = STATION) -> list[uuid.UUID]:
    """One decision per item, each in its own transaction with its outbox event (as the services
    write them); the event carries the decision's rows and the rows of its order it refers to."""
    ids: list[uuid.UUID] = []
    with UnitOfWork.for_engine(engine) as uow:
        s = uow.session
        keep: dict[Any, Any] = {}  # strong references: the identity map holds loaded rows weakly
        common = [s.get(Station, station_id), s.get(User, 1), s.get(Customer, 1)]
        for item in items:
            order, k = divmod(item, 100)
            if order not in keep:
                keep[order] = [
                    s.get(Order, order),
                    *(s.get(OrderLine, 3 * (order - 1) + j) for j in (1, 2, 3)),
                    s.get(Shipment, order), s.get(ReturnAuthorization, order),
                    *(s.get(ReturnItem, 100 * order + j) for j in (1, 2, 3)),
                ]
            price = PRICE[100 + k]
            decision = Decision(id=uuid.uuid4(), rma_id=order, order_id=order, kind="partial_refund",
                                status="approved", amount_minor=price - 300, currency="USD",
                                policy_version="2026.1", decided_by_id=1, station_id=station_id,
                                decided_at=T0, review_reasons=[])  # approved at the bench: no review reason
            line = DecisionLine(decision=decision, return_item_id=item, paid_minor=price,
                                refund_minor=price - 300, grade="B")
            deduction = Deduction(id=uuid.uuid4(), decision=decision, return_item_id=item, code="opened",
                                  label="Opened box", amount_minor=300)
            s.add(decision)
            s.flush()
            uow.add_outbox("decision", str(decision.id),
                           payload(station_id, [*common, *keep[order], decision, line, deduction]))
            uow.commit()
            ids.append(decision.id)
    return ids


def copy_station(template: Path, dest: Path) -> Engine:
    """A copy of a station file made with SQLite's backup API (consistent even while in use)."""
    return make_engine(str(copy_sqlite(template, dest)))


def undecided(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        taken = set(conn.execute(select(DecisionLine.return_item_id)).scalars())
    return [item for item in item_ids() if item not in taken]


def integrity(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql("PRAGMA integrity_check").scalars())


def outbox_state(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(OutboxRow.__table__).order_by(OutboxRow.id))]


def event_ids(engine: Engine, *, sent: bool | None = None) -> set[uuid.UUID]:
    query = select(OutboxRow.event_id)
    if sent is not None:
        query = query.where(OutboxRow.sent_at.is_not(None) if sent else OutboxRow.sent_at.is_(None))
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def applied_ids(central: Engine) -> set[uuid.UUID]:
    with central.connect() as conn:
        return set(conn.execute(select(AppliedEvent.event_id)).scalars())


def applied_ids_direct(url: str) -> set[uuid.UUID]:
    """Central's applied events read past the proxy (psycopg, straight to the server)."""
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT event_id FROM applied_events")}


CENTRAL_NOTE = "edited at central"


def edit_at_central(central: Engine) -> set[uuid.UUID]:
    """Central changes every decision it holds after applying it (as a supervisor's note would).
    A later re-application of the same event would put the station's copy back (note NULL): the
    edit survives only if each event is applied once. Returns every decision now edited."""
    with central.begin() as conn:
        conn.execute(update(Decision).where(Decision.note.is_(None)).values(note=CENTRAL_NOTE))
        return set(conn.execute(select(Decision.id).where(Decision.note == CENTRAL_NOTE)).scalars())


def assert_not_reapplied(central: Engine, edited: set[uuid.UUID]) -> None:
    with central.connect() as conn:
        plain = set(conn.execute(select(Decision.id).where(Decision.note.is_distinct_from(CENTRAL_NOTE))).scalars())
    overwritten = plain & edited
    assert edited and overwritten == set(), f"{len(overwritten)} event(s) applied again"


def assert_converged(station: Engine, central: Engine) -> None:
    """Every decision the station committed is in central exactly once, with its line and
    deduction; every event applied once; nothing pending; the station file sound."""
    with station.connect() as conn:
        decisions = list(conn.execute(select(Decision.id)).scalars())
        lines = sorted(conn.execute(select(DecisionLine.decision_id, DecisionLine.return_item_id)).all())
        deductions = sorted(conn.execute(select(Deduction.id)).scalars())
        events = list(conn.execute(select(OutboxRow.event_id)).scalars())
    with central.connect() as conn:
        central_decisions = list(conn.execute(select(Decision.id)).scalars())
        central_lines = sorted(conn.execute(select(DecisionLine.decision_id, DecisionLine.return_item_id)).all())
        central_deductions = sorted(conn.execute(select(Deduction.id)).scalars())
        applied = list(conn.execute(select(AppliedEvent.event_id)).scalars())
        statuses = set(conn.execute(select(Decision.status)).scalars())
    assert len(central_decisions) == len(set(central_decisions)) == len(decisions)
    assert set(central_decisions) == set(decisions)
    assert central_lines == lines and central_deductions == deductions
    assert len(applied) == len(set(applied)) == len(events) and set(applied) == set(events)
    assert statuses <= {"approved"}  # no decision was turned into a conflict with itself
    assert pending_count(station) == 0
    assert count(station, OutboxRow, OutboxRow.attempts > 0) == 0
    assert integrity(station) == ["ok"]


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def station_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "station.sqlite3"
    build_station(path).dispose()
    return path


@pytest.fixture(scope="module")
def decided_template(station_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with DECIDED decisions queued (items of orders 1..DECIDED/3)."""
    path = tmp_path_factory.mktemp("decided") / "station.sqlite3"
    engine = copy_station(station_template, path)
    try:
        decide_items(engine, item_ids()[:DECIDED])
    finally:
        engine.dispose()
    return path


@pytest.fixture
def central_url(pg_url: str) -> str:
    return f"{pg_url}&connect_timeout=2&tcp_user_timeout=2000"


@pytest.fixture
def central(central_url: str) -> Iterator[Engine]:
    engine = make_engine(central_url)
    ensure_central_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def station_copy(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """``station_copy(template, name="station.sqlite3")``: a copy in tmp_path, disposed at the end."""
    made: list[Engine] = []

    def make(template: Path, name: str = "station.sqlite3") -> Engine:
        made.append(copy_station(template, tmp_path / name))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy() as p:
        yield p
    assert not p.alive and p.open_connections == 0


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before]
    for t in leaked:
        t.join(timeout=5)
    assert [t.name for t in leaked if t.is_alive()] == []


def _run_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc
        box["ended"] = time.monotonic()
        box["elapsed"] = box["ended"] - started

    thread = threading.Thread(target=run, name="push", daemon=True)
    thread.start()
    return thread, box


# --- a. the same batch pushed three times, twice at once --------------------------------------

def test_same_batch_pushed_three_times_twice_concurrently_lands_once(
        decided_template: Path, tmp_path: Path, central: Engine, central_url: str,
        station_copy: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    station = station_copy(decided_template)
    # Yesterday's backup of the station: it will push the same events a third time.
    backup = station_copy(decided_template, "backup.sqlite3")
    start = threading.Barrier(2, timeout=30)
    # Neither push may acknowledge a batch before the other has pushed it too: both really push
    # the same events, whatever the timing.
    acks = threading.Barrier(2, timeout=30)
    real_mark_sent = db.push.pipeline.mark_sent

    def mark_sent_together(*args: Any, **kwargs: Any) -> None:
        acks.wait()
        real_mark_sent(*args, **kwargs)

    monkeypatch.setattr(db.push.pipeline, "mark_sent", mark_sent_together)
    reports: list[SyncReport] = []
    errors: list[BaseException] = []

    def push() -> None:
        st = make_engine(str(tmp_path / "station.sqlite3"))
        ce = make_engine(central_url)
        try:
            start.wait()
            reports.append(push_once(st, ce, batch_size=100, station_id=STATION))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            start.abort()
            acks.abort()
        finally:
            st.dispose()
            ce.dispose()

    threads = [threading.Thread(target=push, name=f"push-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    monkeypatch.undo()

    assert all(r.failed == 0 and r.errors == [] and r.pending_after == 0 for r in reports)
    assert sum(r.pushed for r in reports) == DECIDED  # each event applied by exactly one of them
    assert sum(r.skipped_duplicates for r in reports) == DECIDED  # and recognised by the other

    edited = edit_at_central(central)
    third = push_once(backup, central, batch_size=100, station_id=STATION)
    assert (third.pushed, third.skipped_duplicates, third.failed, third.pending_after) == (0, DECIDED, 0, 0)
    assert count(central, Decision) == count(central, DecisionLine) == count(central, Deduction) == DECIDED
    assert applied_ids(central) == event_ids(station) == event_ids(backup)
    assert_not_reapplied(central, edited)
    assert_converged(station, central)
    assert_converged(backup, central)


# --- b. lost acknowledgement: SIGKILL between central's commit and the station's mark ---------

def _push_then_die_before_marking(station_path: str, central_url: str) -> None:
    station, central = make_engine(station_path), make_engine(central_url)

    def die(*_args: Any, **_kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    db.push.pipeline.mark_sent = die  # type: ignore[assignment] - this child only
    push_once(station, central, batch_size=1000, station_id=STATION)
    os._exit(3)  # not reached: SIGKILL came first


def test_sigkill_after_central_commit_converges_without_duplicates(
        decided_template: Path, tmp_path: Path, central: Engine, central_url: str,
        station_copy: Callable[..., Engine]) -> None:
    path = tmp_path / "station.sqlite3"
    station = station_copy(decided_template)
    station.dispose()  # no open station connection is carried into the child
    child = FORK.Process(target=_push_then_die_before_marking, args=(str(path), central_url))
    child.start()
    child.join(timeout=60)
    code = child.exitcode
    if code is None:
        child.kill()
        child.join()
    child.close()
    assert code == -signal.SIGKILL, f"the pushing child exited {code}, not by SIGKILL"

    # Central committed every event; the station never heard back.
    assert count(central, Decision) == count(central, AppliedEvent) == DECIDED
    assert pending_count(station) == DECIDED
    assert applied_ids(central) == event_ids(station, sent=False)
    assert integrity(station) == ["ok"]

    edited = edit_at_central(central)
    later = decide_items(station, undecided(station)[:1])
    report = push_once(station, central, station_id=STATION)

    assert (report.pushed, report.skipped_duplicates, report.failed, report.pending_after) == (1, DECIDED, 0, 0)
    assert count(central, Decision, Decision.id == later[0]) == 1
    assert_not_reapplied(central, edited)
    assert_converged(station, central)


# --- c. random SIGKILLs of a sync worker ------------------------------------------------------

def _push_loop(station_path: str, central_url: str, batch_size: int, marks: int, mode: str) -> None:
    """The child: a sync worker pushing in a loop. Writes one byte to ``marks`` at each step:
    P push_once called, B a central transaction begins, C its commit is issued, M central has
    committed a batch (the acknowledgement starts), A the station marked the batch sent, R push_once
    returned. ``mode``: "connect" (connect and exit: start-up time), "drain" (push until nothing
    is pending, then exit 0), "loop" (until killed)."""
    station, central = make_engine(station_path), make_engine(central_url)
    event.listen(central, "begin", lambda _conn: os.write(marks, b"B"))
    event.listen(central, "commit", lambda _conn: os.write(marks, b"C"))
    real_mark_sent = db.push.pipeline.mark_sent

    def marking(*args: Any, **kwargs: Any) -> None:
        os.write(marks, b"M")
        real_mark_sent(*args, **kwargs)
        os.write(marks, b"A")

    db.push.pipeline.mark_sent = marking  # type: ignore[assignment] - this child only
    if mode == "connect":
        with central.connect():
            pending_count(station)
        os._exit(0)
    while True:
        os.write(marks, b"P")
        report = push_once(station, central, batch_size=batch_size, station_id=STATION)
        os.write(marks, b"R")
        if report.pending_after == 0:
            if mode == "drain":
                os._exit(0)
            time.sleep(0.01)


def _drain(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def _read_until(fd: int, mark: bytes, timeout: float) -> bytes:
    """What the worker reports until it reports ``mark`` (or ``timeout`` passes)."""
    out = b""
    give_up = time.monotonic() + timeout
    while mark not in out and (left := give_up - time.monotonic()) > 0:
        if io_select.select([fd], [], [], left)[0]:
            out += _drain(fd)
    return out


BEFORE, INSIDE, UNACKED, AFTER = ("before its first central transaction", "inside a central transaction",
                                  "central committed, station not yet marked", "after an acknowledgement")


def _phase(marks: bytes) -> str:
    """Where a kill landed, from the steps the worker had reached."""
    last = marks.rstrip(b"P")[-1:]  # a push just begun is where the last one ended
    if b"B" not in marks:
        return BEFORE
    return {b"B": INSIDE, b"C": INSIDE, b"M": UNACKED, b"A": AFTER, b"R": AFTER}[last]


@pytest.mark.slow
def test_random_sigkills_of_a_pushing_worker_lose_and_duplicate_nothing(
        station_template: Path, tmp_path: Path, central: Engine, central_url: str) -> None:
    kills = 20 if QUICK else 150
    rng = random.Random(20261125)
    path = tmp_path / "station.sqlite3"
    station = copy_station(station_template, path)
    free = iter(undecided(station))
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    phases: dict[str, int] = {}
    edited: set[uuid.UUID] = set()
    began = time.monotonic()

    def run_child(mode: str, batch_size: int = 5) -> multiprocessing.process.BaseProcess:
        station.dispose()  # no open station connection is carried into the child
        child = FORK.Process(target=_push_loop, args=(str(path), central_url, batch_size, write_fd, mode),
                             daemon=True)
        child.start()
        return child

    def finish(child: multiprocessing.process.BaseProcess, timeout: float = 30) -> int | None:
        child.join(timeout=timeout)
        code = child.exitcode
        if code is None:
            child.kill()
            child.join()
        child.close()
        return code

    try:
        # How long the worker takes to start, and to push one event, here and now.
        started = time.monotonic()
        assert finish(run_child("connect")) == 0
        startup = time.monotonic() - started
        backlog = 60
        decide_items(station, [next(free) for _ in range(backlog)])
        started = time.monotonic()
        assert finish(run_child("drain")) == 0
        per_event = calibrated = max(1e-4, (time.monotonic() - started - startup) / backlog)
        assert pending_count(station) == 0
        _drain(read_fd)

        for round_no in range(kills):
            new = rng.randint(0, 8)
            if new:
                decide_items(station, [next(free) for _ in range(new)])
            # Kills spread over the worker's start-up, its push, and the idle time after it; the
            # estimate of a push's length follows what the rounds show (central grows, the
            # machine is busy or not). Some kills go in as soon as the worker reports that
            # central committed a batch: the few milliseconds before the station marks it sent
            # are too short a window for chance alone to hit it often.
            push = pending_count(station) * per_event
            window = rng.choices(("start-up", "push", "after", "at an ack"), weights=(2, 4, 2.5, 1.5))[0]
            # Called at once, in this turn of the loop: each lambda sees this turn's push.
            delay = {"start-up": lambda: rng.uniform(0, startup),
                     "push": lambda: rng.uniform(startup, startup + push),  # noqa: B023
                     "after": lambda: rng.uniform(startup + push, startup + 2 * push + 0.03),  # noqa: B023
                     "at an ack": lambda: startup + 2 * push + 0.5}[window]()  # noqa: B023
            child = run_child("loop", batch_size=rng.choice((1, 3, 5, 8)))
            marks = b""
            try:
                if window == "at an ack":
                    marks = _read_until(read_fd, b"M", delay)
                else:
                    time.sleep(delay)
                still_running = child.exitcode is None
                child.kill()
            finally:
                code = finish(child)
            assert still_running and code == -signal.SIGKILL, f"round {round_no}: worker exited {code}"
            if window == "after" and pending_count(station):
                per_event *= 1.25  # the push was slower than thought
            elif window == "push" and not pending_count(station):
                per_event *= 0.9
            phase = _phase(marks + _drain(read_fd))
            phases[phase] = phases.get(phase, 0) + 1

            # The station never knows more than central committed, and central holds nothing
            # the station did not send.
            sent, every, applied = event_ids(station, sent=True), event_ids(station), applied_ids(central)
            assert sent <= applied <= every, f"round {round_no} ({phase})"
            if edited:  # no event central already had was applied again by this worker
                assert_not_reapplied(central, edited)
            edited = edit_at_central(central)
        killing = time.monotonic() - began

        report = push_once(station, central, batch_size=50, station_id=STATION)
        assert report.failed == 0 and report.pending_after == 0
        assert_not_reapplied(central, edited)
        assert_converged(station, central)
    finally:
        os.close(read_fd)
        os.close(write_fd)
        station.dispose()
    print(f"\n{kills} kills in {killing:.1f} s (start-up {startup * 1000:.0f} ms, "
          f"{calibrated * 1000:.2f} ms per event at first, {per_event * 1000:.2f} at the end); "
          f"{count(central, Decision)} decisions; kills landed: {phases}")
    if kills >= 150:  # enough kills that each window must have been hit
        assert phases.get(BEFORE, 0) >= 3 and phases.get(INSIDE, 0) >= 3
        assert phases.get(UNACKED, 0) >= 5 and phases.get(AFTER, 0) >= 3


# --- d. central's backend terminated mid-push -------------------------------------------------

def test_backend_terminated_mid_push_fails_fast_and_the_next_push_converges(
        decided_template: Path, central: Engine, pg_url: str, station_copy: Callable[..., Engine]) -> None:
    station = station_copy(decided_template)
    pids: set[int] = set()

    def remember_backend(dbapi_connection: Any, _record: Any) -> None:
        pids.add(dbapi_connection.info.backend_pid)

    # Only this engine's own sessions can be terminated: their pids, recorded as they connect.
    central.dispose()
    event.listen(central, "connect", remember_backend)
    thread, box = _run_in_thread(lambda: push_once(station, central, batch_size=20, station_id=STATION))
    terminated_at = None
    with psycopg.connect(pg_url, autocommit=True) as admin:
        deadline_at = time.monotonic() + 30
        while thread.is_alive() and time.monotonic() < deadline_at:
            # At least one batch acknowledged, and the session inside its next transaction.
            if pending_count(station) < DECIDED and pids:
                row = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s) "
                    "AND application_name = 'returns-console' AND datname = current_database() "
                    "AND xact_start IS NOT NULL AND pid <> pg_backend_pid()", [list(pids)]).fetchone()
                if row and row[0]:
                    terminated_at = time.monotonic()
                    break
            time.sleep(0.002)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert terminated_at is not None, f"push ended before it could be hit: {box}"

    assert isinstance(box.get("error"), EnvironmentProblem), box
    assert "lost the connection" in box["error"].message
    assert box["ended"] - terminated_at < 2
    sent, applied = event_ids(station, sent=True), applied_ids(central)
    assert sent <= applied  # nothing marked sent that central did not commit
    assert 0 < len(applied) < DECIDED  # it was hit mid-push
    assert count(station, OutboxRow, OutboxRow.attempts > 0) == 0  # the connection, not the events
    lost_acks = len(applied - sent)
    edited = edit_at_central(central)

    report = push_once(station, central, batch_size=20, station_id=STATION)
    assert (report.pushed, report.skipped_duplicates, report.failed) == (
        DECIDED - len(applied), lost_acks, 0)
    assert_not_reapplied(central, edited)
    assert_converged(station, central)


def test_connection_reset_mid_push_fails_fast_and_the_next_push_converges(
        decided_template: Path, tmp_path: Path, pg_url: str, proxy: TcpProxy) -> None:
    station = copy_station(decided_template, tmp_path / "station.sqlite3")
    central = make_engine(proxy.url(pg_url, **FAST))
    ensure_central_schema(central)
    try:
        thread, box = _run_in_thread(lambda: push_once(station, central, batch_size=20, station_id=STATION))
        give_up = time.monotonic() + 30
        while pending_count(station) == DECIDED and thread.is_alive() and time.monotonic() < give_up:
            time.sleep(0.002)
        proxy.close_all()  # RST on the push's connection, one batch or more in
        reset_at = time.monotonic()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert isinstance(box.get("error"), EnvironmentProblem), box
        assert "lost the connection" in box["error"].message
        assert box["ended"] - reset_at < 2
        sent, applied = event_ids(station, sent=True), applied_ids(central)
        assert sent <= applied and 0 < len(applied) < DECIDED
        edited = edit_at_central(central)

        report = push_once(station, central, batch_size=100, station_id=STATION)
        assert (report.pushed, report.skipped_duplicates, report.failed) == (
            DECIDED - len(applied), len(applied - sent), 0)
        assert_not_reapplied(central, edited)
        assert_converged(station, central)
    finally:
        central.dispose()
        station.dispose()


# --- e. central unreachable or black-holed ----------------------------------------------------

def test_dropped_and_stalled_network_fail_fast_then_converge(
        station_template: Path, tmp_path: Path, pg_url: str, proxy: TcpProxy) -> None:
    station = copy_station(station_template, tmp_path / "station.sqlite3")
    items = iter(undecided(station))
    url = proxy.url(pg_url, **FAST)
    central = make_engine(url)
    ensure_central_schema(central)  # through the proxy while it passes
    try:
        decide_items(station, [next(items) for _ in range(5)])
        assert push_once(station, central, station_id=STATION).pushed == 5  # a pooled connection now

        proxy.set_mode("drop")  # the open connection is reset, new ones too
        decide_items(station, [next(items) for _ in range(5)])
        before = outbox_state(station)
        started = time.monotonic()
        with pytest.raises(EnvironmentProblem, match="is unreachable"):
            push_once(station, central, station_id=STATION)
        assert time.monotonic() - started < 5
        assert outbox_state(station) == before

        proxy.set_mode("stall")  # connecting hangs: connect_timeout (2 s) must end it
        fresh = make_engine(url)
        try:
            started = time.monotonic()
            with pytest.raises(EnvironmentProblem, match="is unreachable"):
                push_once(station, fresh, station_id=STATION)
            elapsed = time.monotonic() - started
        finally:
            fresh.dispose()
        # Not a speed target: the bounds tell which mechanism ended the wait. Above 1.5 s, the
        # stall really held the connect until connect_timeout (2 s) cut it; below 4 s, nothing else
        # waited on (the alternative is waiting for ever). Load only lengthens it, by far less.
        assert 1.5 < elapsed < 4, elapsed
        assert outbox_state(station) == before

        proxy.set_mode("pass")
        report = push_once(station, central, station_id=STATION)
        assert (report.pushed, report.skipped_duplicates, report.failed, report.pending_after) == (5, 0, 0, 0)
        with central.connect() as conn:
            assert conn.execute(text("SHOW application_name")).scalar() == "returns-console"
        assert_converged(station, central)
    finally:
        central.dispose()
        station.dispose()


def test_deadline_cuts_a_call_stalled_mid_flight(pg_url: str, proxy: TcpProxy) -> None:
    engine = make_engine(proxy.url(pg_url, **FAST))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            proxy.set_mode("stall")
            started = time.monotonic()
            with pytest.raises(OperationalError) as info, deadline(conn, 1.0) as d:
                conn.execute(text("SELECT pg_sleep(30)"))
            elapsed = time.monotonic() - started
            assert 0.9 < elapsed < 2.5, elapsed
            assert d.fired and conn.invalidated  # SQLAlchemy saw a disconnect: never pooled again
            assert "closed" in str(info.value.orig)
        proxy.set_mode("pass")
        with engine.connect() as conn:  # the pool connects anew
            assert conn.execute(text("SELECT 2")).scalar() == 2
            proxy.set_mode("stall")
            # Stuck sending, not waiting for an answer: 30 MB fill every buffer on the way.
            started = time.monotonic()
            with pytest.raises(OperationalError), deadline(conn, 1.0) as d:
                conn.execute(text("SELECT length(:big)"), {"big": "x" * 30_000_000})
            elapsed = time.monotonic() - started
            assert 0.9 < elapsed < 2.5 and d.fired, elapsed
        proxy.set_mode("pass")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 3")).scalar() == 3
    finally:
        engine.dispose()


def test_deadline_is_disarmed_on_exit_and_ignores_sqlite(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    lite = make_engine(str(tmp_path / "lite.sqlite3"))
    try:
        with engine.connect() as conn:
            with deadline(conn, 0.3) as d:
                assert conn.execute(text("SELECT 1")).scalar() == 1
            time.sleep(0.5)  # past the deadline: it must not fire after the block
            assert not d.fired and conn.execute(text("SELECT pg_sleep(0.1), 3")).one()[1] == 3
            with pytest.raises(OperationalError), deadline(conn, 0.3):
                conn.execute(text("SELECT pg_sleep(5)"))  # a slow server, not only a stalled network
        with lite.connect() as conn, deadline(conn, 0.05) as d:
            time.sleep(0.2)
            assert conn.execute(text("SELECT 4")).scalar() == 4
        assert not d.fired
        with pytest.raises(ValueError):
            with engine.connect() as conn, deadline(conn, 0):
                pass
    finally:
        engine.dispose()
        lite.dispose()


def test_pre_ping_over_a_stalled_network_waits_for_ever_unless_guarded(pg_url: str, proxy: TcpProxy) -> None:
    url = proxy.url(pg_url, connect_timeout=1, tcp_user_timeout=1000)
    engine, guarded = make_engine(url), make_engine(url)
    guard_engine(guarded, 0.5)
    try:
        for e in (engine, guarded):
            with e.connect() as conn:
                conn.execute(text("SELECT 1"))  # now pooled; the next checkout pre-pings it
        proxy.set_mode("stall")
        # Unguarded: neither connect_timeout (1 s) nor tcp_user_timeout (1 s) ends the ping.
        thread, box = _run_in_thread(lambda: engine.connect().close())
        started = time.monotonic()
        with pytest.raises(OperationalError):
            guarded.connect()  # ping cut after 0.5 s, then the new connection's connect_timeout
        elapsed = time.monotonic() - started
        # Which mechanism ended it (not a speed target): the 0.5 s guard cut the ping, then the new
        # connection's connect_timeout (1 s) ran out — so at least 1.3 s, and far from for ever.
        assert 1.3 < elapsed < 3, elapsed
        assert thread.is_alive()  # still waiting
        proxy.set_mode("pass")  # the network heals: the ping answers
        thread.join(timeout=5)
        assert not thread.is_alive() and "error" not in box
        with guarded.connect() as conn:
            assert conn.execute(text("SELECT 5")).scalar() == 5
    finally:
        engine.dispose()
        guarded.dispose()


def test_guarded_engine_turns_a_push_stalled_mid_flight_into_a_fast_failure(
        decided_template: Path, tmp_path: Path, pg_url: str, proxy: TcpProxy) -> None:
    """db.push as it is, its central engine guarded: a black hole mid-push fails the push within
    the guard's seconds, as a lost connection, and the station knows no more than central has."""
    station = copy_station(decided_template, tmp_path / "station.sqlite3")
    central = make_engine(proxy.url(pg_url, **FAST))
    guard_engine(central, 1.0)
    ensure_central_schema(central)
    try:
        thread, box = _run_in_thread(lambda: push_once(station, central, batch_size=20, station_id=STATION))
        give_up = time.monotonic() + 30
        while pending_count(station) == DECIDED and thread.is_alive() and time.monotonic() < give_up:
            time.sleep(0.002)
        proxy.set_mode("stall")
        stalled_at = time.monotonic()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert isinstance(box.get("error"), EnvironmentProblem), box
        assert "lost the connection" in box["error"].message
        assert box["ended"] - stalled_at < 2.5
        sent, applied = event_ids(station, sent=True), applied_ids_direct(pg_url)
        assert sent <= applied and 0 < len(sent) < DECIDED

        # Stalled before the next push: the pooled connection's ping is cut, connecting times out.
        started = time.monotonic()
        with pytest.raises(EnvironmentProblem, match="is unreachable"):
            push_once(station, central, batch_size=100, station_id=STATION)
        assert time.monotonic() - started < 1.0 + 2 + 1.5

        proxy.set_mode("pass")
        applied = applied_ids(central)
        report = push_once(station, central, batch_size=100, station_id=STATION)
        assert (report.pushed, report.skipped_duplicates, report.failed) == (
            DECIDED - len(applied), len(applied - sent), 0)
        assert_converged(station, central)
    finally:
        central.dispose()
        station.dispose()


# --- f. an offline shift ----------------------------------------------------------------------

def test_offline_shift_of_a_thousand_decisions_arrives_exactly_once(
        station_template: Path, tmp_path: Path, pg_url: str, proxy: TcpProxy) -> None:
    station = copy_station(station_template, tmp_path / "station.sqlite3")
    central = make_engine(proxy.url(pg_url, **FAST))
    ensure_central_schema(central)
    items = undecided(station)[:1000]
    try:
        proxy.set_mode("drop")
        written = 0
        failed_pushes = 0
        shift = time.monotonic()
        for start in range(0, 1000, 100):
            decide_items(station, items[start:start + 100])
            written += 100
            started = time.monotonic()
            with pytest.raises(EnvironmentProblem):
                push_once(station, central, station_id=STATION)
            assert time.monotonic() - started < 5
            failed_pushes += 1
            assert pending_count(station) == written
        shift = time.monotonic() - shift
        assert count(station, OutboxRow, OutboxRow.attempts > 0) == 0  # nothing blamed on the events
        with station.connect() as conn:
            assert conn.execute(select(Station.last_synced_at)).scalar_one() is None

        proxy.set_mode("pass")
        started = time.monotonic()
        report = push_once(station, central, station_id=STATION)
        catch_up = time.monotonic() - started

        assert (report.pushed, report.skipped_duplicates, report.failed, report.pending_after) == (1000, 0, 0, 0)
        assert count(central, Decision) == 1000
        assert_converged(station, central)
        with station.connect() as conn:
            assert conn.execute(select(Station.last_synced_at)).scalar_one() is not None
        print(f"\noffline shift: 1000 decisions written in {shift:.1f} s with {failed_pushes} failed pushes; "
              f"catch-up push {catch_up:.2f} s")
        # Resetting the acks (a station restored from a backup) re-sends all: all recognised.
        edited = edit_at_central(central)
        with station.begin() as conn:
            conn.execute(update(OutboxRow).values(sent_at=None))
        again = push_once(station, central, station_id=STATION)
        assert (again.pushed, again.skipped_duplicates, again.pending_after) == (0, 1000, 0)
        assert_not_reapplied(central, edited)
        assert_converged(station, central)
    finally:
        central.dispose()
        station.dispose()
