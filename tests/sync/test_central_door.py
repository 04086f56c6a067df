"""Central trusts nothing a station says: each attack a station's own credentials could make on
the real PostgreSQL server is refused, and the real rows still land (migration 0009, db.central).

Every station here logs in as a login role of its own, issued by ``central station add``; the
attacks are run over exactly that connection."""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from console.errors import EnvironmentProblem
from db.central import add_station, credentials, init_central, revoke_station
from db.engine import make_engine
from db.models import (
    Approval, AuditEvent, Decision, DecisionLine, OrderLine, OutboxRow, StationRefusal, SyncConflict, User,
)
from db.pull import pull_once
from db.push import pending_count, push_once
from db.uow import UnitOfWork
from tests.conftest import PG_URL
from console.approval_signing import Signer, sign_approval
from console.central_admin import confirm_keys
from tests.sync.test_central_rules import AIKO, RIO, SAM, approve_at_station, decision_status, enrol_key
from tests.sync.test_central_rules import station as station  # noqa: F401 - the station with its supervisors
from tests.sync.test_sync import T0, decide, make_station

pytestmark = pytest.mark.postgres

Login = Callable[[str], Engine]


@pytest.fixture
def central(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    init_central(engine)
    with UnitOfWork.for_engine(engine) as uow:
        uow.session.add_all([User(id=AIKO, username="aiko", display_name="Aiko", role="clerk", password_hash="x"),
                             User(id=SAM, username="sam", display_name="Sam", role="supervisor", password_hash="x"),
                             User(id=RIO, username="rio", display_name="Rio", role="supervisor", password_hash="x",
                                  active=False)])
        uow.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def login(central: Engine, pg_url: str) -> Iterator[Login]:
    """Issue a station its own login (``central station add``) and connect as it."""
    roles: list[str] = []
    engines: list[Engine] = []

    def issue(station_id: str) -> Engine:
        role = f"rc_{os.getpid()}_{len(roles)}_{station_id.lower().replace('-', '_')}"
        issued = add_station(central, station_id, role=role)
        assert issued.role == role and len(issued.password) >= 24
        roles.append(role)
        engine = make_engine(pg_url.replace("postgres@", f"{role}@", 1))
        engines.append(engine)
        return engine

    yield issue
    for engine in engines:
        engine.dispose()
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        for role in roles:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def orders_at_central(station: Engine, central: Engine) -> None:
    """Central holds the station's orders as the order system's import put them there (a station's
    copy of an order central lacks is that station's word: migration 0013)."""
    from sqlalchemy.dialects import postgresql

    from db.models import Customer, Order, Shipment

    with station.connect() as src, central.begin() as dst:
        for model in (Customer, Order, OrderLine, Shipment):
            rows = [dict(r._mapping) for r in src.execute(select(model.__table__))]
            if rows:
                dst.execute(postgresql.insert(model.__table__).values(rows).on_conflict_do_nothing())


def refused(engine: Engine, statement: str, **params: Any) -> str:
    """The server's refusal of a statement run over ``engine``; fails the test if it went through."""
    with pytest.raises(DBAPIError) as caught:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    return str(caught.value.orig)


def confirmed_key(station: Engine, central: Engine, as_station: Engine, user_id: int = SAM,
                  station_id: str = "WH1-01") -> Signer:
    """A supervisor's key as their first sign-in enrols it, sent with a push and confirmed at
    central by an admin."""
    signer = enrol_key(station, user_id, station_id=station_id)
    push_once(station, as_station, station_id=station_id)
    with central.connect() as conn:
        name = conn.execute(select(User.username).where(User.id == user_id)).scalar_one()
    confirm_keys(central, name, signer.fingerprint, confirmed_by="test")
    return signer


def signed(signer: Signer, values: dict[str, Any], *, station_id: str = "WH1-01") -> dict[str, Any]:
    """An approval row's values with the signature ``signer`` makes over exactly them."""
    signature = sign_approval(signer, approval_id=values["id"], decision_id=values["decision_id"],
                              supervisor_id=values["supervisor_id"], station_id=station_id,
                              verdict=values["verdict"], amount_minor=values.get("amount_minor"), currency="USD",
                              decided_at=values["decided_at"], settles=values.get("settles"), note=values["note"])
    return {**values, "signature": signature}


def test_a_station_pushes_and_pulls_through_its_own_login(central: Engine, login: Login, station: Engine) -> None:
    as_wh1 = login("WH1-01")
    orders_at_central(station, central)
    approved = decide(station, 101)
    pending = decide(station, 102, status="pending_review")
    report = push_once(station, as_wh1, station_id="WH1-01")
    assert (report.pushed, report.failed) == (2, 0), report.errors
    assert decision_status(central, approved) == "approved"
    assert decision_status(central, pending) == "pending_review"
    pull_once(station, as_wh1)

    sam = enrol_key(station, SAM)  # sam's first sign-in at the station
    push_once(station, as_wh1, station_id="WH1-01")
    confirm_keys(central, "sam", sam.fingerprint, confirmed_by="test")
    approve_at_station(station, pending, SAM, signer=sam)
    report = push_once(station, as_wh1, station_id="WH1-01")
    assert (report.pushed, report.failed) == (1, 0), report.errors
    assert decision_status(central, pending) == "approved"  # settled by central's trigger
    with central.connect() as conn:
        assert conn.execute(select(Approval.refused_reason)).scalar_one() is None
        assert conn.execute(select(SyncConflict)).first() is None
        assert conn.execute(select(StationRefusal)).first() is None
        # The aiko the station carried never overwrote central's; the event ids name the station.
        assert conn.execute(text("SELECT DISTINCT station_id FROM applied_events")).scalars().all() == ["WH1-01"]


def test_a_station_login_cannot_change_what_central_holds(central: Engine, login: Login, station: Engine) -> None:
    as_wh1 = login("WH1-01")
    pending = decide(station, 101, status="pending_review")
    push_once(station, as_wh1, station_id="WH1-01")
    attacks = {
        "approve a case": "UPDATE decisions SET status = 'approved' WHERE id = :d",
        "raise its amount": "UPDATE decisions SET amount_minor = amount_minor * 100 WHERE id = :d",
        "raise a unit's refund": "UPDATE decision_lines SET refund_minor = refund_minor * 100 WHERE decision_id = :d",
        "delete a decision": "DELETE FROM decisions WHERE id = :d",
        "mint a supervisor": "INSERT INTO users (id, username, display_name, role, password_hash, failed_attempts, "
                             "active, created_at) VALUES (66, 'ghost', 'Ghost', 'supervisor', 'x', 0, true, now())",
        "re-enable a user": "UPDATE users SET active = true WHERE id = 3",
        "promote a user": "UPDATE users SET role = 'admin' WHERE id = 1",
        "claim event ids": "INSERT INTO applied_events (event_id, station_id, kind, applied_at) "
                           "VALUES (gen_random_uuid(), 'WH2-01', 'decision', now())",
        "forget applied events": "DELETE FROM applied_events",
        "edit an approval": "UPDATE approvals SET refused_reason = NULL",
        "rewrite the audit trail": "UPDATE audit_events SET details = '{}'",
        "delete audit rows": "DELETE FROM audit_events",
        "change an order": "UPDATE orders SET currency = 'JPY'",
        "change a customer": "UPDATE customers SET email = 'me@example.com'",
        "publish a policy": "INSERT INTO policy_versions (version, body, activated_at) VALUES ('evil', '', now())",
        "read the credentials": "SELECT * FROM station_credentials",
        "make a table": "CREATE TABLE sneaky (id int)",
    }
    for what, statement in attacks.items():
        message = refused(as_wh1, statement, d=pending)
        assert "permission denied" in message, (what, message)
    assert decision_status(central, pending) == "pending_review"
    with central.connect() as conn:
        assert conn.execute(select(Decision.amount_minor).where(Decision.id == pending)).scalar_one() == 4999 - 300
        assert conn.execute(select(User.active).where(User.id == RIO)).scalar_one() is False
        assert conn.execute(select(User.id).where(User.id == 66)).first() is None


def test_a_user_a_station_sends_is_that_stations_word_and_cannot_approve(
        central: Engine, login: Login, station: Engine) -> None:
    as_wh1 = login("WH1-01")
    # Straight through the door, claiming to be central's own user: kept as WH1-01's copy.
    with as_wh1.begin() as conn:
        conn.execute(text("SELECT rc_fill_users(CAST(:u AS json))"), {"u": (
            '[{"id": 66, "username": "ghost", "display_name": "Ghost", "role": "supervisor", "active": true,'
            ' "created_from_station": null}]')})
    with central.connect() as conn:
        row = conn.execute(select(User.created_from_station, User.password_hash).where(User.id == 66)).one()
    assert tuple(row) == ("WH1-01", "!")
    with UnitOfWork.for_engine(station) as uow:
        uow.session.add(User(id=66, username="ghost", display_name="Ghost", role="supervisor", password_hash="x"))
        uow.commit()
    pending = decide(station, 101, status="pending_review")
    approve_at_station(station, pending, 66)
    push_once(station, as_wh1, station_id="WH1-01")
    assert decision_status(central, pending) == "pending_review"
    with central.connect() as conn:
        reason = conn.execute(select(Approval.refused_reason)).scalar_one()
    assert reason.startswith("approval refused: ghost is known to central only from station WH1-01's copy")


def test_a_station_cannot_write_another_stations_rows(central: Engine, login: Login, station: Engine,
                                                     tmp_path: Path) -> None:
    as_wh1 = login("WH1-01")
    orders_at_central(station, central)
    # WH1-01's login pushing a station database that says it is WH2-01: refused before anything.
    other = make_station(tmp_path / "wh2.sqlite3", "WH2-01")
    decide(other, 101, station_id="WH2-01")
    with pytest.raises(EnvironmentProblem, match="logs in as station WH1-01, not WH2-01"):
        push_once(other, as_wh1, station_id="WH2-01")
    # Without the station's id the events go in, and central refuses every row that is not WH1-01's.
    report = push_once(other, as_wh1)
    assert report.failed == 1
    assert "station WH1-01 may not write stations of station WH2-01" in report.errors[0]
    assert pending_count(other) == 1  # kept on the station, with central's reason
    other.dispose()
    mine = decide(station, 102)
    assert push_once(station, as_wh1, station_id="WH1-01").failed == 0
    with central.begin() as conn:  # central knows WH2-01 (its own push brought it)
        conn.execute(text("INSERT INTO stations (id, name, site, time_zone, created_at) "
                          "VALUES ('WH2-01', 'Bench 2', 'WH1', 'UTC', now())"))
    message = refused(as_wh1, "INSERT INTO decisions (id, order_id, kind, status, amount_minor, "
                              "store_credit_bonus_minor, shipping_refund_minor, currency, policy_version, "
                              "review_reasons, decided_by_id, station_id, decided_at) VALUES (gen_random_uuid(), "
                              "1, 'full_refund', 'approved', 1, 0, 0, 'USD', 'x', '[]', 1, 'WH2-01', now())")
    assert "station WH1-01 may not write decisions of station WH2-01" in message
    assert decision_status(central, mine) == "approved"


def test_another_stations_audit_rows_are_kept_aside_and_the_real_ones_land(
        central: Engine, login: Login, station: Engine, tmp_path: Path) -> None:
    from console.audit_verify import verify_station
    from tests.core.test_audit import record_events
    from tests.tools.factories import make_world

    as_wh1, as_wh2 = login("WH1-01"), login("WH2-01")
    victim = make_world(tmp_path / "wh2.sqlite3", station_id="WH2-01")
    record_events(victim, 3)
    with victim.engine.connect() as conn:
        chain = [dict(row._mapping) for row in conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.seq))]
    # WH1-01 writes WH2-01's rows first, with the right hashes, before WH2-01 pushes them.
    with as_wh1.begin() as conn:
        conn.execute(AuditEvent.__table__.insert(), chain[:2])
    with central.connect() as conn:
        assert conn.execute(select(AuditEvent.id)).first() is None  # not taken
        kept = conn.execute(select(StationRefusal.kind, StationRefusal.station_id, StationRefusal.pushed_by,
                                   StationRefusal.seq).order_by(StationRefusal.seq)).all()
    assert [tuple(r) for r in kept] == [("other_station", "WH2-01", "WH1-01", 1), ("other_station", "WH2-01", "WH1-01", 2)]
    assert push_once(victim.engine, as_wh2, station_id="WH2-01").failed == 0
    with central.connect() as conn:
        assert conn.execute(select(AuditEvent.seq).where(AuditEvent.station_id == "WH2-01")
                            .order_by(AuditEvent.seq)).scalars().all() == [1, 2, 3]  # the real rows, none skipped
        report = verify_station(None, "WH2-01", central=conn)
    assert report.problem is not None and report.problem.seq == 1
    assert "sent from station WH1-01's login" in report.problem.message
    victim.engine.dispose()


