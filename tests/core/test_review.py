"""Supervisor review: the queue, a case's evidence, and four eyes — in the service, in the station's
database, and across two stations and a real PostgreSQL central (the verdict flows back and the
receiving station prints, once)."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from console.context import Actor
from console.deciding import DecideCommand, decide
from console.errors import InvalidInput, NotAllowed, NotFound, StateConflict
from console.inspection import inspect_item
from console.receiving import receive_parcel, scan_item
from console.review import (
    PRINTED_ACTION, QueueFilters, approve, print_settled_reviews, reject, review_case, review_queue,
)
from db.models import (
    Approval, AuditEvent, Claim, Customer, Decision, DecisionLine, Disposition, OutboxRow, PrintJob,
    ReturnAuthorization, ReturnItem, Station, User,
)
from db.uow import UnitOfWork
from printing.settings import default_settings
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world

AIKO = Actor(1, "aiko", "Aiko", "clerk")
MEI = Actor(2, "mei", "Mei", "supervisor")
SORA = Actor(3, "sora", "Sora", "supervisor")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    with w.uow() as uow:
        uow.session.add(User(id=3, username="sora", display_name="Sora", role="supervisor", password_hash="x"))
        uow.commit()
    yield w
    w.engine.dispose()


def pending_case(world: World, *, price: int = 89900, units: int = 1, by: Actor = AIKO,
                 note: str | None = "box was taped twice", tracking: str | None = None) -> uuid.UUID:
    """A refund above the policy's always-review amount, received, scanned, graded and decided
    by ``by`` at the bench: it waits for a supervisor."""
    order = add_order(world, [LineSpec("EL-1", price, quantity=units, category="electronics", weight_g=900)],
                      tracking=tracking)
    rma = add_rma(world, order)
    ctx = world.ctx(by)
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number, weight_g=300, weight_source="scale")
    for _ in range(units):
        with world.uow() as uow:
            scan_item(uow, ctx, receipt.receipt_id, "EL-1")
    with world.uow() as uow:
        items = list(uow.session.scalars(select(ReturnItem.id).where(ReturnItem.rma_id == rma.id)))
    for item_id in items:
        with world.uow() as uow:
            inspect_item(uow, ctx, item_id, "A", checklist={"original_packaging": True}, notes="screen fine",
                         photos=["/photos/IMG_1.jpg"])
    with world.uow() as uow:
        result = decide(uow, ctx, DecideCommand(rma.id, note=note))
    assert result.status == "pending_review", result.review_reasons
    return result.decision_id


def status_of(world: World, decision_id: uuid.UUID) -> str:
    with world.uow() as uow:
        return uow.session.scalar(select(Decision.status).where(Decision.id == decision_id)) or ""


# -- the queue --------------------------------------------------------------------------------------

def test_the_queue_lists_waiting_cases_oldest_day_first_then_largest(world: World) -> None:
    world.clock.now -= timedelta(days=1)
    yesterday_small = pending_case(world, price=60000)
    world.clock.now += timedelta(days=1)
    today_small = pending_case(world, price=55000)
    world.clock.now += timedelta(minutes=5)
    today_large = pending_case(world, price=120000)
    with world.uow() as uow:
        queue = review_queue(uow, world.ctx(MEI))
        assert [e.id for e in queue] == [yesterday_small, today_large, today_small]
        assert all(e.kind == "decision" and e.actionable and e.decided_by == "Aiko" for e in queue)
        assert queue[1].score is not None and "always needs a supervisor" in queue[1].summary
        largest = review_queue(uow, world.ctx(MEI), QueueFilters(sort="largest"))
        assert [e.id for e in largest] == [today_large, yesterday_small, today_small]
        assert [e.id for e in review_queue(uow, world.ctx(MEI), QueueFilters(min_amount_minor=100000))] == [today_large]
        assert review_queue(uow, world.ctx(MEI), QueueFilters(station="WH9-99")) == []
        assert len(review_queue(uow, world.ctx(MEI), QueueFilters(station="wh1-01"))) == 3
        number = queue[0].rma_number
        assert [e.id for e in review_queue(uow, world.ctx(MEI), QueueFilters(text=number.lower()))] == [yesterday_small]
        assert review_queue(uow, world.ctx(MEI), QueueFilters(kind="claim")) == []


def test_conflicts_are_in_the_queue_read_only_and_open_claims_to_settle(world: World) -> None:
    case = pending_case(world)
    with world.engine.begin() as conn:  # as central's refusal leaves it (no unit of work: no event)
        conn.execute(update(Decision).where(Decision.id == case).values(status="conflict"))
    with world.uow() as uow:
        order_id = uow.session.scalar(select(Decision.order_id).where(Decision.id == case))
        uow.session.add(Claim(order_id=order_id, kind="not_received", status="open", amount_minor=4500,
                              currency="USD", created_by_id=1, created_at=world.clock.now))
        uow.commit()
    with world.uow() as uow:
        queue = review_queue(uow, world.ctx(MEI))
    assert sorted(e.kind for e in queue) == ["claim", "conflict"]
    assert {e.kind: e.actionable for e in queue} == {"claim": True, "conflict": False}
    conflict = next(e for e in queue if e.kind == "conflict")
    assert "lost a race" in conflict.summary
    with world.uow() as uow, pytest.raises(StateConflict, match="lost a race"):
        approve(uow, world.ctx(MEI), case, "fine")


def test_bad_filters_are_refused_with_what_to_choose(world: World) -> None:
    with world.uow() as uow:
        with pytest.raises(InvalidInput, match="decision, conflict, claim"):
            review_queue(uow, world.ctx(MEI), QueueFilters(kind="parcel"))
        with pytest.raises(InvalidInput, match="oldest, largest"):
            review_queue(uow, world.ctx(MEI), QueueFilters(sort="newest"))


# -- a case -----------------------------------------------------------------------------------------

def test_a_case_shows_the_evidence_side_by_side_and_logs_the_unmasked_contact(world: World) -> None:
    case = pending_case(world)
    with world.uow() as uow:
        view = review_case(uow, world.ctx(MEI), case)
    assert view.status == "pending_review" and view.amount.minor == 89900 and view.decided_by == "Aiko"
    assert view.received_by == ("Aiko",) and view.may_settle
    assert view.risk_score is not None and view.risk_score >= 45
    weight = next(s for s in view.signals if s.code == "weight_mismatch")
    assert weight.weight == 45 and "parcel weighs 300 g" in weight.message
    (parcel,) = view.parcels
    assert parcel.weight_g == 300 and parcel.weight_mismatch and parcel.weight_off_by_g is not None
    assert [s.result for s in parcel.scans] == ["matched"]
    (unit,) = view.units
    assert (unit.grade, unit.checklist, unit.photos, unit.paid.minor) == ("A", {"original_packaging": True},
                                                                          ("/photos/IMG_1.jpg",), 89900)
    assert view.clerk_note is not None and "box was taped twice" in view.clerk_note and "screen fine" in view.clerk_note
    # Contact details stay masked, and reading a case writes nothing ...
    assert view.customer.contact_masked and "•" in view.customer.email and view.missing_evidence == ()
    with world.uow() as uow:
        assert uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "pii_viewed")).all() == []
    # ... until the supervisor says why the case needs them: shown, and logged with the reason.
    with world.uow() as uow:
        with pytest.raises(InvalidInput, match="Say why"):
            review_case(uow, world.ctx(MEI), case, reveal="  ")
        shown = review_case(uow, world.ctx(MEI), case, reveal="customer asks about the refund")
    assert shown.customer.email.endswith("@example.com") and "•" not in shown.customer.email
    with world.uow() as uow:
        viewed = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "pii_viewed")).all()
        assert [(e.user_id, e.entity, e.details["why"]) for e in viewed] == [
            (2, "customer", "customer asks about the refund")]


def test_a_case_shows_other_returns_to_the_same_address(world: World) -> None:
    case = pending_case(world)
    pending_case(world, price=70000)  # another customer's return...
    with world.engine.begin() as conn:
        conn.execute(update(Customer).values(address="1 Main St\nSpringfield"))  # ...to the same door
    with world.uow() as uow:
        view = review_case(uow, world.ctx(MEI), case)
    assert [(r.customer_name != view.customer.name, r.same_address_only) for r in view.customer.other_returns] \
        == [(True, True)]
    assert view.customer.address == ("1 Main St", "Springfield")


def test_the_clerk_sees_neither_the_queue_nor_a_case(world: World) -> None:
    case = pending_case(world)
    with world.uow() as uow:
        with pytest.raises(NotAllowed, match="only a supervisor or admin may review"):
            review_queue(uow, world.ctx(AIKO))
        with pytest.raises(NotAllowed):
            review_case(uow, world.ctx(AIKO), case)
    with world.uow() as uow, pytest.raises(NotFound):
        review_case(uow, world.ctx(MEI), uuid.uuid4())


# -- four eyes ----------------------------------------------------------------------------------------

def test_a_clerk_cannot_approve(world: World) -> None:
    case = pending_case(world, by=MEI)  # decided by a supervisor, so aiko did not decide it either
    with world.uow() as uow, pytest.raises(NotAllowed, match="Aiko is signed in as clerk"):
        approve(uow, world.ctx(AIKO), case, "looks fine")
    assert status_of(world, case) == "pending_review"


def test_a_supervisor_cannot_approve_their_own_case_through_the_service(world: World) -> None:
    case = pending_case(world, by=MEI)
    with world.uow() as uow, pytest.raises(NotAllowed, match="Mei made this decision.*four eyes"):
        approve(uow, world.ctx(MEI), case, "mine, but fine")
    with world.uow() as uow, pytest.raises(NotAllowed, match="four eyes"):
        reject(uow, world.ctx(MEI), case, "mine")
    with world.uow() as uow:
        view = review_case(uow, world.ctx(MEI), case)
    assert not view.may_settle and "four eyes" in (view.why_not or "")
    assert status_of(world, case) == "pending_review"


def test_whoever_received_the_parcel_cannot_approve_even_if_someone_else_decided(world: World) -> None:
    order = add_order(world, [LineSpec("EL-1", 89900, category="electronics", weight_g=900)])
    rma = add_rma(world, order)
    with world.uow() as uow:
        receipt = receive_parcel(uow, world.ctx(MEI), rma.number)  # mei at the bench for a moment
    with world.uow() as uow:
        scan_item(uow, world.ctx(AIKO), receipt.receipt_id, "EL-1")
    with world.uow() as uow:
        item_id = uow.session.scalar(select(ReturnItem.id).where(ReturnItem.rma_id == rma.id))
        inspect_item(uow, world.ctx(AIKO), item_id, "A")
    with world.uow() as uow:
        case = decide(uow, world.ctx(AIKO), DecideCommand(rma.id)).decision_id
    with world.uow() as uow, pytest.raises(NotAllowed, match="Mei received a parcel of this case"):
        approve(uow, world.ctx(MEI), case, "fine")
    with world.uow() as uow:
        assert approve(uow, world.ctx(SORA), case, "fine").verdict == "approved"


def test_the_database_refuses_an_approval_by_the_decider_written_through_the_session(world: World) -> None:
    case = pending_case(world, by=MEI)
    with world.uow() as uow:
        uow.session.add(Approval(decision_id=case, supervisor_id=2, verdict="approved", amount_minor=89900,
                                 note="around the service", decided_at=world.clock.now))
        with pytest.raises(DBAPIError, match="four_eyes"):
            uow.commit()
    with world.uow() as uow:
        uow.session.add(Approval(decision_id=case, supervisor_id=1, verdict="approved", note="a clerk",
                                 decided_at=world.clock.now))
        with pytest.raises(DBAPIError, match="four_eyes"):
            uow.commit()
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Approval)) == 0


def test_two_supervisors_settling_at_once_only_one_wins(world: World, tmp_path: Path) -> None:
    case = pending_case(world)
    # Both read the case while it waits (each in a read of its own, as the review page does)...
    with world.uow() as reading:
        assert review_case(reading, world.ctx(MEI), case).may_settle
        assert review_case(reading, world.ctx(SORA), case).may_settle
    with world.uow() as first, world.uow() as second:
        approve(first, world.ctx(MEI), case, "ok")
        # ...the second's conditional update finds it settled, and says by whom.
        with pytest.raises(StateConflict, match="Already settled: approved by Mei"):
            reject(second, world.ctx(SORA), case, "no")
    with world.uow() as uow:
        assert [a.verdict for a in uow.session.scalars(select(Approval))] == ["approved"]
    assert status_of(world, case) == "approved"


# -- the verdicts ----------------------------------------------------------------------------------------

def test_approve_writes_approval_audit_and_outbox_in_one_transaction(world: World) -> None:
    case = pending_case(world)
    with world.uow() as uow:
        before = uow.session.scalar(select(func.count()).select_from(OutboxRow))
    approval_id = uuid.uuid4()
    with world.uow() as uow:
        result = approve(uow, world.ctx(MEI), case, "serial checked on the phone", approval_id=approval_id)
    assert (result.verdict, result.status, result.amount.minor, result.rma_status) == ("approved", "approved",
                                                                                        89900, "closed")
    with world.uow() as uow:
        s = uow.session
        event = s.scalars(select(OutboxRow).order_by(OutboxRow.id.desc())).first()
        assert event is not None and event.kind == "approval" and event.aggregate_id == str(case)
        tables = [r["table"] for r in event.payload["rows"]]
        assert {"approvals", "decisions", "decision_lines", "return_authorizations"} <= set(tables)
        # The approver only read: named by key, sent at push time if central lacks them.
        assert MEI.user_id in event.payload["refs"]["users"]
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == before + 1
        audit = s.scalars(select(AuditEvent).where(AuditEvent.action == "approval")).one()
        assert audit.details["note"] == "serial checked on the phone" and audit.user_id == 2
        assert s.scalar(select(ReturnItem.acceptance_status)) == "accepted"
        rma = s.scalars(select(ReturnAuthorization)).one()
        assert (rma.status, rma.closed_by_id) == ("closed", 2)
    with world.uow() as uow:  # the same press again: nothing new
        again = approve(uow, world.ctx(MEI), case, "serial checked on the phone", approval_id=approval_id)
    assert again.already_existed
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Approval)) == 1


def test_approve_with_a_different_amount_is_itemized_and_capped_at_what_was_paid(world: World) -> None:
    case = pending_case(world, price=30000, units=2)  # 60,000: above the always-review amount
    with world.uow() as uow:
        lines = {ln.return_item_id: ln.paid_minor for ln in uow.session.scalars(select(DecisionLine))}
    first, second = sorted(lines)
    with world.uow() as uow, pytest.raises(InvalidInput, match="what was paid for it"):
        approve(uow, world.ctx(MEI), case, "more", {first: lines[first] + 1})
    with world.uow() as uow, pytest.raises(InvalidInput, match="not a unit of this decision"):
        approve(uow, world.ctx(MEI), case, "other", {999: 100})
    with world.uow() as uow, pytest.raises(InvalidInput, match="Write a note"):
        approve(uow, world.ctx(MEI), case, "  ", {first: 100})
    with world.uow() as uow:
        result = approve(uow, world.ctx(MEI), case, "scratch on one unit", {first: 20000})
    assert (result.verdict, result.amount.minor, result.was.minor) == ("partial", 20000 + lines[second], 60000)
    with world.uow() as uow:
        d = uow.session.get(Decision, case)
        assert d is not None and (d.status, d.kind, d.amount_minor) == ("approved", "partial_refund", 50000)
        refunds = {ln.return_item_id: ln.refund_minor for ln in d.lines}
        assert refunds == {first: 20000, second: lines[second]}
        approval = uow.session.scalars(select(Approval)).one()
        assert (approval.verdict, approval.amount_minor) == ("partial", 50000)


def test_reject_closes_the_refund_as_denied(world: World) -> None:
    case = pending_case(world)
    with world.uow() as uow, pytest.raises(InvalidInput, match="why it is rejected"):
        reject(uow, world.ctx(MEI), case, "")
    with world.uow() as uow:
        result = reject(uow, world.ctx(MEI), case, "weighs a third of the phone: keep for investigation")
    assert (result.verdict, result.status, result.amount.minor, result.rma_status) == ("rejected", "rejected", 0,
                                                                                        "closed")
    with world.uow() as uow:
        s = uow.session
        assert s.scalar(select(ReturnItem.acceptance_status)) == "rejected"
        assert s.scalar(select(DecisionLine.active)) is True  # the unit stays settled: no second refund
    with world.uow() as uow, pytest.raises(StateConflict, match="Already settled: rejected by Mei"):
        approve(uow, world.ctx(SORA), case, "changed my mind")


# -- the verdict reaches the station that received the parcel -----------------------------------------------

def test_settled_reviews_print_once_at_the_receiving_station(world: World, tmp_path: Path) -> None:
    case = pending_case(world)
    printers = default_settings(tmp_path)
    with world.uow() as uow:
        assert print_settled_reviews(uow, world.ctx(MEI), printers) == []  # still waiting
        approve(uow, world.ctx(MEI), case, "ok")
    with world.uow() as uow:
        queued = print_settled_reviews(uow, world.ctx(AIKO), printers)
    assert sorted(q.document for q in queued) == ["disposition-label", "refund-receipt"]
    with world.uow() as uow:
        assert print_settled_reviews(uow, world.ctx(AIKO), printers) == []
        jobs = uow.session.scalars(select(PrintJob)).all()
        assert {j.requested_by_id for j in jobs} == {2}  # in the name of the supervisor's verdict
        kinds = [d.kind for d in uow.session.scalars(select(Disposition).order_by(Disposition.decided_at))]
        assert kinds[-1] == "restock"
        assert uow.session.scalars(select(AuditEvent.entity_id).where(AuditEvent.action == PRINTED_ACTION)).all() \
            == [str(case)]


@pytest.mark.postgres
def test_the_verdict_flows_back_through_central_and_prints_once_at_the_receiving_station(
        tmp_path: Path, pg_url: str) -> None:
    from console.sync_runner import SyncLoop
    from db.engine import make_engine, sqlite_url
    from db.pull import pull_once
    from db.push import ensure_central_schema, push_once
    from tests.sync.test_pull import settle

    central = make_engine(pg_url)
    ensure_central_schema(central)
    with UnitOfWork.for_engine(central) as uow:  # central's users; stations pull them
        uow.session.add_all([Station(id="WH1-01", name="Bench 1"), Station(id="WH1-02", name="Bench 2"),
                             User(id=1, username="aiko", display_name="Aiko", role="clerk", password_hash="x"),
                             User(id=2, username="mei", display_name="Mei", role="supervisor", password_hash="x"),
                             User(id=3, username="sora", display_name="Sora", role="supervisor", password_hash="x")])
        uow.commit()
    a = make_world(tmp_path / "a.sqlite3")
    b = make_world(tmp_path / "b.sqlite3")
    b.station_id = "WH1-02"
    try:
        with b.uow() as uow:
            uow.session.add(Station(id="WH1-02", name="Bench 2"))
            uow.commit()
        case = pending_case(a, tracking="1ZFLOWBACK000001")  # aiko receives and decides at bench 1
        assert not push_once(a.engine, central, station_id="WH1-01").failed
        settle(central)
        pull_once(b.engine, central)
        with b.uow() as uow:  # bench 2 has the case from central's replica
            assert [e.id for e in review_queue(uow, b.ctx(SORA))] == [case]
            approve(uow, b.ctx(SORA), case, "approved from bench 2")
        report = push_once(b.engine, central, station_id="WH1-02")
        assert (report.pushed, report.failed) == (1, 0), report.errors
        with central.connect() as conn:
            assert conn.execute(select(Decision.status).where(Decision.id == case)).scalar_one() == "approved"
        settle(central)
        printers = default_settings(tmp_path / "printed-a")
        loop = SyncLoop(sqlite_url(tmp_path / "a.sqlite3"), pg_url, "WH1-01", printers=printers)
        try:
            first = loop.pass_once()
            assert first.online, first.message
            loop.pass_once()  # a second pass (and a restart below) prints nothing more
        finally:
            loop.close()
        again = SyncLoop(sqlite_url(tmp_path / "a.sqlite3"), pg_url, "WH1-01", printers=printers)
        try:
            again.pass_once()
        finally:
            again.close()
        with a.uow() as uow:
            assert status_of(a, case) == "approved"
            jobs = uow.session.scalars(select(PrintJob.document).where(PrintJob.requested_by_id == 3)).all()
            assert sorted(jobs) == ["disposition-label", "refund-receipt"]
        with b.uow() as uow:  # bench 2 did not receive the parcel: it prints nothing
            assert print_settled_reviews(uow, b.ctx(SORA), default_settings(tmp_path / "printed-b")) == []
    finally:
        a.engine.dispose()
        b.engine.dispose()
        central.dispose()


@pytest.mark.postgres
def test_two_supervisors_at_once_on_postgresql_one_wins(world: World, pg_url: str) -> None:
    """The checked conditional update where two transactions really overlap: central's database."""
    from db.engine import make_engine
    from db.push import ensure_central_schema, push_once

    engine = make_engine(pg_url)
    ensure_central_schema(engine)
    with UnitOfWork.for_engine(engine) as uow:
        uow.session.add_all([User(id=1, username="aiko", display_name="Aiko", role="clerk", password_hash="x"),
                             User(id=2, username="mei", display_name="Mei", role="supervisor", password_hash="x"),
                             User(id=3, username="sora", display_name="Sora", role="supervisor", password_hash="x")])
        uow.commit()
    case = pending_case(world)
    assert not push_once(world.engine, engine, station_id="WH1-01").failed
    central = World(engine, world.clock, world.policy)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    try:
        def settle_as(actor: Actor) -> None:
            with central.uow() as uow:
                barrier.wait(10)
                try:
                    approve(uow, central.ctx(actor), case, f"ok from {actor.username}")
                    outcomes.append("won")
                except StateConflict as exc:
                    outcomes.append(exc.message)

        threads = [threading.Thread(target=settle_as, args=(who,)) for who in (MEI, SORA)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert outcomes.count("won") == 1 and len(outcomes) == 2, outcomes
        loser = next(o for o in outcomes if o != "won")
        assert "Already settled: approved by" in loser
        with central.uow() as uow:
            assert uow.session.scalar(select(func.count()).select_from(Approval)) == 1
            assert uow.session.scalar(select(Decision.status).where(Decision.id == case)) == "approved"
    finally:
        engine.dispose()


# -- headless commands -------------------------------------------------------------------------------------

def test_the_review_commands_list_show_and_settle_with_the_same_rules(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    from console.cli import main
    from console.signin import set_pin

    case = pending_case(world)
    for user_id in (2, 3):
        with world.uow() as uow:
            set_pin(uow, user_id, "2468")
    world.engine.dispose()
    station = ["--station", str(tmp_path / "station.sqlite3")]

    def pin(text: str = "2468\n") -> None:  # each command reads the acting user's PIN first
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    assert main([*station, "--user", "aiko", "review", "list"]) == 1
    assert "only a supervisor or admin may review" in capsys.readouterr().err
    pin("1111\n")  # naming a supervisor is not enough: their PIN is asked for
    assert main([*station, "--user", "mei", "review", "approve", str(case), "--note", "ok"]) == 1
    assert "PIN is wrong" in capsys.readouterr().err and status_of(world, case) == "pending_review"
    pin()
    assert main([*station, "--user", "mei", "review", "list", "--min-amount", "50000"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["id"] == str(case)
    pin()
    assert main([*station, "--user", "mei", "review", "show", str(case)[:8]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["may_settle"] and shown["units"][0]["paid"] == {"minor": 89900, "currency": "USD"}
    item = shown["units"][0]["return_item_id"]
    pin()
    assert main([*station, "--user", "mei", "review", "approve", str(case), "--note", "x",
                 "--amount", f"{item}=abc"]) == 1
    assert "RETURN_ITEM_ID=MINOR_UNITS" in capsys.readouterr().err
    pin()
    assert main([*station, "--user", "mei", "review", "approve", str(case), "--note", "dent on the back",
                 "--amount", f"{item}=80000"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["verdict"], result["amount_minor"], result["was_minor"]) == ("partial", 80000, 89900)
    # The command line's verdict prints as the review page's does: this station received the parcel.
    with world.uow() as uow:
        documents = sorted(uow.session.scalars(select(PrintJob.document)))
    assert result["printed"] == len(documents) and "refund-receipt" in documents, documents
    pin()
    assert main([*station, "--user", "sora", "review", "reject", str(case), "--note", "too late"]) == 1
    assert "Already settled: partial by Mei" in capsys.readouterr().err


def test_two_supervisors_settling_one_case_at_two_stations_offline_first_to_central_wins(
        tmp_path: Path, pg_url: str) -> None:
    """Each bench's checked update holds only locally: while apart, two benches can both approve.
    Central keeps the verdict that reached it first and refuses the second, kept as a conflict."""
    from db.engine import make_engine
    from db.models import SyncConflict
    from db.pull import pull_once
    from db.push import ensure_central_schema, push_once
    from tests.sync.test_pull import settle

    central = make_engine(pg_url)
    ensure_central_schema(central)
    with UnitOfWork.for_engine(central) as uow:
        uow.session.add_all([Station(id=s, name=s) for s in ("WH1-01", "WH1-02", "WH1-03")] + [
            User(id=1, username="aiko", display_name="Aiko", role="clerk", password_hash="x"),
            User(id=2, username="mei", display_name="Mei", role="supervisor", password_hash="x"),
            User(id=3, username="sora", display_name="Sora", role="supervisor", password_hash="x")])
        uow.commit()
    benches = [make_world(tmp_path / f"{n}.sqlite3") for n in "abc"]
    for world, station in zip(benches, ("WH1-01", "WH1-02", "WH1-03")):
        world.station_id = station
        with world.uow() as uow:
            if uow.session.get(Station, station) is None:
                uow.session.add(Station(id=station, name=station))
            uow.commit()
    a, b, c = benches
    try:
        case = pending_case(a, tracking="1ZRACE0000000001")
        assert not push_once(a.engine, central, station_id="WH1-01").failed
        settle(central)
        for world in (b, c):
            pull_once(world.engine, central)
        with b.uow() as uow:  # the evidence came with the case (0008's change feed)
            seen = review_case(uow, b.ctx(MEI), case)
            assert seen.missing_evidence == () and seen.risk_score is not None and seen.signals
            assert [u.grade for u in seen.units] == ["A"] and seen.parcels
        with b.uow() as uow:
            first = approve(uow, b.ctx(MEI), case, "fine, from bench 2")
        with c.uow() as uow:
            item = uow.session.scalar(select(DecisionLine.return_item_id).where(DecisionLine.decision_id == case))
            approve(uow, c.ctx(SORA), case, "less, from bench 3", {item: 100})
        pushed = push_once(b.engine, central, station_id="WH1-02")  # the verdict (and the contact seen)
        assert (pushed.failed, pushed.pending_after) == (0, 0), pushed.errors
        report = push_once(c.engine, central, station_id="WH1-03")
        assert (report.pushed, report.failed) == (1, 0), report.errors
        with central.connect() as conn:
            decision = conn.execute(select(Decision.status, Decision.amount_minor).where(Decision.id == case)).one()
            verdicts = dict(conn.execute(select(Approval.supervisor_id, Approval.refused_reason)
                                         .where(Approval.decision_id == case)).all())
            conflicts = conn.execute(select(SyncConflict.kind, SyncConflict.station_id)
                                     .where(SyncConflict.decision_id == case)).all()
            # Nothing the refused verdict changed at bench 3 lands: not the unit's refund, not its state.
            line = conn.execute(select(DecisionLine.refund_minor).where(DecisionLine.decision_id == case)).scalar_one()
            unit = conn.execute(select(ReturnItem.acceptance_status).where(ReturnItem.id == item)).scalar_one()
        assert (line, unit) == (89900, "accepted")
        assert decision.status == "approved" and decision.amount_minor == 89900
        assert verdicts[2] is None and "mei had already settled this case" in verdicts[3]
        assert str(first.approval_id) in verdicts[3]
        assert conflicts == [("approval_refused", "WH1-03")]
    finally:
        for world in benches:
            world.engine.dispose()
        central.dispose()


# -- claims ------------------------------------------------------------------------------------------------

def open_claim(world: World, *, by: int = 1, amount: int = 4500) -> uuid.UUID:
    order = add_order(world, [LineSpec("AP-1", amount)])
    claim_id = uuid.uuid4()
    with world.uow() as uow:
        uow.session.add(Claim(id=claim_id, order_id=order.id, kind="not_received", status="open", amount_minor=amount,
                              currency="USD", created_by_id=by, created_at=world.clock.now,
                              evidence={"station_id": world.station_id}))
        uow.commit()
    return claim_id


def test_a_supervisor_settles_a_claim_with_a_note_and_never_above_the_claimed_amount(world: World) -> None:
    from console.claim_review import settle_claim

    claim_id = open_claim(world)
    with world.uow() as uow:
        with pytest.raises(NotAllowed):
            settle_claim(uow, world.ctx(AIKO), claim_id, "fine")
        with pytest.raises(InvalidInput, match="Write a note"):
            settle_claim(uow, world.ctx(MEI), claim_id, " ")
        with pytest.raises(InvalidInput, match="at most the claimed USD 45.00"):
            settle_claim(uow, world.ctx(MEI), claim_id, "carrier confirms", amount_minor=4501)
        verdict = settle_claim(uow, world.ctx(MEI), claim_id, "carrier confirms the loss", amount_minor=4000)
    assert (verdict.status, verdict.amount.minor, verdict.claimed.minor) == ("approved", 4000, 4500)
    with world.uow() as uow:
        claim = uow.session.get(Claim, claim_id)
        assert (claim.status, claim.outcome, claim.amount_minor, claim.settled_by_id, claim.review_note) == (
            "approved", "refund", 4000, 2, "carrier confirms the loss")
        event = uow.session.scalars(select(OutboxRow).where(OutboxRow.kind == "claim_settled")).one()
        assert any(r["table"] == "claims" and r["values"]["status"] == "approved" for r in event.payload["rows"])
        assert uow.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "claim_settled")).all() \
            == ["claim_settled"]
        with pytest.raises(StateConflict, match="Already settled: approved by Mei"):
            settle_claim(uow, world.ctx(SORA), claim_id, "no", reject=True)
    with world.uow() as uow:
        assert review_queue(uow, world.ctx(SORA)) == []


def test_whoever_made_a_claim_cannot_settle_it_in_the_service_or_the_database(world: World) -> None:
    from console.claim_review import settle_claim

    claim_id = open_claim(world, by=2)  # Mei made it
    with world.uow() as uow:
        with pytest.raises(StateConflict, match="Mei made this claim"):
            settle_claim(uow, world.ctx(MEI), claim_id, "mine, fine")
    with world.uow() as uow, pytest.raises(DBAPIError, match="claims_four_eyes"):
        uow.session.execute(update(Claim).where(Claim.id == claim_id).values(status="approved", settled_by_id=2))
        uow.session.flush()
    with world.uow() as uow:
        rejected = settle_claim(uow, world.ctx(SORA), claim_id, "no proof of delivery problem", reject=True)
    assert (rejected.status, rejected.amount.minor) == ("rejected", 0)


def test_a_claim_verdict_reaches_central_and_central_refuses_a_forged_one(world: World, pg_url: str) -> None:
    from console.claim_review import settle_claim
    from db.central import init_central
    from db.engine import make_engine
    from db.push import push_once

    claim_id = open_claim(world)
    central = make_engine(pg_url)
    try:
        init_central(central)
        with world.uow() as uow:
            settle_claim(uow, world.ctx(MEI), claim_id, "ok", amount_minor=3000)
        report = push_once(world.engine, central)
        assert (report.failed, report.pending_after) == (0, 0), report.errors
        with central.connect() as conn:
            row = conn.execute(select(Claim.status, Claim.amount_minor, Claim.settled_by_id)
                               .where(Claim.id == claim_id)).one()
        assert tuple(row) == ("approved", 3000, 2)
        with central.begin() as conn, pytest.raises(DBAPIError, match="may not settle it"):
            conn.execute(update(Claim).where(Claim.id == claim_id).values(settled_by_id=1))
    finally:
        central.dispose()


def test_the_review_commands_settle_a_claim_by_its_id(world: World, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    from console.cli import main
    from console.signin import set_pin

    claim_id = open_claim(world)
    with world.uow() as uow:
        set_pin(uow, 2, "2468")
    world.engine.dispose()
    station = ["--station", str(tmp_path / "station.sqlite3")]
    monkeypatch.setattr("sys.stdin", io.StringIO("2468\n"))
    assert main([*station, "--user", "mei", "review", "approve", str(claim_id)[:8], "--note", "lost in transit",
                 "--amount", "0=4200"]) == 0
    assert json.loads(capsys.readouterr().out) == {"claim_id": str(claim_id), "status": "approved",
                                                   "amount_minor": 4200, "claimed_minor": 4500, "currency": "USD"}


def test_a_large_refund_cannot_be_written_as_approved_without_review_even_through_the_session(
        world: World, tmp_path: Path) -> None:
    """The policy's always-review amount (USD 500.00) holds in the station's database: opening the
    station writes it down, and a trigger refuses an approved refund at or above it."""
    from console.config import Settings
    from console.station import Station as Console
    from db.engine import sqlite_url

    settings = Settings(data_dir=tmp_path, config_file=tmp_path / "config.toml",
                        station_db=tmp_path / "station.sqlite3", central_url=sqlite_url(tmp_path / "central.sqlite3"),
                        station_id=world.station_id, user="aiko")
    Console.open(settings).close()
    case = pending_case(world)  # the service sends USD 899.00 to review
    assert status_of(world, case) == "pending_review"
    with world.uow() as uow:
        template = uow.session.get(Decision, case)
        row = {c.name: getattr(template, c.key) for c in Decision.__table__.columns}

    def write(**values: object) -> None:
        # A plain session, not a unit of work: that one refuses a Core INSERT of a synced table.
        with Session(world.engine) as session:
            session.execute(Decision.__table__.insert().values({**row, "id": uuid.uuid4(), **values}))
            session.commit()

    with pytest.raises(DBAPIError, match="decisions_review_limit"):
        write(status="approved", amount_minor=50000)
    write(status="approved", amount_minor=49999)  # below the amount: the bench may settle it
    write(status="pending_review", amount_minor=89900)
    write(status="approved", amount_minor=89900, kind="exchange")  # pays nothing
    with world.uow() as uow:
        uow.session.add(Station(id="WH9-99", name="Bench 99"))
        uow.commit()
    write(status="approved", amount_minor=89900, station_id="WH9-99")  # another bench's, pulled
