"""The audit trail is a hash chain per station: editing, deleting or forging a row shows — in the
chain itself, against the copies the station's outbox keeps, or against central's copy."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from console import audit, print_queue
from console.audit_verify import ChainReport, Problem, verify_chain, verify_station
from console.cli import main
from console.config import load_settings
from console.context import Actor
from console.deciding import DecideCommand, decide
from console.inspection import inspect_item
from console.receiving import receive_parcel, scan_item
from console.station import Station
from db.engine import make_engine
from db.models import AuditEvent, OutboxRow, ReturnItem, User
from db.push import ensure_central_schema, push_once
from db.uow import UnitOfWork
from printing.printers import FolderPrinter, PrintPayload
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world

MEI = Actor(2, "mei", "Mei", "supervisor")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


def record_events(world: World, count: int, details: Any = None) -> None:
    """``count`` steps, each its own transaction, a second apart."""
    for n in range(count):
        world.clock.now += timedelta(seconds=1)
        with world.uow() as uow:
            audit.record(uow.session, world.ctx(), "test", "thing", n,
                         details(n) if details else {"amount_minor": n * 100, "名前": "田中"})
            uow.commit()


def report(world: World, central: Engine | None = None, station_id: str = "WH1-01") -> ChainReport:
    with world.engine.connect() as local:
        if central is None:
            return verify_station(local, station_id)
        with central.connect() as theirs:
            return verify_station(local, station_id, central=theirs)


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def rehash_everything(engine: Engine) -> None:
    """What someone who knows the algorithm does after an edit: every hash recomputed."""
    with UnitOfWork.for_engine(engine) as uow:
        prev = audit.GENESIS
        for row in uow.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
            row.prev_hash = prev
            row.hash = audit.row_digest(row)
            prev = row.hash
        uow.commit()


def sqlite_central(tmp_path: Path) -> Engine:
    engine = make_engine(str(tmp_path / "central.sqlite3"))
    ensure_central_schema(engine)
    return engine


# --- the chain alone ----------------------------------------------------------------------------

def test_chain_holds_and_an_edit_shows(world: World) -> None:
    record_events(world, 5)
    with world.uow() as uow:
        assert verify_chain(uow.session, "WH1-01") is None
        seqs = list(uow.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        assert seqs == [1, 2, 3, 4, 5]
    with world.engine.begin() as conn:  # an edit behind the console's back (a unit of work refuses it)
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(details={"amount_minor": 1}))
    with world.uow() as uow:
        assert verify_chain(uow.session, "WH1-01") == 3
    assert report(world).problem == Problem(3, "row 3 edited: hash does not match its content")


def test_an_intact_chain_says_what_was_checked(world: World) -> None:
    record_events(world, 4)
    result = report(world)
    assert result.intact and (result.rows, result.last_seq, result.anchored) == (4, 4, 4)
    assert result.describe() == "WH1-01: intact (4 rows; 4 with their copy in the outbox)"


def test_edited_details_json_shows_but_rewritten_key_order_does_not(world: World) -> None:
    record_events(world, 3, lambda n: {"b": n, "a": {"z": [1, 2.5], "y": "ü"}})
    # The same JSON written by another tool (keys reordered, spaces, escapes): not an edit.
    sql(world.engine, "UPDATE audit_events SET details = :d WHERE seq = 2",
        d='{ "a": { "y": "\\u00fc", "z": [1, 2.5] }, "b": 1 }')
    assert report(world).intact
    sql(world.engine, "UPDATE audit_events SET details = :d WHERE seq = 2",
        d='{"a": {"y": "ü", "z": [1, 2.6]}, "b": 1}')
    assert report(world).problem == Problem(2, "row 2 edited: hash does not match its content")


def test_an_edited_column_shows(world: World) -> None:
    record_events(world, 3)
    sql(world.engine, "UPDATE audit_events SET user_id = 2 WHERE seq = 1")
    assert report(world).problem == Problem(1, "row 1 edited: hash does not match its content")


def test_a_deleted_middle_row_shows_as_missing(world: World) -> None:
    record_events(world, 8)
    sql(world.engine, "DELETE FROM audit_events WHERE seq = 3")
    assert report(world).problem == Problem(3, "row 3 missing: row 4 follows row 2")
    sql(world.engine, "DELETE FROM audit_events WHERE seq IN (4, 5)")
    assert report(world).describe() == "WH1-01: rows 3–5 missing: row 6 follows row 2"
    with world.uow() as uow:
        assert verify_chain(uow.session, "WH1-01") == 3


def test_deleted_first_rows_show(world: World) -> None:
    record_events(world, 3)
    sql(world.engine, "DELETE FROM audit_events WHERE seq IN (1, 2)")
    assert report(world).problem == Problem(1, "rows 1–2 missing: the chain starts at row 3")


def test_a_row_inserted_with_a_forged_hash_shows(world: World) -> None:
    record_events(world, 5)
    with world.uow() as uow:
        last = uow.session.scalars(select(AuditEvent).where(AuditEvent.seq == 5)).one()
        forged = AuditEvent(id=uuid.uuid4(), seq=6, occurred_at=last.occurred_at, station_id="WH1-01", user_id=1,
                            action="decision_made", entity="decision", entity_id="x", details={"amount_minor": 1},
                            prev_hash=last.hash, hash="f" * 64)
        uow.session.add(forged)
        uow.commit()
    assert report(world).problem == Problem(6, "row 6 edited: hash does not match its content")
    # Well hashed, but chained to the wrong row: it does not follow.
    with world.uow() as uow:
        row = uow.session.scalars(select(AuditEvent).where(AuditEvent.seq == 6)).one()
        row.prev_hash = audit.GENESIS
        row.hash = audit.row_digest(row)
        uow.commit()
    assert report(world).problem == Problem(
        6, "row 6 does not follow row 5: row 5 was changed and re-hashed after row 6 was written")


def test_an_edit_re_hashed_on_one_row_breaks_the_next_link(world: World) -> None:
    record_events(world, 4)
    with world.uow() as uow:
        row = uow.session.scalars(select(AuditEvent).where(AuditEvent.seq == 2)).one()
        row.details = {"amount_minor": 0}
        row.hash = audit.row_digest(row)
        uow.commit()
    assert report(world).problem.seq == 2  # the outbox's copy of row 2 differs
    sql(world.engine, "DELETE FROM outbox")
    assert report(world).problem == Problem(
        3, "row 3 does not follow row 2: row 2 was changed and re-hashed after row 3 was written")


# --- what the chain alone cannot show: the outbox's copies and central's ----------------------

def test_a_deleted_last_row_shows_against_the_outbox_copies(world: World) -> None:
    record_events(world, 5)
    sql(world.engine, "DELETE FROM audit_events WHERE seq >= 4")
    with world.uow() as uow:
        assert verify_chain(uow.session, "WH1-01") is None  # the chain alone cannot tell
    assert report(world).problem == Problem(
        4, "rows 4–5 missing: deleted from the end of the chain (the outbox still holds their copies)")


def test_a_deleted_last_row_shows_against_central(world: World, tmp_path: Path) -> None:
    central = sqlite_central(tmp_path)
    record_events(world, 5)
    assert push_once(world.engine, central, station_id="WH1-01").failed == 0
    assert report(world, central).describe() == "WH1-01: intact (5 rows; 5 with their copy in the outbox; central holds 5)"
    # Thorough: the tail and the outbox copies that would give it away.
    sql(world.engine, "DELETE FROM audit_events WHERE seq = 5")
    sql(world.engine, "DELETE FROM outbox")
    assert report(world).intact  # nothing left at the station to tell
    assert report(world, central).problem == Problem(5, "central has row 5 that this station lacks")
    central.dispose()


def test_a_re_hashed_chain_shows_only_against_a_copy_kept_elsewhere(world: World, tmp_path: Path) -> None:
    central = sqlite_central(tmp_path)
    record_events(world, 6)
    push_once(world.engine, central, station_id="WH1-01")
    sql(world.engine, "UPDATE audit_events SET details = '{\"amount_minor\": 1}' WHERE seq = 3")
    rehash_everything(world.engine)
    assert report(world).problem == Problem(
        3, "row 3 differs from the copy its outbox event carried: changed and re-hashed after it was written")
    sql(world.engine, "DELETE FROM outbox")
    assert report(world).intact
    assert report(world, central).problem == Problem(
        3, "row 3 differs from central's copy: one of the two was changed and re-hashed after it reached central")
    central.dispose()


def test_rows_not_pushed_yet_are_no_problem_but_a_hole_at_central_is(world: World, tmp_path: Path) -> None:
    central = sqlite_central(tmp_path)
    record_events(world, 3)
    push_once(world.engine, central, station_id="WH1-01")
    record_events(world, 2)
    result = report(world, central)
    assert result.intact and result.not_at_central == 2 and result.central_rows == 3
    assert result.describe().endswith("central holds 3; 2 not at central yet (sent with the next sync))")
    push_once(world.engine, central, station_id="WH1-01")
    sql(central, "DELETE FROM audit_events WHERE seq = 2")
    assert report(world, central).problem.message.startswith("central lacks row 2, which this station holds")
    central.dispose()


# --- audit rows travel with the step's outbox event ---------------------------------------------

def test_audit_rows_ride_the_steps_own_outbox_event_or_one_of_their_own(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receive_parcel(uow, ctx, rma.number)
    record_events(world, 1)  # a step that sends nothing else (a sign-in, a print)
    with world.uow() as uow:
        outbox = list(uow.session.scalars(select(OutboxRow).order_by(OutboxRow.id)))
        audits = {r.seq: r.hash for r in uow.session.scalars(select(AuditEvent))}
    assert [o.kind for o in outbox] == ["receipt", "audit"]
    carried = [[r["values"] for r in o.payload["rows"] if r["table"] == "audit_events"] for o in outbox]
    assert [[(v["seq"], v["hash"]) for v in rows] for rows in carried] == [[(1, audits[1])], [(2, audits[2])]]


def test_a_rolled_back_step_sends_no_audit_row(world: World) -> None:
    with world.uow() as uow:
        audit.record(uow.session, world.ctx(), "test", "thing", 1)
        uow.rollback()
    with world.uow() as uow:
        with uow.session.begin_nested():
            audit.record(uow.session, world.ctx(), "kept", "thing", 1)
        savepoint = uow.session.begin_nested()
        audit.record(uow.session, world.ctx(), "undone", "thing", 2)
        savepoint.rollback()
        uow.commit()
    with world.uow() as uow:
        payloads = [o.payload for o in uow.session.scalars(select(OutboxRow))]
        actions = list(uow.session.scalars(select(AuditEvent.action)))
    assert actions == ["kept"]
    assert [[r["values"]["action"] for r in p["rows"]] for p in payloads] == [["kept"]]
    assert report(world).intact


# --- two writers at one station -------------------------------------------------------------------

def test_two_writers_at_one_station_never_fork_the_chain(world: World, tmp_path: Path) -> None:
    path = tmp_path / "station.sqlite3"
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        engine = make_engine(str(path)).execution_options(sqlite_begin="immediate")  # as Station.uow
        try:
            start.wait()
            for n in range(30):
                with UnitOfWork.for_engine(engine) as uow:
                    audit.record(uow.session, world.ctx(), "test", name, n)
                    uow.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("gui", "headless")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with world.uow() as uow:
        assert list(uow.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq))) == list(range(1, 61))
    assert report(world).intact


def test_a_writer_that_read_before_another_committed_is_refused_not_forked(world: World) -> None:
    record_events(world, 2)
    with UnitOfWork.for_engine(world.engine) as uow:  # a plain BEGIN: no write lock until it writes
        late = uow.session
        late.execute(select(AuditEvent.seq)).all()  # its snapshot: rows 1-2
        record_events(world, 1)  # another writer adds row 3 meanwhile
        with pytest.raises(OperationalError):
            audit.record(late, world.ctx(), "late", "thing", 1)
        late.rollback()
    with world.uow() as uow:
        assert list(uow.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq))) == [1, 2, 3]
    assert report(world).intact


# --- print and policy events --------------------------------------------------------------------

def test_every_print_is_audited(world: World, tmp_path: Path) -> None:
    ctx = world.ctx()
    payload = PrintPayload(b"%PDF-1.4 label", "pdf", "disposition-label-LPN1")
    with world.uow() as uow:
        job = print_queue.enqueue(uow, ctx, "disposition-label", "LPN1", "folder", payload)
        uow.commit()
    dispatcher = print_queue.Dispatcher(sessionmaker(world.engine, expire_on_commit=False),
                                        {"folder": FolderPrinter(tmp_path / "out")}, clock=world.clock)
    assert [o.status for o in dispatcher.run_once()] == ["printed"]
    with world.uow() as uow:
        again = print_queue.reprint(uow, world.ctx(MEI), job)
        uow.commit()
    with world.uow() as uow:
        print_queue.cancel(uow, ctx, again)
        uow.commit()
    with world.uow() as uow:
        events = [(e.action, e.user_id, e.entity_id) for e in
                  uow.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        printed = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "document_printed")).one()
        kinds = list(uow.session.scalars(select(OutboxRow.kind)))
    assert events == [("print_requested", 1, str(job)), ("document_printed", 1, str(job)),
                      ("reprint_requested", 2, str(again)), ("print_cancelled", 1, str(again))]
    assert printed.details["printer"] == "folder" and printed.details["document"] == "disposition-label"
    assert printed.occurred_at == world.clock.now
    assert kinds == ["audit"] * 4  # each carried to central
    assert report(world).intact


def station_settings(world: World, policy_file: Path | None = None) -> Any:
    return load_settings(station_db=Path(str(world.engine.url.database)), user="aiko", policy_file=policy_file)


def policy_events(world: World) -> list[dict[str, Any]]:
    with world.uow() as uow:
        return [e.details for e in uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "policy_activated")
                                                       .order_by(AuditEvent.seq))]


def test_a_station_starting_under_a_new_policy_records_it_once(world: World, tmp_path: Path) -> None:
    Station.open(station_settings(world)).close()
    Station.open(station_settings(world)).close()  # the same policy again: nothing new
    first = policy_events(world)
    assert len(first) == 1 and first[0]["previous"] is None and first[0]["body_matches_stored_version"]
    shipped = (Path(audit.__file__).parent / "default_policy.toml").read_text(encoding="utf-8")
    newer = tmp_path / "newer.toml"
    newer.write_text(shipped.replace('version = "2026.12.1-default"', 'version = "2027.1"'), encoding="utf-8")
    Station.open(station_settings(world, newer)).close()
    # The same version with other rules (the file edited in place) is a policy change too.
    newer.write_text(newer.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    Station.open(station_settings(world, newer)).close()
    events = policy_events(world)
    assert [(e["version"], e["previous"]) for e in events] == [
        (first[0]["version"], None), ("2027.1", first[0]["version"]), ("2027.1", "2027.1")]
    assert events[2]["sha256"] != events[1]["sha256"] and not events[2]["body_matches_stored_version"]
    assert report(world).intact


# --- against the real PostgreSQL central ---------------------------------------------------------

@pytest.mark.postgres
def test_verify_against_a_real_postgresql_central(world: World, pg_url: str) -> None:
    central = make_engine(pg_url)
    ensure_central_schema(central)
    order = add_order(world, [LineSpec("AP-1", 1000), LineSpec("AP-2", 2500)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    for code in ("AP-1", "AP-2"):
        with world.uow() as uow:
            scan_item(uow, ctx, receipt.receipt_id, code)
    with world.uow() as uow:
        items = list(uow.session.scalars(select(ReturnItem.id).where(ReturnItem.rma_id == rma.id)))
    for item_id in items:
        with world.uow() as uow:
            inspect_item(uow, ctx, item_id, "A")
    with world.uow() as uow:
        decide(uow, ctx, DecideCommand(rma.id))
    # Values whose JSON text PostgreSQL could change (jsonb would): key order, floats, exponents,
    # escapes, integer keys; and more rows than the push COPYs at once.
    record_events(world, 25, lambda n: {"z": n, "a": 0.1 * n, "big": 1e20, "q": 'say "hi"\n', 10: "ten",
                                        9: ["nine"], "日本": {"b": None, "a": True}})
    assert push_once(world.engine, central, station_id="WH1-01").failed == 0
    with central.connect() as conn:
        assert conn.execute(text("SELECT data_type FROM information_schema.columns WHERE "
                                 "table_name = 'audit_events' AND column_name = 'details' "
                                 "AND table_schema = current_schema()")).scalar_one() in ("json", "jsonb")
        at_central = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    result = report(world, central)
    assert result.intact and result.central_rows == at_central == result.rows > 25
    with central.connect() as conn:
        assert verify_station(None, "WH1-01", central=conn).intact  # central's copy on its own

    seq = result.rows - 2
    with central.begin() as conn:
        conn.execute(text("UPDATE audit_events SET details = '{\"amount_minor\": 1}' WHERE seq = :seq"), {"seq": seq})
    assert report(world, central).problem == Problem(
        seq, f"central's copy: row {seq} edited: hash does not match its content")

    with central.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = :seq"), {"seq": seq})
    assert report(world, central).problem == Problem(
        seq, f"central lacks row {seq}, which this station holds (its event did not reach central: "
             "see `returns-console sync`)")
    with central.connect() as conn:
        assert verify_station(None, "WH1-01", central=conn).problem == Problem(
            seq, f"central's copy: row {seq} missing: row {seq + 1} follows row {seq - 1}")

    sql(world.engine, "DELETE FROM audit_events WHERE seq >= :seq", seq=seq - 1)
    sql(world.engine, "DELETE FROM outbox")
    assert report(world, central).problem == Problem(seq - 1, f"central has row {seq - 1} that this station lacks")
    central.dispose()


# --- the command ------------------------------------------------------------------------------

def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.strip()


def test_the_command_exits_0_when_intact_and_1_with_the_first_broken_link(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(world.engine.url.database)
    record_events(world, 6)
    assert run(capsys, "--station", path, "--user", "mei", "audit", "verify") == (
        0, ["WH1-01: intact (6 rows; 6 with their copy in the outbox)"], "")
    sql(world.engine, "DELETE FROM audit_events WHERE seq BETWEEN 2 AND 3")
    code, out, _ = run(capsys, "--station", path, "--user", "mei", "audit", "verify")
    assert (code, out) == (1, ["WH1-01: rows 2–3 missing: row 4 follows row 1"])


def test_the_command_compares_every_chain_with_central(world: World, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path, central_path = str(world.engine.url.database), tmp_path / "central.sqlite3"
    central = sqlite_central(tmp_path)
    record_events(world, 3)
    other = make_world(tmp_path / "other.sqlite3")  # a second station's chain, held by central only
    other.station_id = "WH1-02"
    record_events(other, 2)
    push_once(world.engine, central, station_id="WH1-01")
    push_once(other.engine, central, station_id="WH1-02")
    other.engine.dispose()
    args = ("--station", path, "--user", "mei", "audit", "verify", "--central", str(central_path))
    assert run(capsys, *args, "--all") == (0, [
        "WH1-01: intact (3 rows; 3 with their copy in the outbox; central holds 3)",
        "WH1-02: intact (2 rows)"], "")
    sql(central, "UPDATE audit_events SET action = 'nothing' WHERE station_id = 'WH1-02' AND seq = 2")
    sql(world.engine, "DELETE FROM audit_events WHERE seq = 3")
    sql(world.engine, "DELETE FROM outbox")
    assert run(capsys, *args, "--all") == (1, [
        "WH1-01: central has row 3 that this station lacks",
        "WH1-02: central's copy: row 2 edited: hash does not match its content"], "")
    assert run(capsys, *args, "--station", "WH1-02")[0] == 1
    # Central alone, where no station database is at hand: central knows who may verify.
    with UnitOfWork.for_engine(central) as uow:
        uow.session.add(User(id=2, username="mei", display_name="Mei", role="supervisor", password_hash="!"))
        uow.commit()
    assert run(capsys, "--station", str(tmp_path / "none.sqlite3"), "--user", "mei", "audit", "verify",
               "--central", str(central_path), "--station", "WH1-01")[:2] == (0, ["WH1-01: intact (3 rows)"])
    central.dispose()


def test_the_command_says_what_is_wrong_when_it_cannot_verify(world: World, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = str(world.engine.url.database)
    code, out, err = run(capsys, "--station", str(tmp_path / "missing.sqlite3"), "--user", "mei", "audit", "verify")
    assert code == 1 and out == [] and "does not exist" in err and len(err.splitlines()) == 1
    not_a_station = tmp_path / "notes.sqlite3"
    not_a_station.write_bytes(b"this is not a database at all, just some text" * 100)
    code, out, err = run(capsys, "--station", str(not_a_station), "--user", "mei", "audit", "verify")
    assert code == 1 and "cannot be opened" in err and "Traceback" not in err
    code, out, err = run(capsys, "--station", path, "--user", "mei", "audit", "verify", "--central",
                         "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert code == 1 and "central database cannot be opened" in err
    code, out, err = run(capsys, "--station", path, "--user", "aiko", "audit", "verify")
    assert code == 1 and "only a supervisor or admin may verify the audit trail" in err