def test_a_second_row_for_a_chain_position_is_kept_as_a_collision_and_verify_shows_it(
        central: Engine, login: Login, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main
    from tests.core.test_audit import record_events
    from tests.tools.factories import make_world

    as_wh1 = login("WH1-01")
    first = make_world(tmp_path / "first.sqlite3")
    record_events(first, 2)
    assert push_once(first.engine, as_wh1, station_id="WH1-01").failed == 0
    # The station rebuilt under the same id: a new chain, whose row 2 differs from central's.
    again = make_world(tmp_path / "again.sqlite3")
    record_events(again, 3, details=lambda n: {"again": n})
    assert push_once(again.engine, as_wh1, station_id="WH1-01").failed == 0
    with central.connect() as conn:
        held = conn.execute(select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.station_id == "WH1-01")
                            .order_by(AuditEvent.seq)).all()
        kept = conn.execute(select(StationRefusal.kind, StationRefusal.seq).order_by(StationRefusal.seq)).all()
    with first.engine.connect() as conn:
        theirs = conn.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq)).all()
    assert [tuple(r) for r in held][:2] == [tuple(r) for r in theirs]  # central's rows stand
    assert [tuple(r) for r in kept] == [("audit_collision", 1), ("audit_collision", 2)]
    assert main(["--station", str(first.engine.url.database), "--user", "mei", "audit", "verify",
                 "--central", central.url.render_as_string(hide_password=False)]) == 1
    assert capsys.readouterr().out.startswith("WH1-01: central holds another row at position 1: a second row")
    first.engine.dispose()
    again.engine.dispose()


