"""Outbox push to central, on a SQLite central file and on the real PostgreSQL server.

The station databases are built here from explicit rows, and every decision is written the way
the services write it: decision, lines, deductions and the outbox event in one unit of work.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.engine import Engine

import db.push.pipeline
from console.errors import EnvironmentProblem
from db.engine import make_engine
from db.migrate import upgrade
from db.models import (
    AppliedEvent,
    Base,
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
    SyncConflict,
    User,
)
from db.snapshot import snapshot
from db.push import SyncReport, ensure_central_schema, pending_count, push_once
from db.uow import UnitOfWork

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
ITEMS = (101, 102, 103)  # one returned unit of each order line
PRICE = {101: 4999, 102: 2500, 103: 1200}


class Crash(BaseException):
    """Stands in for the process dying (power cut, kill -9) between two steps."""


# --- building a station ---------------------------------------------------------------------

def make_station(path: Path, station_id: str = "WH1-01") -> Engine:
    engine = make_engine(str(path))
    upgrade(engine)
    with UnitOfWork.for_engine(engine) as uow:
        s = uow.session
        s.add(Station(id=station_id, name=f"Bench {station_id}"))
        s.add(User(id=1, username="aiko", display_name="Aiko", role="clerk", password_hash="x"))
        s.add(Customer(id=1, name="Ada Lovelace", email="ada@example.com", created_at=T0))
        s.flush()
        s.add(Order(id=1, number="SO-1000001", customer_id=1, currency="USD", placed_at=T0))
        s.flush()
        s.add_all([OrderLine(id=item - 100, order_id=1, line_no=item - 100, sku=f"SKU-{item}",
                             title=f"Thing {item}", category="home", quantity=1,
                             unit_price_minor=PRICE[item], serial_numbers=[f"SN{item}"])
                   for item in ITEMS])
        s.add(Shipment(id=1, order_id=1, carrier="ups", tracking_number="1Z999", shipped_at=T0))
        s.add(ReturnAuthorization(id=1, number="R-00000001", order_id=1, reason_code="changed_mind",
                                  created_at=T0))
        s.flush()
        s.add_all([ReturnItem(id=item, rma_id=1, order_line_id=item - 100, reason_code="changed_mind")
                   for item in ITEMS])
        uow.commit()
    return engine


def reference_rows(session: Any, station_id: str) -> list[Base]:
    """What an event carries besides the rows it wrote, in foreign-key order."""
    return [session.get(Station, station_id), session.get(User, 1), session.get(Customer, 1),
            session.get(Order, 1), *session.scalars(select(OrderLine).order_by(OrderLine.id)),
            session.get(Shipment, 1), session.get(ReturnAuthorization, 1),
            *session.scalars(select(ReturnItem).order_by(ReturnItem.id))]


def payload(station_id: str, objs: list[Base]) -> dict[str, Any]:
    return {"station_id": station_id, "rows": [snapshot(o) for o in objs]}


def decide(engine: Engine, item: int, *, station_id: str = "WH1-01", status: str = "approved",
           decision_id: uuid.UUID | None = None, deduction_minor: int = 300, policy_version: str = "2026.1",
           policy_sha256: str | None = None, amount_minor: int | None = None,
           paid_minor: int | None = None) -> uuid.UUID:
    """A partial refund of one return item with one deduction (``amount_minor``: what it refunds,
    the rest deducted), queued in the same transaction."""
    decision_id = decision_id or uuid.uuid4()
    with UnitOfWork.for_engine(engine) as uow:
        s = uow.session
        paid = s.get(OrderLine, item - 100).unit_price_minor if paid_minor is None else paid_minor  # type: ignore[union-attr]
        refund = paid - deduction_minor if amount_minor is None else amount_minor
        decision = Decision(id=decision_id, rma_id=1, order_id=1, kind="partial_refund", status=status,
                            amount_minor=refund,
                            currency="USD",
                            policy_version=policy_version, policy_sha256=policy_sha256, decided_by_id=1,
                            station_id=station_id, decided_at=T0,
                            # Why it waits for a supervisor; a decision approved at the bench has no such reason
                            # (central holds one that has: migration 0009).
                            review_reasons=["opened"] if status == "pending_review" else [])
        line = DecisionLine(decision=decision, return_item_id=item, paid_minor=paid, refund_minor=refund, grade="B")
        deduction = Deduction(id=uuid.uuid4(), decision=decision, return_item_id=item, code="opened",
                              label="Opened box", amount_minor=paid - refund)
        s.add(decision)
        s.flush()
        uow.add_outbox("decision", str(decision_id),
                       payload(station_id, [*reference_rows(s, station_id), decision, line, deduction]))
        uow.commit()
    return decision_id


def rewrite(engine: Engine, decision_id: uuid.UUID, station_id: str = "WH1-01", *, status: str = "superseded",
            amount_minor: int | None = None) -> None:
    """A later event that rewrites an already pushed row (by default: superseded by a correction)."""
    with UnitOfWork.for_engine(engine) as uow:
        decision = uow.session.get(Decision, decision_id)
        assert decision is not None
        decision.status = status
        if amount_minor is not None:
            decision.amount_minor = amount_minor
        uow.session.flush()
        uow.add_outbox("decision", str(decision_id), payload(station_id, [decision]))
        uow.commit()


def move_rma(engine: Engine, status: str, station_id: str = "WH1-01") -> None:
    """A later event that moves an already pushed RMA on (a row stations may change at central)."""
    with UnitOfWork.for_engine(engine) as uow:
        rma = uow.session.get(ReturnAuthorization, 1)
        assert rma is not None
        rma.status = status
        uow.session.flush()
        uow.add_outbox("rma", "1", payload(station_id, [rma]))
        uow.commit()


def count(engine: Engine, model: type[Base], *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def outbox_state(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(OutboxRow.__table__).order_by(OutboxRow.id))]


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def station(station_path: Path) -> Iterator[Engine]:
    engine = make_station(station_path)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def central(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = str(tmp_path / "central.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    ensure_central_schema(engine)
    yield engine
    engine.dispose()


# --- tests ----------------------------------------------------------------------------------

def test_push_lands_every_decision_once_with_its_lines_and_deductions(station: Engine, central: Engine) -> None:
    ids = [decide(station, item) for item in ITEMS]
    assert pending_count(station) == 3

    report = push_once(station, central, station_id="WH1-01")

    assert report == SyncReport(pushed=3, skipped_duplicates=0, failed=0, pending_after=0, errors=[])
    assert report.to_dict() == {"pushed": 3, "skipped_duplicates": 0, "failed": 0, "pending_after": 0,
                                "errors": []}
    with central.connect() as conn:
        assert sorted(conn.execute(select(Decision.id)).scalars()) == sorted(ids)
        lines = conn.execute(select(DecisionLine.decision_id, DecisionLine.return_item_id,
                                    DecisionLine.refund_minor, DecisionLine.active)).all()
        assert sorted(lines) == sorted((d, i, PRICE[i] - 300, True) for d, i in zip(ids, ITEMS))
        assert sorted(conn.execute(select(Deduction.decision_id)).scalars()) == sorted(ids)
        decided_at = conn.execute(select(Decision.decided_at).where(Decision.id == ids[0])).scalar_one()
        assert decided_at == T0 and decided_at.tzinfo is not None
        applied = conn.execute(select(AppliedEvent.station_id, AppliedEvent.kind)).all()
        assert applied == [("WH1-01", "decision")] * 3
        # Reference rows arrive once each, however many events carried them.
        assert conn.execute(select(func.count()).select_from(Order)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(ReturnItem)).scalar_one() == 3
        assert conn.execute(select(OrderLine.serial_numbers).where(OrderLine.id == 1)).scalar_one() == ["SN101"]
    assert pending_count(station) == 0
    with station.connect() as conn:
        sent = conn.execute(select(OutboxRow.sent_at)).scalars().all()
        assert len(sent) == 3 and all(s is not None and s.tzinfo is not None for s in sent)
        assert conn.execute(select(Station.last_synced_at)).scalar_one() is not None


def test_second_push_sends_nothing_and_duplicates_nothing(station: Engine, central: Engine) -> None:
    for item in ITEMS:
        decide(station, item)
    push_once(station, central)
    before = outbox_state(station)

    again = push_once(station, central)

    assert (again.pushed, again.skipped_duplicates, again.failed, again.pending_after) == (0, 0, 0, 0)
    assert count(central, Decision) == 3 and count(central, DecisionLine) == 3
    assert count(central, Deduction) == 3 and count(central, AppliedEvent) == 3
    assert outbox_state(station) == before


def test_later_event_updates_a_pushed_row_in_place(station: Engine, central: Engine) -> None:
    decide(station, 101)
    push_once(station, central)
    move_rma(station, "closed")

    report = push_once(station, central)

    assert report.pushed == 1 and report.pending_after == 0
    with central.connect() as conn:
        assert conn.execute(select(ReturnAuthorization.status)).scalars().all() == ["closed"]


def test_a_decision_stays_as_central_holds_it_whatever_a_later_event_says(station: Engine, central: Engine) -> None:
    decision_id = decide(station, 101)
    push_once(station, central)
    rewrite(station, decision_id)  # superseded, says the station
    assert push_once(station, central).pushed == 1
    with central.connect() as conn:
        status = conn.execute(select(Decision.status)).scalar_one()
    # A PostgreSQL central decides (stations may not update a decision there: migration 0009); a
    # SQLite central, written by this machine's console alone, takes the station's word.
    assert status == ("approved" if central.dialect.name == "postgresql" else "superseded")


def test_a_station_cannot_settle_a_review_or_change_an_amount_without_an_approval(
        station: Engine, central: Engine) -> None:
    waiting = decide(station, 101, status="pending_review")
    settled = decide(station, 102)
    push_once(station, central)
    rewrite(station, waiting, status="approved")  # no approval row: not a review
    rewrite(station, settled, status="approved", amount_minor=1)  # a decision's amount never changes
    assert push_once(station, central).failed == 0  # received, and without effect
    with central.connect() as conn:
        rows = {r.id: (r.status, r.amount_minor) for r in conn.execute(
            select(Decision.id, Decision.status, Decision.amount_minor))}
    assert rows[waiting] == ("pending_review", PRICE[101] - 300)
    assert rows[settled] == ("approved", PRICE[102] - 300)


def test_lost_acknowledgement_converges_without_duplicates(station: Engine, central: Engine,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [decide(station, item) for item in ITEMS[:2]]

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise Crash("power cut after central committed")

    monkeypatch.setattr(db.push.pipeline, "mark_sent", crash)
    with pytest.raises(Crash):
        push_once(station, central)
    # Central has the events; the station does not know it.
    assert count(central, Decision) == 2 and count(central, AppliedEvent) == 2
    assert pending_count(station) == 2

    monkeypatch.undo()
    ids.append(decide(station, ITEMS[2]))
    report = push_once(station, central)

    assert (report.pushed, report.skipped_duplicates, report.failed, report.pending_after) == (1, 2, 0, 0)
    with central.connect() as conn:
        assert sorted(conn.execute(select(Decision.id)).scalars()) == sorted(ids)
        assert conn.execute(select(func.count()).select_from(DecisionLine)).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(Deduction)).scalar_one() == 3
        assert conn.execute(select(func.count(AppliedEvent.event_id.distinct()))).scalar_one() == 3
    assert pending_count(station) == 0


def test_requeued_events_are_recognised_as_applied(station: Engine, central: Engine) -> None:
    for item in ITEMS:
        decide(station, item)
    push_once(station, central)
    with station.begin() as conn:  # a station restored from a backup taken before the push
        conn.execute(update(OutboxRow).values(sent_at=None))

    report = push_once(station, central)

    assert (report.pushed, report.skipped_duplicates, report.pending_after) == (0, 3, 0)
    assert count(central, Decision) == 3 and count(central, DecisionLine) == 3


def test_two_stations_deciding_one_item_offline_give_one_refund_and_one_conflict_in_review(
        station: Engine, central: Engine, tmp_path: Path) -> None:
    first = decide(station, 101)
    assert push_once(station, central).pushed == 1
    # A second bench decided the same unit while offline: central's partial unique index on
    # active decision lines refuses a second standing refund for return item 101; the losing
    # decision is kept, as a conflict waiting for review, and the rest of the batch lands.
    other = make_station(tmp_path / "bench2.sqlite3", "WH1-02")
    try:
        ok_before = decide(other, 102, station_id="WH1-02")
        conflicting = decide(other, 101, station_id="WH1-02")
        ok_after = decide(other, 103, station_id="WH1-02")

        report = push_once(other, central, station_id="WH1-02")

        assert (report.pushed, report.skipped_duplicates, report.failed, report.pending_after) == (3, 0, 0, 0)
        with central.connect() as conn:
            statuses = dict(conn.execute(select(Decision.id, Decision.status)).all())
            assert statuses == {first: "approved", ok_before: "approved", conflicting: "conflict",
                                ok_after: "approved"}
            standing = conn.execute(select(DecisionLine.decision_id)
                                    .where(DecisionLine.return_item_id == 101, DecisionLine.active)).scalars()
            assert list(standing) == [first]  # one final refund for the item
            conflict = conn.execute(select(SyncConflict)).one()
            assert (conflict.kind, conflict.decision_id, conflict.return_item_id, conflict.other_decision_id,
                    conflict.station_id, conflict.resolved_at) == (
                "item_already_decided", conflicting, 101, first, "WH1-02", None)
            assert str(first) in conflict.reason
            assert conn.execute(select(func.count()).select_from(AppliedEvent)).scalar_one() == 4

        # The station's later writes never undo central's verdict.
        rewrite(other, conflicting, station_id="WH1-02", status="approved")
        with UnitOfWork.for_engine(other) as uow:
            line = uow.session.get(DecisionLine, (conflicting, 101))
            assert line is not None and line.active
            uow.add_outbox("decision", str(conflicting), payload("WH1-02", [line]))
            uow.commit()
        assert push_once(other, central, station_id="WH1-02").pushed == 2
        with central.connect() as conn:
            assert conn.execute(select(Decision.status).where(Decision.id == conflicting)).scalar_one() == "conflict"
            assert not conn.execute(select(DecisionLine.active).where(
                DecisionLine.decision_id == conflicting)).scalar_one()
            assert count(central, SyncConflict) == 1
    finally:
        other.dispose()


def test_refused_event_stays_pending_while_the_rest_of_the_batch_lands(station: Engine, central: Engine) -> None:
    ok_before = decide(station, 101)
    # A decision line that refunds more than was paid: central's check constraint says no.
    broken = decide(station, 102)
    with UnitOfWork.for_engine(station) as uow:
        line = uow.session.get(DecisionLine, (broken, 102))
        assert line is not None
        snap = snapshot(line)
        snap["values"]["refund_minor"] = line.paid_minor + 1
        uow.add_outbox("decision", str(broken), {"station_id": "WH1-01", "rows": [snap]})
        uow.commit()
    ok_after = decide(station, 103)

    report = push_once(station, central)

    assert (report.pushed, report.skipped_duplicates, report.failed, report.pending_after) == (3, 0, 1, 1)
    assert len(report.errors) == 1 and str(broken) in report.errors[0]
    with central.connect() as conn:
        assert sorted(conn.execute(select(Decision.id)).scalars()) == sorted([ok_before, broken, ok_after])
        assert conn.execute(select(DecisionLine.refund_minor).where(
            DecisionLine.decision_id == broken)).scalar_one() == PRICE[102] - 300  # as first pushed
    with station.connect() as conn:
        row = conn.execute(select(OutboxRow.attempts, OutboxRow.last_error).where(OutboxRow.sent_at.is_(None))).one()
        assert row.attempts == 1 and "check" in row.last_error.lower()
        # A failed run does not claim the station is in sync.
        assert conn.execute(select(Station.last_synced_at)).scalar_one() is None

    # Never dropped: it is tried again, and again refused, while nothing else is re-sent.
    again = push_once(station, central)
    assert (again.pushed, again.failed, again.pending_after) == (0, 1, 1)
    assert count(station, OutboxRow, OutboxRow.attempts == 2) == 1
    assert count(central, Decision) == 3


def test_one_central_transaction_per_batch_in_outbox_order(station: Engine, central: Engine) -> None:
    first = decide(station, 101)
    for item in ITEMS[1:]:
        decide(station, item)
    move_rma(station, "closed")  # fourth event: lands in the second batch, after the decisions
    commits: list[str] = []

    def on_commit(_conn: Any) -> None:
        commits.append("commit")

    event.listen(central, "commit", on_commit)
    try:
        report = push_once(station, central, batch_size=3)
    finally:
        event.remove(central, "commit", on_commit)

    assert (report.pushed, report.pending_after) == (4, 0)
    assert len(commits) == 2
    with central.connect() as conn:
        assert conn.execute(select(ReturnAuthorization.status)).scalar_one() == "closed"
        assert conn.execute(select(Decision.status).where(Decision.id == first)).scalar_one() == "approved"


def test_malformed_payload_is_refused_not_dropped(station: Engine, central: Engine) -> None:
    good = decide(station, 101)
    with UnitOfWork.for_engine(station) as uow:
        uow.add_outbox("decision", "bogus", {"station_id": "WH1-01",
                                             "rows": [{"table": "no_such_table", "values": {}}]})
        uow.add_outbox("decision", "sneaky", {"station_id": "WH1-01",
                                              "rows": [{"table": "outbox", "values": {"id": 1}}]})
        uow.commit()

    report = push_once(station, central)

    assert (report.pushed, report.failed, report.pending_after) == (1, 2, 2)
    assert "no_such_table" in report.errors[0] and "outbox" in report.errors[1]
    assert count(central, Decision) == 1 and count(central, AppliedEvent) == 1
    with central.connect() as conn:
        assert conn.execute(select(Decision.id)).scalar_one() == good


def test_unreachable_central_fails_fast_and_leaves_the_station_alone(station: Engine) -> None:
    for item in ITEMS[:2]:
        decide(station, item)
    before = outbox_state(station)
    central = make_engine("postgresql://postgres:s3cret@127.0.0.1:1/test")
    try:
        started = time.monotonic()
        with pytest.raises(EnvironmentProblem) as info:
            push_once(station, central)
        assert time.monotonic() - started < 5
        message = info.value.message
        assert message.startswith("central database at postgresql+psycopg://postgres@127.0.0.1:1/test "
                                  "is unreachable: ")
        assert "decisions stay queued" in message and "--central" in message
        assert "s3cret" not in message and "\n" not in message
        with pytest.raises(EnvironmentProblem, match="is unreachable"):
            ensure_central_schema(central)
    finally:
        central.dispose()
    assert outbox_state(station) == before
    assert pending_count(station) == 2
    with station.connect() as conn:
        assert conn.execute(select(Station.last_synced_at)).scalar_one() is None


def test_a_station_never_sends_credentials_nor_overwrites_central_users(station: Engine, central: Engine) -> None:
    from db.outbox import outbound_snapshot

    with UnitOfWork.for_engine(central) as uow:
        uow.session.add(Station(id="WH1-01", name="Bench WH1-01"))
        uow.session.add(User(id=1, username="aiko", display_name="Aiko", role="supervisor",
                             password_hash="$argon2id$central", failed_attempts=3))
        uow.commit()
    with UnitOfWork.for_engine(station) as uow:
        user = uow.session.get(User, 1)
        assert user is not None
        user.badge_hash = "secret-badge-hash"
        uow.commit()
        sent = outbound_snapshot(user)["values"]
    assert (sent["password_hash"], sent["badge_hash"], sent["failed_attempts"]) == ("!", None, 0)

    decide(station, ITEMS[0])  # its payload carries the station's user row as it is ("x", role clerk)
    assert push_once(station, central, station_id="WH1-01").pushed == 1

    with central.connect() as conn:
        row = conn.execute(select(User.password_hash, User.role, User.failed_attempts).where(User.id == 1)).one()
    assert tuple(row) == ("$argon2id$central", "supervisor", 3)


@pytest.mark.postgres
def test_a_big_batch_that_loses_races_lands_as_conflicts(tmp_path: Path, pg_url: str) -> None:
    """Enough rows per table for the COPY path: its error (straight from psycopg) must send the
    batch down the careful path, not stop the push."""
    from scripts.dev.benchmarks.sync import decision_station

    central = make_engine(pg_url)
    first = make_engine(str(decision_station(tmp_path / "a.sqlite3", 30, "BENCH-01")))
    second = make_engine(str(decision_station(tmp_path / "b.sqlite3", 30, "BENCH-02")))  # the same items
    try:
        ensure_central_schema(central)
        assert push_once(first, central, station_id="BENCH-01").pushed == 30
        report = push_once(second, central, station_id="BENCH-02")
        assert (report.pushed, report.failed, report.pending_after) == (30, 0, 0)
        with central.connect() as conn:
            statuses = dict(conn.execute(select(Decision.station_id, func.count()).where(Decision.status == "conflict")
                                         .group_by(Decision.station_id)).all())
        assert statuses == {"BENCH-02": 30}
        assert count(central, SyncConflict) == 30
    finally:
        central.dispose()
        first.dispose()
        second.dispose()


@pytest.mark.postgres
def test_stations_never_migrate_a_postgresql_central(pg_url: str, tmp_path: Path) -> None:
    from db.migrate import current_revision, head_revision, upgrade as upgrade_to
    from db.push import check_central_schema

    central = make_engine(pg_url)
    try:
        with pytest.raises(EnvironmentProblem, match="no schema yet: run `returns-console central init`"):
            check_central_schema(central)
        assert current_revision(central) is None  # untouched
        upgrade_to(central, "0004")
        with pytest.raises(EnvironmentProblem, match="older than this console's"):
            check_central_schema(central)
        ensure_central_schema(central)  # what central init does
        check_central_schema(central)
        with central.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
        with pytest.raises(EnvironmentProblem, match="newer than this console's"):
            check_central_schema(central)
        assert head_revision() < "0099"
    finally:
        central.dispose()
    demo = make_engine(str(tmp_path / "demo-central.sqlite3"))
    try:
        check_central_schema(demo)  # a demo's SQLite central is brought up to date
        assert current_revision(demo) == head_revision()
    finally:
        demo.dispose()


def test_an_older_copy_of_an_item_never_undoes_a_later_change_from_another_bench(
        station: Engine, central: Engine, tmp_path: Path) -> None:
    from console.files import copy_sqlite

    decide(station, 103)  # central learns the order, the RMA and its units
    push_once(station, central)
    copy_sqlite(tmp_path / "station.sqlite3", tmp_path / "bench2.sqlite3")
    other = make_engine(str(tmp_path / "bench2.sqlite3"))
    try:
        with UnitOfWork.for_engine(other) as uow:  # bench 2 receives unit 102
            uow.session.add(Station(id="WH1-02", name="Bench 2"))
            item = uow.session.get(ReturnItem, 102)
            assert item is not None
            item.reception_status = "received"
            uow.session.flush()
            uow.add_outbox("receipt", "102", payload("WH1-02", [uow.session.get(Station, "WH1-02"), item]))
            uow.commit()
        assert push_once(other, central, station_id="WH1-02").failed == 0
        decide(station, 101)  # bench 1's event carries its own, older, copy of unit 102 (awaiting)
        assert push_once(station, central).failed == 0
        with central.connect() as conn:
            states = dict(conn.execute(select(ReturnItem.id, ReturnItem.reception_status)).all())
        assert states[102] == "received"
    finally:
        other.dispose()


@pytest.mark.postgres
def test_a_central_whose_lock_table_is_full_is_busy_not_unreachable(station: Engine, pg_url: str) -> None:
    """Many stations pushing big batches at once can fill the server's shared lock table (a push
    locks each order line it refunds): "out of shared memory" is the server saying "not now",
    and the next pass lands the decision. (The table is full for well under a second: a test
    run beside this one on the same server could meet the same answer meanwhile.)"""
    import psycopg

    from tests.conftest import PG_URL

    central = make_engine(pg_url)
    ensure_central_schema(central)
    decide(station, 101)
    filler = psycopg.connect(PG_URL)
    try:
        # Every free slot taken: chunks of locks, each in a savepoint, smaller and smaller, all
        # held by one open transaction.
        filler.execute("SELECT 1")
        taken, next_key = 0, 0
        for chunk in (1000, 100, 10, 1):
            while True:
                try:
                    with filler.transaction():
                        filler.execute("SELECT pg_advisory_xact_lock(4242, x) FROM generate_series(%s::int, %s::int) AS x",
                                       (next_key, next_key + chunk - 1))
                except psycopg.errors.OutOfMemory:
                    break
                taken, next_key = taken + chunk, next_key + chunk
        assert taken > 1000
        with pytest.raises(EnvironmentProblem, match="could not take the push just now") as caught:
            push_once(station, central)
        assert "out of shared memory" in str(caught.value) and "check the network" not in str(caught.value)
        assert "max_locks_per_transaction" in str(caught.value)  # the server's hint, for its administrator
        assert count(station, OutboxRow, OutboxRow.sent_at.is_(None)) == 1
    finally:
        filler.rollback()
        filler.close()
    assert push_once(station, central).pushed == 1
    central.dispose()


@pytest.mark.postgres
def test_a_busy_central_is_not_called_unreachable(station: Engine, pg_url: str) -> None:
    """A lock timeout is the server saying "not now", not a dead network: the message says so."""
    from urllib.parse import quote, unquote

    import psycopg

    from tests.conftest import PG_URL

    schema = unquote(pg_url).split("search_path=")[-1]
    central = make_engine(pg_url)
    ensure_central_schema(central)
    central.dispose()
    decide(station, 101)
    busy = make_engine(f"{PG_URL}?options={quote(f'-clock_timeout=300 -csearch_path={schema}')}")
    holder = psycopg.connect(PG_URL)
    try:
        holder.execute(f'LOCK TABLE "{schema}".applied_events IN ACCESS EXCLUSIVE MODE')
        with pytest.raises(EnvironmentProblem, match="could not take the push just now") as caught:
            push_once(station, busy)
        assert "lock timeout" in str(caught.value) and "check the network" not in str(caught.value)
    finally:
        holder.rollback()
        holder.close()
        busy.dispose()
    assert count(station, OutboxRow, OutboxRow.sent_at.is_(None)) == 1
