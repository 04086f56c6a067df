"""Central's rules when it applies what stations send: an approval is re-checked against central's
own view of the approver and four eyes, and the database itself refuses an approval that breaks
them, on central (PostgreSQL, SQLite) and on a station."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from db.engine import make_engine
from console.approval_signing import Signer, new_signer, sign_approval
from db.models import Approval, ApproverKey, Decision, SyncConflict, User
from db.push import ensure_central_schema, push_once
from db.uow import UnitOfWork
from tests.sync.test_sync import T0, count, decide, make_station, payload

AIKO, SAM, RIO = 1, 2, 3  # clerk, supervisor, supervisor


@pytest.fixture
def station(station_path: Path) -> Iterator[Engine]:
    engine = make_station(station_path)
    with UnitOfWork.for_engine(engine) as uow:
        uow.session.add_all([User(id=SAM, username="sam", display_name="Sam", role="supervisor", password_hash="x"),
                             User(id=RIO, username="rio", display_name="Rio", role="supervisor", password_hash="x")])
        uow.commit()
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def central(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = str(tmp_path / "central.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    ensure_central_schema(engine)
    # Central's own users (an admin made them; stations pull them): aiko a clerk, sam and rio
    # supervisors. A station's copy of a user never overwrites these.
    with UnitOfWork.for_engine(engine) as uow:
        uow.session.add_all([User(id=AIKO, username="aiko", display_name="Aiko", role="clerk", password_hash="x"),
                             User(id=SAM, username="sam", display_name="Sam", role="supervisor", password_hash="x"),
                             User(id=RIO, username="rio", display_name="Rio", role="supervisor", password_hash="x")])
        uow.commit()
    yield engine
    engine.dispose()


def approve_at_station(engine: Engine, decision_id: uuid.UUID, supervisor_id: int, *,
                       signer: Signer | None = None, station_id: str = "WH1-01") -> uuid.UUID:
    """What the review screen writes: the approval and the decision it settles, one event; signed
    by ``signer`` (the supervisor's key, see ``enrol_key``) when given."""
    approval_id = uuid.uuid4()
    with UnitOfWork.for_engine(engine) as uow:
        s = uow.session
        decision = s.get(Decision, decision_id)
        assert decision is not None
        decision.status = "approved"
        approval = Approval(id=approval_id, decision_id=decision_id, supervisor_id=supervisor_id,
                            verdict="approved", amount_minor=decision.amount_minor, note="ok", decided_at=T0)
        if signer is not None:
            approval.settles = {"status": "approved", "kind": decision.kind, "amount_minor": decision.amount_minor,
                                "store_credit_bonus_minor": decision.store_credit_bonus_minor,
                                "lines": {str(ln.return_item_id): ln.refund_minor for ln in decision.lines
                                          if ln.active}}
            approval.signature = sign_approval(
                signer, approval_id=approval_id, decision_id=decision_id, supervisor_id=supervisor_id,
                station_id=station_id, verdict="approved", amount_minor=decision.amount_minor,
                currency=decision.currency, decided_at=T0, settles=approval.settles, note="ok")
        s.add(approval)
        s.flush()
        users = list(s.scalars(select(User).where(User.id.in_([AIKO, supervisor_id]))))
        # As the review service sends it: the case, its units and the verdict.
        uow.add_outbox("approval", str(decision_id), payload(station_id, [*users, decision, *decision.lines, approval]))
        uow.commit()
    return approval_id


def enrol_key(engine: Engine, user_id: int, *, station_id: str = "WH1-01", method: str = "pin") -> Signer:
    """What a supervisor's first sign-in at the station writes (console.signin): their public key,
    queued for central. The private half stays in the returned signer."""
    signer = new_signer(user_id, station_id)
    with UnitOfWork.for_engine(engine) as uow:
        s = uow.session
        key = ApproverKey(id=signer.key_id, user_id=user_id, station_id=station_id, method=method,
                          public_key=signer.public_key, enrolled_at=T0)
        s.add(key)
        s.flush()
        users = list(s.scalars(select(User).where(User.id == user_id)))
        uow.add_outbox("approver_key", str(key.id), payload(station_id, [*users, key]))
        uow.commit()
    return signer


def decision_status(central: Engine, decision_id: uuid.UUID) -> str:
    with central.connect() as conn:
        return str(conn.execute(select(Decision.status).where(Decision.id == decision_id)).scalar_one())


def test_an_approval_by_a_supervisor_central_still_knows_lands(station: Engine, central: Engine) -> None:
    pending = decide(station, 101, status="pending_review")
    push_once(station, central)
    approval = approve_at_station(station, pending, SAM)
    report = push_once(station, central)
    assert (report.pushed, report.failed) == (1, 0)
    assert decision_status(central, pending) == "approved"
    with central.connect() as conn:
        assert conn.execute(select(Approval.refused_reason).where(Approval.id == approval)).scalar_one() is None
    assert count(central, SyncConflict) == 0


def test_a_supervisor_revoked_while_offline_cannot_approve(station: Engine, central: Engine) -> None:
    pending = decide(station, 101, status="pending_review")
    push_once(station, central)
    # Central demotes sam; the station, offline, still believes sam is a supervisor.
    with central.begin() as conn:
        conn.execute(update(User).where(User.id == SAM).values(role="clerk"))
    approval = approve_at_station(station, pending, SAM)

    report = push_once(station, central)

    assert (report.pushed, report.failed, report.pending_after) == (1, 0, 0)  # kept, not retried forever
    assert decision_status(central, pending) == "pending_review"  # the approval had no effect
    with central.connect() as conn:
        reason = conn.execute(select(Approval.refused_reason).where(Approval.id == approval)).scalar_one()
        assert reason == "approval refused: sam is a clerk at central, not an active supervisor"
        flag = conn.execute(select(SyncConflict).where(SyncConflict.approval_id == approval)).one()
        assert (flag.kind, flag.decision_id, flag.station_id, flag.resolved_at) == (
            "approval_refused", pending, "WH1-01", None)
        # The station's copy of sam never overwrote central's.
        assert conn.execute(select(User.role).where(User.id == SAM)).scalar_one() == "clerk"


def test_a_disabled_supervisor_cannot_approve(station: Engine, central: Engine) -> None:
    pending = decide(station, 101, status="pending_review")
    with central.begin() as conn:
        conn.execute(update(User).where(User.id == RIO).values(active=False))
    approval = approve_at_station(station, pending, RIO)
    push_once(station, central)
    assert decision_status(central, pending) == "pending_review"
    with central.connect() as conn:
        reason = conn.execute(select(Approval.refused_reason).where(Approval.id == approval)).scalar_one()
    assert reason == "approval refused: rio is disabled at central, not an active supervisor"


def test_a_supervisor_minted_at_a_station_cannot_approve(station: Engine, central: Engine) -> None:
    with UnitOfWork.for_engine(station) as uow:
        uow.session.add(User(id=9, username="mallory", display_name="M", role="supervisor", password_hash="x"))
        uow.commit()
    pending = decide(station, 101, status="pending_review")
    approve_at_station(station, pending, 9)
    first = push_once(station, central)
    assert first.failed == 0
    assert decision_status(central, pending) == "pending_review"
    with central.connect() as conn:
        row = conn.execute(select(User.role, User.created_from_station, User.password_hash)
                           .where(User.id == 9)).one()
        assert tuple(row) == ("supervisor", "WH1-01", "!")  # kept for the rows naming it; no credentials
        reason = conn.execute(select(Approval.refused_reason)).scalar_one()
    assert "unknown at central" in reason  # the approval arrived with the user: central never knew them
    # Even later, once central holds the copy, it stays unconfirmed.
    second = decide(station, 102, status="pending_review")
    approve_at_station(station, second, 9)
    push_once(station, central)
    with central.connect() as conn:
        reasons = sorted(conn.execute(select(Approval.refused_reason)).scalars())
    assert "only from station WH1-01's copy" in reasons[0] + reasons[1]
    assert decision_status(central, second) == "pending_review"


def test_nobody_approves_their_own_decision_even_offline(station: Engine, central: Engine) -> None:
    with station.begin() as conn:
        conn.execute(update(User).where(User.id == AIKO).values(role="supervisor"))
    with central.begin() as conn:
        conn.execute(update(User).where(User.id == AIKO).values(role="supervisor"))
    pending = decide(station, 101, status="pending_review")  # decided by aiko
    # The station's own database refuses it too: write around its trigger to test central's check.
    with station.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER approvals_four_eyes_insert")
    approval = approve_at_station(station, pending, AIKO)

    push_once(station, central)

    assert decision_status(central, pending) == "pending_review"
    with central.connect() as conn:
        reason = conn.execute(select(Approval.refused_reason).where(Approval.id == approval)).scalar_one()
    assert reason == "approval refused: aiko made this decision (four eyes)"


@pytest.mark.parametrize("where", ["station", "central"])
def test_the_database_refuses_an_approval_that_breaks_four_eyes(station: Engine, central: Engine, where: str) -> None:
    pending = decide(station, 101, status="pending_review")
    push_once(station, central)
    engine = station if where == "station" else central
    with engine.begin() as conn:
        conn.execute(update(User).where(User.id == AIKO).values(role="supervisor"))
    if engine.dialect.name == "postgresql":
        # PostgreSQL central keeps such an approval as a refused record, flagged, with no effect.
        return assert_central_keeps_refused(engine, pending)

    def write(supervisor_id: int, refused_reason: str | None = None) -> None:
        with UnitOfWork.for_engine(engine) as uow:
            uow.session.add(Approval(id=uuid.uuid4(), decision_id=pending, supervisor_id=supervisor_id,
                                     verdict="approved", note="", decided_at=T0, refused_reason=refused_reason))
            uow.commit()

    with pytest.raises(DBAPIError, match="four_eyes"):
        write(AIKO)  # the decider, though a supervisor now
    with engine.begin() as conn:
        conn.execute(update(User).where(User.id == SAM).values(active=False))
    with pytest.raises(DBAPIError, match="four_eyes"):
        write(SAM)  # disabled
    write(SAM, refused_reason="kept as refused")  # a refused approval is a record, not an approval
    with engine.begin() as conn:
        conn.execute(update(User).where(User.id == SAM).values(active=True))
    write(SAM)
    assert count(engine, Approval) == 2


def assert_central_keeps_refused(central: Engine, pending: uuid.UUID) -> None:
    def write(supervisor_id: int) -> uuid.UUID:
        approval_id = uuid.uuid4()
        with UnitOfWork.for_engine(central) as uow:
            uow.session.add(Approval(id=approval_id, decision_id=pending, supervisor_id=supervisor_id,
                                     verdict="approved", note="", decided_at=T0))
            uow.commit()
        with central.connect() as conn:
            return conn.execute(select(Approval.refused_reason).where(Approval.id == approval_id)).scalar_one()

    assert write(AIKO) == "approval refused: aiko made this decision (four eyes)"
    with central.begin() as conn:
        conn.execute(update(User).where(User.id == SAM).values(active=False))
    assert write(SAM) == "approval refused: sam is disabled at central, not an active supervisor"
    assert decision_status(central, pending) == "pending_review"
    with central.connect() as conn:
        flagged = list(conn.execute(select(SyncConflict.kind, SyncConflict.station_id)))
    assert flagged == [("approval_refused", "WH1-01")] * 2
    with central.begin() as conn:
        conn.execute(update(User).where(User.id == SAM).values(active=True))
    assert write(SAM) is None
    assert decision_status(central, pending) == "approved"  # settled by central's own trigger
    assert write(RIO) == f"approval refused: sam had already settled this case (approval {first_accepted(central)}); rio's verdict reached central later"


def first_accepted(central: Engine) -> uuid.UUID:
    with central.connect() as conn:
        return conn.execute(select(Approval.id).where(Approval.refused_reason.is_(None))).scalar_one()


@pytest.mark.postgres
def test_stations_can_connect_with_a_login_that_can_only_sync(pg_url: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import os

    import psycopg

    from scripts.dev.benchmarks.sync import decision_station
    from console.cli import main
    from db.pull import pull_once
    from tests.conftest import PG_URL

    role = f"rc_station_{os.getpid()}"
    assert main(["--central", pg_url, "central", "init"]) == 0
    assert "is ready (schema" in capsys.readouterr().out
    assert main(["--central", pg_url, "central", "station", "add", "BENCH-01", "--role", role]) == 0
    assert f"station BENCH-01 logs in as {role}" in capsys.readouterr().out
    as_station = pg_url.replace("postgres@", f"{role}@", 1)
    central = make_engine(as_station)
    station = make_engine(str(decision_station(tmp_path / "bench.sqlite3", 30)))  # the COPY path too
    try:
        report = push_once(station, central, station_id="BENCH-01")
        assert (report.pushed, report.failed) == (30, 0)
        pull_once(station, central)  # reads the feed
        with pytest.raises(DBAPIError, match="permission denied"):
            with central.begin() as conn:
                conn.execute(update(User).values(role="admin"))  # no minting of supervisors
        with pytest.raises(DBAPIError, match="permission denied"):
            with central.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE sneaky (id int)")  # no DDL
    finally:
        central.dispose()
        station.dispose()
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")