def test_an_approval_written_by_hand_is_refused_and_flagged(central: Engine, login: Login, station: Engine) -> None:
    as_wh1 = login("WH1-01")
    pending = decide(station, 101, status="pending_review")
    push_once(station, as_wh1, station_id="WH1-01")
    with as_wh1.begin() as conn:
        for supervisor in (AIKO, RIO):  # the clerk who decided it; a supervisor central disabled
            conn.execute(Approval.__table__.insert().values(
                id=uuid.uuid4(), decision_id=pending, supervisor_id=supervisor, verdict="approved", note="",
                decided_at=T0, settles={"amount_minor": 2200 * 100}))
    assert decision_status(central, pending) == "pending_review"
    with central.connect() as conn:
        reasons = sorted(conn.execute(select(Approval.refused_reason)).scalars())
        flags = conn.execute(select(SyncConflict.kind, SyncConflict.station_id)).all()
    assert reasons == ["approval refused: aiko is a clerk at central, not an active supervisor",
                       "approval refused: rio is disabled at central, not an active supervisor"]
    assert [tuple(f) for f in flags] == [("approval_refused", "WH1-01")] * 2


def test_an_approval_that_pays_more_than_was_paid_is_refused(central: Engine, login: Login, station: Engine) -> None:
    as_wh1 = login("WH1-01")
    pending = decide(station, 101, status="pending_review")
    push_once(station, as_wh1, station_id="WH1-01")
    sam = confirmed_key(station, central, as_wh1)  # sam's own key: what it signs still answers to central's rules
    with as_wh1.begin() as conn:
        conn.execute(Approval.__table__.insert().values(signed(sam, dict(
            id=uuid.uuid4(), decision_id=pending, supervisor_id=SAM, verdict="approved", note="", decided_at=T0,
            amount_minor=499_900, settles={"status": "approved", "amount_minor": 499_900, "lines": {"101": 499_900}}))))
    assert decision_status(central, pending) == "pending_review"
    with central.connect() as conn:
        reason = conn.execute(select(Approval.refused_reason)).scalar_one()
        refund = conn.execute(select(DecisionLine.refund_minor)).scalar_one()
    assert reason.startswith("approval refused: it refunds 499900 for return item 101")
    assert refund == 4999 - 300


