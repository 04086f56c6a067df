"""Ctrl+Z at the bench: the parcel's last scan or grade taken back, kept and audited, until it is decided."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from console.audit_verify import verify_chain
from console.deciding import DecideCommand, decide, propose
from console.disposition import dispose, suggested_disposition
from console.errors import NotFound, StateConflict
from console.inspection import inspect_item, latest_grades
from console.receiving import receive_parcel, scan_item
from console.undo import last_undoable, undo_last
from console.views import load_rma_view
from db.models import AuditEvent, Inspection, ItemScan, OutboxRow, ReturnAuthorization, ReturnItem
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


def _tick(world: World, seconds: int = 2) -> None:
    world.clock.now += timedelta(seconds=seconds)


def _items(world: World, rma_id: int) -> list[ReturnItem]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(ReturnItem).where(ReturnItem.rma_id == rma_id).order_by(ReturnItem.id)))


def _receive(world: World, rma: ReturnAuthorization) -> uuid.UUID:
    with world.uow() as uow:
        return receive_parcel(uow, world.ctx(), rma.number).receipt_id


def _scan(world: World, receipt_id: uuid.UUID, code: str) -> str:
    _tick(world)
    with world.uow() as uow:
        return scan_item(uow, world.ctx(), receipt_id, code).result


def _grade(world: World, item_id: int, grade: str) -> None:
    _tick(world)
    with world.uow() as uow:
        inspect_item(uow, world.ctx(), item_id, grade)


def _undo(world: World, receipt_id: uuid.UUID):  # type: ignore[no-untyped-def]
    _tick(world)
    with world.uow() as uow:
        return undo_last(uow, world.ctx(), receipt_id)


def _hint(world: World, receipt_id: uuid.UUID) -> str | None:
    with world.uow() as uow:
        return last_undoable(uow.session, receipt_id)


def _count(world: World, model: type) -> int:
    with world.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def test_a_matched_scan_taken_back_can_be_scanned_again(world: World) -> None:
    order = add_order(world, [LineSpec("EL-1", 30000, category="electronics", serials=("SNAAA111",)),
                              LineSpec("AP-2", 1000)])
    rma = add_rma(world, order)
    receipt_id = _receive(world, rma)
    assert _hint(world, receipt_id) is None
    assert _scan(world, receipt_id, "snaaa111") == "matched"
    unit = _items(world, rma.id)[0]
    assert (unit.reception_status, unit.received_serial, unit.receipt_id) == ("received", "SNAAA111", receipt_id)
    assert _hint(world, receipt_id) == "the scan of EL-1 Item EL-1 (serial SNAAA111)"

    result = _undo(world, receipt_id)
    assert (result.step, result.return_item_id, result.grade_now) == ("scan", unit.id, None)
    assert result.message == f"Took back the scan of EL-1 Item EL-1 (serial SNAAA111): awaiting again on {rma.number}."
    unit = _items(world, rma.id)[0]
    assert (unit.reception_status, unit.received_serial, unit.receipt_id) == ("awaiting", None, None)
    with world.uow() as uow:
        scan = uow.session.get(ItemScan, result.undone_id)
        assert scan is not None and scan.undone_at == world.clock.now and scan.result == "matched"
        view = load_rma_view(uow.session, world.ctx(), rma.id)
    assert (view.items[0].reception_status, view.items[0].received_serial) == ("awaiting", None)
    assert _hint(world, receipt_id) is None

    # Scanned again, the serial is not a duplicate of the scan taken back.
    assert _scan(world, receipt_id, "SNAAA111") == "matched"
    assert _items(world, rma.id)[0].received_serial == "SNAAA111"
    assert _count(world, ItemScan) == 2  # nothing deleted


def test_a_flagged_scan_taken_back_no_longer_counts(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    receipt_id = _receive(world, rma)
    assert _scan(world, receipt_id, "AP-1") == "matched"
    assert _scan(world, receipt_id, "ZZ-NOT-HERE") == "not_on_order"
    assert _hint(world, receipt_id) == "the flagged scan of 'ZZ-NOT-HERE' (not on order)"
    result = _undo(world, receipt_id)
    assert (result.step, result.return_item_id) == ("scan", None)
    assert result.message == "Took back the flagged scan of 'ZZ-NOT-HERE' (not on order): withdrawn."
    item = _items(world, rma.id)[0]
    assert item.reception_status == "received"  # the matched unit is untouched
    _grade(world, item.id, "A")
    with world.uow() as uow:
        # A flagged scan would send the unit to quarantine and raise the risk score.
        assert suggested_disposition(uow, uow.session.get(ReturnItem, item.id)) == "restock"
        proposal = propose(uow, world.ctx(), rma.id)
    assert not [s for s in proposal.signals if "ZZ-NOT-HERE" in s.message]


def test_a_grade_taken_back_restores_the_previous_grade_then_none(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    receipt_id = _receive(world, rma)
    _scan(world, receipt_id, "AP-1")
    item_id = _items(world, rma.id)[0].id
    _grade(world, item_id, "A")
    _grade(world, item_id, "C")
    assert _hint(world, receipt_id) == "grade C on AP-1 Item AP-1"

    first = _undo(world, receipt_id)
    assert (first.step, first.return_item_id, first.grade_now) == ("grade", item_id, "A")
    assert first.message == "Took back grade C on AP-1 Item AP-1: graded A (new, sealed) again."
    with world.uow() as uow:
        assert latest_grades(uow.session, [item_id]) == {item_id: "A"}
        assert load_rma_view(uow.session, world.ctx(), rma.id).items[0].grade == "A"

    second = _undo(world, receipt_id)
    assert (second.step, second.grade_now) == ("grade", None)
    assert second.message == "Took back grade A on AP-1 Item AP-1: ungraded again."
    with world.uow() as uow:
        assert latest_grades(uow.session, [item_id]) == {}
        assert load_rma_view(uow.session, world.ctx(), rma.id).items[0].grade is None
        with pytest.raises(StateConflict, match="Grade AP-1 before deciding"):
            propose(uow, world.ctx(), rma.id)
        undone = uow.session.scalars(select(Inspection).where(Inspection.undone_at.is_not(None))).all()
    assert len(undone) == 2 and _count(world, Inspection) == 2

    # Graded again after the undo: the new grade is the unit's grade.
    _grade(world, item_id, "B")
    with world.uow() as uow:
        assert latest_grades(uow.session, [item_id]) == {item_id: "B"}


def test_undo_twice_takes_back_steps_latest_first_until_nothing_is_left(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000), LineSpec("AP-2", 2000)])
    rma = add_rma(world, order)
    receipt_id = _receive(world, rma)
    _scan(world, receipt_id, "AP-1")
    first_item = _items(world, rma.id)[0].id
    _grade(world, first_item, "B")
    _scan(world, receipt_id, "AP-2")
    assert _undo(world, receipt_id).message == f"Took back the scan of AP-2 Item AP-2: awaiting again on {rma.number}."
    assert _undo(world, receipt_id).message.startswith("Took back grade B on AP-1 Item AP-1")
    assert _undo(world, receipt_id).message.startswith("Took back the scan of AP-1 Item AP-1")
    assert [i.reception_status for i in _items(world, rma.id)] == ["awaiting", "awaiting"]
    assert _hint(world, receipt_id) is None
    with world.uow() as uow, pytest.raises(StateConflict, match="Nothing to take back on this parcel"):
        undo_last(uow, world.ctx(), receipt_id)
    with world.uow() as uow, pytest.raises(NotFound):
        undo_last(uow, world.ctx(), uuid.uuid4())


def test_steps_at_the_same_instant_are_taken_back_in_the_order_recorded(world: World) -> None:
    """A fixed clock: every step has the same time, and "last" is still the one recorded last."""
    order = add_order(world, [LineSpec("AP-1", 1000), LineSpec("AP-2", 2000), LineSpec("AP-3", 3000)])
    rma = add_rma(world, order)
    receipt_id = _receive(world, rma)
    ctx = world.ctx()
    for code in ("AP-3", "AP-1", "AP-2"):
        with world.uow() as uow:
            scan_item(uow, ctx, receipt_id, code)
    for expected in ("AP-2", "AP-1", "AP-3"):
        with world.uow() as uow:
            assert undo_last(uow, ctx, receipt_id).message.startswith(f"Took back the scan of {expected} ")
    with world.uow() as uow:
        scan_item(uow, ctx, receipt_id, "AP-1")
    item_id = _items(world, rma.id)[0].id
    for grade in ("D", "A", "C", "B"):
        with world.uow() as uow:
            inspect_item(uow, ctx, item_id, grade)
    with world.uow() as uow:
        assert latest_grades(uow.session, [item_id]) == {item_id: "B"}
    for now in ("C", "A", "D"):
        with world.uow() as uow:
            assert undo_last(uow, ctx, receipt_id).grade_now == now


def test_undo_is_refused_once_a_unit_of_the_parcel_is_decided(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    other = add_order(world, [LineSpec("HM-1", 2000, category="home")])
    rma = add_rma(world, order)
    rma_b = add_rma(world, other)
    receipt_id = _receive(world, rma)
    from console.receiving import add_rma_to_parcel

    with world.uow() as uow:
        add_rma_to_parcel(uow, world.ctx(), receipt_id, rma_b.number)
    _scan(world, receipt_id, "AP-1")
    _grade(world, _items(world, rma.id)[0].id, "A")
    _scan(world, receipt_id, "HM-1")
    with world.uow() as uow:
        decide(uow, world.ctx(), DecideCommand(rma.id))
    assert _hint(world, receipt_id) is None
    audits = _count(world, AuditEvent)
    with world.uow() as uow, pytest.raises(StateConflict) as err:
        undo_last(uow, world.ctx(), receipt_id)  # the last step is on the other, undecided RMA: still refused
    assert err.value.message == (f"AP-1 on {rma.number} is already decided, so this parcel's scans and grades can "
                                 "no longer be taken back: a correction is a new, audited decision (ask a supervisor).")
    assert _count(world, AuditEvent) == audits
    assert [i.reception_status for i in _items(world, rma_b.id)] == ["received"]


def test_a_unit_already_put_away_is_not_taken_back(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    receipt_id = _receive(world, rma)
    _scan(world, receipt_id, "AP-1")
    item_id = _items(world, rma.id)[0].id
    _grade(world, item_id, "A")
    with world.uow() as uow:
        placed = dispose(uow, world.ctx(), item_id)
        uow.commit()
    assert _hint(world, receipt_id) is None
    with world.uow() as uow, pytest.raises(StateConflict, match=f"already put away \\({placed.lpn}"):
        undo_last(uow, world.ctx(), receipt_id)
    with world.uow() as uow:
        assert latest_grades(uow.session, [item_id]) == {item_id: "A"}


def test_every_undo_is_audited_and_sent_to_central(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    receipt_id = _receive(world, rma)
    _scan(world, receipt_id, "AP-1")
    item_id = _items(world, rma.id)[0].id
    _grade(world, item_id, "B")
    grade_undo = _undo(world, receipt_id)
    scan_undo = _undo(world, receipt_id)
    with world.uow() as uow:
        s = uow.session
        events = s.scalars(select(AuditEvent).where(AuditEvent.action.in_(("grade_undone", "scan_undone")))
                           .order_by(AuditEvent.seq)).all()
        assert [(e.action, e.entity, e.entity_id, e.user_id) for e in events] == [
            ("grade_undone", "return_item", str(item_id), 1), ("scan_undone", "receipt", str(receipt_id), 1)]
        assert events[0].details == {"inspection": str(grade_undo.undone_id), "grade": "B", "grade_now": None,
                                     "rma": rma.number, "receipt": str(receipt_id)}
        assert events[1].details == {"scan": str(scan_undo.undone_id), "code": "AP-1", "result": "matched",
                                     "return_item_id": item_id, "rma": rma.number, "serial": None}
        assert verify_chain(s, "WH1-01") is None
        outbox = s.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
    assert [(o.kind, o.aggregate_id) for o in outbox[-2:]] == [
        ("grade_undone", str(grade_undo.undone_id)), ("scan_undone", str(scan_undo.undone_id))]
    grade_rows = {r["table"]: r["values"] for r in outbox[-2].payload["rows"]}
    assert grade_rows["inspections"]["undone_at"] is not None
    scan_rows = outbox[-1].payload["rows"]
    scan_row = next(r["values"] for r in scan_rows if r["table"] == "item_scans")
    item_row = next(r["values"] for r in scan_rows if r["table"] == "return_items")
    assert scan_row["id"] == str(scan_undo.undone_id) and scan_row["undone_at"] is not None
    assert (item_row["reception_status"], item_row["receipt_id"]) == ("awaiting", None)
    assert any(r["table"] == "parcel_receipts" for r in scan_rows)