def test_a_decision_approved_without_its_review_waits_at_central(central: Engine, login: Login,
                                                                station: Engine) -> None:
    as_wh1 = login("WH1-01")
    pending = decide(station, 101, status="pending_review")
    # The station's file and its unsent outbox edited by hand: approved, reasons and all.
    with station.begin() as conn:
        conn.execute(update(Decision).where(Decision.id == pending).values(status="approved"))
        row = conn.execute(select(OutboxRow.id, OutboxRow.payload)).one()
        body = row.payload if isinstance(row.payload, str) else json.dumps(row.payload)
        conn.execute(update(OutboxRow).where(OutboxRow.id == row.id).values(
            payload=json.loads(body.replace('"pending_review"', '"approved"'))))
    assert push_once(station, as_wh1, station_id="WH1-01").failed == 0
    assert decision_status(central, pending) == "pending_review"
    pull_once(station, as_wh1)
    assert decision_status(station, pending) == "pending_review"  # the station learns so


def test_a_revoked_station_cannot_push_and_keeps_its_decisions(central: Engine, login: Login, station: Engine,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    as_wh1 = login("WH1-01")
    decide(station, 101)
    assert push_once(station, as_wh1, station_id="WH1-01").pushed == 1
    assert revoke_station(central, "WH1-01") == [credentials(central)[0].role]
    as_wh1.dispose()
    decide(station, 102)
    with pytest.raises(EnvironmentProblem, match="is unreachable"):
        push_once(station, as_wh1, station_id="WH1-01")
    assert pending_count(station) == 1
    assert credentials(central)[0].revoked_at is not None


def test_a_station_role_without_a_credential_writes_nothing(central: Engine, pg_url: str, station: Engine) -> None:
    role = f"rc_{os.getpid()}_shared"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN IN ROLE returns_station')
    shared = make_engine(pg_url.replace("postgres@", f"{role}@", 1))
    try:
        decide(station, 101)
        with pytest.raises(EnvironmentProblem, match=f"logs in as {role}, which speaks for no station"):
            push_once(station, shared, station_id="WH1-01")
        assert pending_count(station) == 1
        message = refused(shared, "UPDATE stations SET name = 'x'")
        assert f"role {role} is no registered station" in message
    finally:
        shared.dispose()
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(f'DROP ROLE "{role}"')


def test_the_cli_issues_lists_and_revokes_station_logins(central: Engine, pg_url: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    role = f"rc_{os.getpid()}_cli"
    try:
        assert main(["--central", pg_url, "central", "station", "add", "WH9-01", "--role", role]) == 0
        out = capsys.readouterr().out
        assert f"station WH9-01 logs in as {role}" in out
        url = next(line for line in out.splitlines() if line.startswith("central_url = "))
        assert f"postgresql://{role}:" in url and "@127.0.0.1:5432/test" in url
        assert main(["--central", pg_url, "central", "station", "list"]) == 0
        listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(c["station"], c["role"], c["revoked_at"]) for c in listed] == [("WH9-01", role, None)]
        assert main(["--central", pg_url, "central", "station", "revoke", "WH9-01"]) == 0
        assert "can no longer log in" in capsys.readouterr().out
        with psycopg.connect(PG_URL) as admin:
            assert admin.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)).fetchone() == (False,)
        assert main(["--central", pg_url, "central", "station", "revoke", "WH9-01"]) == 1
        assert "no live credential" in capsys.readouterr().err
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_a_sqlite_central_has_no_station_logins(tmp_path: Path) -> None:
    engine = make_engine(str(tmp_path / "central.sqlite3"))
    init_central(engine)
    with pytest.raises(EnvironmentProblem, match="PostgreSQL roles"):
        add_station(engine, "WH1-01")
    engine.dispose()



def test_an_approval_central_refuses_puts_the_case_back_to_waiting_at_the_station(
        central: Engine, login: Login, station: Engine) -> None:
    from db.models import ReturnAuthorization

    as_wh1 = login("WH1-01")
    pending = decide(station, 101, status="pending_review")
    with UnitOfWork.for_engine(station) as uow:
        uow.session.get(ReturnAuthorization, 1).status = "pending_review"
        uow.commit()
    push_once(station, as_wh1, station_id="WH1-01")
    pull_once(station, as_wh1)
    with central.begin() as conn:  # sam demoted at central while the station was offline
        conn.execute(update(User).where(User.id == SAM).values(role="clerk"))
    approval = approve_at_station(station, pending, SAM)
    assert decision_status(station, pending) == "approved"  # what the station believed
    push_once(station, as_wh1, station_id="WH1-01")
    pull_once(station, as_wh1)
    assert decision_status(station, pending) == "pending_review"
    with station.connect() as conn:
        reason = conn.execute(select(Approval.refused_reason).where(Approval.id == approval)).scalar_one()
    assert reason == "approval refused: sam is a clerk at central, not an active supervisor"


def publish_shipped_policy(central: Engine, tmp_path: Path) -> Any:
    from console.central_admin import publish_policy
    from console.policy import load_policy

    published = load_policy()  # the shipped policy: USD 500.00 always needs a supervisor
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(published.source, encoding="utf-8")
    assert not publish_policy(central, policy_file).already
    assert publish_policy(central, policy_file).already
    return published


def test_central_holds_what_the_policy_it_published_says_needs_review(
        central: Engine, login: Login, station: Engine, tmp_path: Path) -> None:
    published = publish_shipped_policy(central, tmp_path)
    as_wh1 = login("WH1-01")
    mine = {"policy_version": published.version, "policy_sha256": published.sha256}
    fine = decide(station, 101, **mine)  # USD 46.99
    # The station's file edited, or its own policy with no review threshold: USD 552.94 approved
    # for a unit that cost USD 600.00.
    with station.begin() as conn:
        conn.execute(update(OrderLine).where(OrderLine.id == 2).values(unit_price_minor=60000))
    orders_at_central(station, central)
    large = decide(station, 102, amount_minor=55294, **mine)
    edited = decide(station, 103, policy_version=published.version, policy_sha256="f" * 64)
    assert push_once(station, as_wh1, station_id="WH1-01").failed == 0
    with central.connect() as conn:
        rows = {r.id: (r.status, r.review_reasons) for r in conn.execute(
            select(Decision.id, Decision.status, Decision.review_reasons))}
    assert rows[fine] == ("approved", [])
    assert rows[large] == ("pending_review", [
        f"held at central: USD 55294 is at or above the always-review amount of policy {published.version}"])
    assert rows[edited] == ("pending_review", [
        f"held at central: the station's policy {published.version} is not the text central published"])
    pull_once(station, as_wh1)  # the station learns so, although the fast path wrote them
    assert decision_status(station, large) == "pending_review"
    assert decision_status(station, fine) == "approved"
    # Its risk assessment arriving with a score the published policy sends to review: held too.
    from db.models import RiskAssessment

    with as_wh1.begin() as conn:
        conn.execute(RiskAssessment.__table__.insert().values(
            id=uuid.uuid4(), rma_id=1, score=90, signals=[], rules_version="x", assessed_at=T0, decision_id=fine,
            outcome="auto", policy_version=published.version))
    with central.connect() as conn:
        reasons = conn.execute(select(Decision.review_reasons).where(Decision.id == fine)).scalar_one()
    assert decision_status(central, fine) == "pending_review"
    assert reasons == [f"held at central: risk 90 is at or above the review threshold 40 of policy {published.version}"]


def test_a_decision_under_a_policy_central_never_published_waits_for_review(
        central: Engine, login: Login, station: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from console.central_admin import publish_policy
    from console.cli import main
    from console.errors import StateConflict

    as_wh1 = login("WH1-01")
    orders_at_central(station, central)
    before = decide(station, 101, policy_version="my-own")  # central publishes nothing yet: taken
    push_once(station, as_wh1, station_id="WH1-01")
    assert decision_status(central, before) == "approved"
    published = publish_shipped_policy(central, tmp_path)
    unpublished = decide(station, 102, policy_version="my-own", policy_sha256="0" * 64)
    push_once(station, as_wh1, station_id="WH1-01")
    with central.connect() as conn:
        reasons = conn.execute(select(Decision.review_reasons).where(Decision.id == unpublished)).scalar_one()
    assert decision_status(central, unpublished) == "pending_review"
    assert reasons == ["held at central: policy my-own is not a version central published"]
    # A version is published once; the command says what it did.
    policy_file = tmp_path / "policy.toml"
    assert main(["--central", central.url.render_as_string(hide_password=False), "central", "publish-policy",
                 str(policy_file)]) == 0
    assert f"policy {published.version} (sha256 {published.sha256[:12]}…) is published at central already" in (
        capsys.readouterr().out)
    policy_file.write_text(published.source.replace("review_at_or_above = 40", "review_at_or_above = 60"),
                           encoding="utf-8")
    with pytest.raises(StateConflict, match="with other rules already"):
        publish_policy(central, policy_file)


def test_an_approval_that_does_not_name_its_units_settles_nothing(central: Engine, login: Login,
                                                                 station: Engine) -> None:
    as_wh1 = login("WH1-01")
    pending = decide(station, 101, status="pending_review")
    push_once(station, as_wh1, station_id="WH1-01")
    sam = confirmed_key(station, central, as_wh1)
    approval = uuid.uuid4()
    with as_wh1.begin() as conn:  # a real supervisor's signature, any amount, no units
        conn.execute(Approval.__table__.insert().values(signed(sam, dict(
            id=approval, decision_id=pending, supervisor_id=SAM, verdict="approved", note="", decided_at=T0,
            settles={"amount_minor": 99_999_999}))))
    with as_wh1.begin() as conn:  # the same approval id again, now saying it all: nothing settled twice
        conn.execute(text("INSERT INTO approvals (id, decision_id, supervisor_id, verdict, note, decided_at, settles) "
                          "VALUES (:a, :d, 2, 'approved', '', now(), CAST(:s AS json)) ON CONFLICT DO NOTHING"),
                     {"a": approval, "d": pending, "s": '{"amount_minor": 4699, "lines": {"101": 4699}}'})
    assert decision_status(central, pending) == "pending_review"
    with central.connect() as conn:
        reason = conn.execute(select(Approval.refused_reason)).scalar_one()
        assert conn.execute(select(Decision.amount_minor).where(Decision.id == pending)).scalar_one() == 4699
    assert reason == "approval refused: it does not say what it refunds for each unit of the case"


def test_a_temporary_table_cannot_make_a_station_someone_else(central: Engine, login: Login) -> None:
    as_wh1 = login("WH1-01")
    with as_wh1.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE station_credentials (role_name text, station_id text, "
                          "issued_at timestamptz, revoked_at timestamptz)"))
        conn.execute(text("INSERT INTO station_credentials VALUES (session_user, 'WH2-01', now(), NULL)"))
        conn.execute(text("CREATE TEMP TABLE pg_auth_members (roleid oid, member oid)"))
        assert conn.execute(text("SELECT rc_station()")).scalar() == "WH1-01"
        message = ""
        try:
            with conn.begin_nested():
                conn.execute(text("INSERT INTO stations (id, name, site, time_zone, created_at) "
                                  "VALUES ('WH2-01', 'x', 'WH1', 'UTC', now())"))
        except DBAPIError as exc:
            message = str(exc.orig)
    assert "station WH1-01 may not write stations of station WH2-01" in message


def test_a_login_outside_the_station_group_is_told_plainly(central: Engine, pg_url: str, station: Engine) -> None:
    role = f"rc_{os.getpid()}_outside"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    outside = make_engine(pg_url.replace("postgres@", f"{role}@", 1))
    try:
        decide(station, 101)
        with pytest.raises(EnvironmentProblem, match="central refuses this station's login: .*central station add STATION"):
            push_once(station, outside, station_id="WH1-01")
        assert pending_count(station) == 1
    finally:
        outside.dispose()
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(f'DROP ROLE "{role}"')
