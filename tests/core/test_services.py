"""The services the UI and the headless commands share, on real SQLite files."""
from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from console.audit_verify import verify_chain
from console.authorization import ReturnLine, authorize_return
from console.deciding import DecideCommand, close_without_refund, decide, propose
from console.disposition import dispose
from console.errors import DomainError, InvalidInput, NotFound, PolicyViolation, StateConflict
from console.inspection import inspect_item
from console.keep_it import refund_without_return
from console.lookup import find_code
from console.receiving import receive_parcel, scan_item
from console.refunds import DeductionLine
from console.views import load_rma_view
from db.models import Customer, Decision, DecisionLine, Deduction, OutboxRow, ReturnAuthorization, ReturnItem
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


def _items(world: World, rma_id: int) -> list[ReturnItem]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(ReturnItem).where(ReturnItem.rma_id == rma_id).order_by(ReturnItem.id)))


def _receive_scan_grade(world: World, rma: ReturnAuthorization, code: str, grade: str) -> None:
    """One unit through the bench: parcel received, the unit scanned by ``code`` and graded."""
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    with world.uow() as uow:
        scan_item(uow, ctx, receipt.receipt_id, code)
    with world.uow() as uow:
        inspect_item(uow, ctx, _items(world, rma.id)[0].id, grade)


def _count(world: World, model: type) -> int:
    with world.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def test_a_clean_return_end_to_end(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 4000, gtin="0012345678905", weight_g=400),
                              LineSpec("AP-2", 2000, weight_g=300)])
    rma = add_rma(world, order, tracking="9400100000000000000018")
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, "9400100000000000000018", weight_g=860, weight_source="scale")
    assert receipt.rma_numbers == [rma.number]
    assert receipt.weight.expected_g == 400 + 300 + 150 and not receipt.weight.mismatch
    with world.uow() as uow:
        first = scan_item(uow, ctx, receipt.receipt_id, "012345678905")  # UPC-A, stored as EAN-13
        second = scan_item(uow, ctx, receipt.receipt_id, "ap-2")  # SKU typed by hand
    assert (first.result, second.result) == ("matched", "matched")
    for item in _items(world, rma.id):
        with world.uow() as uow:
            inspect_item(uow, ctx, item.id, "A", checklist={"tags_attached": True})
    with world.uow() as uow:
        proposal = propose(uow, ctx, rma.id)
    assert proposal.proposed_kind == "full_refund" and proposal.amount.minor == 6000 and not proposal.needs_review
    decision_id = uuid.uuid4()
    with world.uow() as uow:
        result = decide(uow, ctx, DecideCommand(rma.id, decision_id=decision_id))
    assert (result.status, result.kind, result.amount.minor, result.rma_status) == ("approved", "full_refund", 6000, "closed")
    with world.uow() as uow:
        again = decide(uow, ctx, DecideCommand(rma.id, decision_id=decision_id))  # a double press of Decide
    assert again.already_existed and again.decision_id == decision_id
    assert _count(world, Decision) == 1
    with world.uow() as uow:
        outbox_kinds = [r.kind for r in uow.session.scalars(select(OutboxRow).order_by(OutboxRow.id))]
        assert verify_chain(uow.session, "WH1-01") is None
    assert outbox_kinds == ["receipt", "item_scan", "item_scan", "inspection", "inspection", "decision"]
    for item in _items(world, rma.id):
        with world.uow() as uow:
            placed = dispose(uow, ctx, item.id)
            uow.commit()
        assert placed.kind == "restock" and placed.lpn.startswith("LPN")


def test_closed_rma_names_who_decided_and_when(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    _receive_scan_grade(world, rma, "AP-1", "B")
    with world.uow() as uow:
        decide(uow, ctx, DecideCommand(rma.id))
    with world.uow() as uow, pytest.raises(StateConflict) as err:
        receive_parcel(uow, ctx, rma.number)
    assert err.value.message.startswith(f"RMA {rma.number} is already closed: decided by Aiko at 15:00")


def test_decision_and_outbox_are_one_transaction(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    _receive_scan_grade(world, rma, "AP-1", "A")
    outbox_before = _count(world, OutboxRow)

    import console.deciding as deciding

    def broken_event(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(deciding, "add_event", broken_event)
    with world.uow() as uow, pytest.raises(OSError):
        decide(uow, ctx, DecideCommand(rma.id))
    assert _count(world, Decision) == 0 and _count(world, DecisionLine) == 0
    assert _count(world, OutboxRow) == outbox_before
    with world.uow() as uow:
        assert uow.session.get(ReturnAuthorization, rma.id).status == "received"


def test_flags_unknown_item_extra_unit_and_foreign_serial(world: World) -> None:
    order = add_order(world, [LineSpec("EL-1", 30000, category="electronics", serials=("SNAAA111",)),
                              LineSpec("AP-1", 1000, gtin="4901234567894")])
    other = add_order(world, [LineSpec("EL-9", 30000, category="electronics", serials=("SNZZZ999",))])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    results = []
    for code in ["SNZZZ999", "4901234567894", "4901234567894", "0000000000000", "SNAAA111", "SNAAA111"]:
        with world.uow() as uow:
            results.append(scan_item(uow, ctx, receipt.receipt_id, code).result)
    assert results == ["serial_not_shipped", "matched", "over_quantity", "not_on_order", "matched", "duplicate_serial"]
    assert other.id != order.id


def test_weight_mismatch_and_serial_mismatch_send_refund_to_review(world: World) -> None:
    order = add_order(world, [LineSpec("EL-1", 30000, category="electronics", weight_g=1330, serials=("SNAAA111",))])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number, weight_g=120, weight_source="scale")
    assert receipt.weight.mismatch
    assert "parcel weighs 120 g, expected 1,480 g ± 74 g" in receipt.weight.message
    with world.uow() as uow:
        assert scan_item(uow, ctx, receipt.receipt_id, "SNBBB222").flagged
    with world.uow() as uow:
        result = decide(uow, ctx, DecideCommand(rma.id, "full_refund", tuple(i.id for i in _items(world, rma.id))))
    assert result.status == "pending_review" and result.rma_status == "pending_review"
    assert any("risk score" in r for r in result.review_reasons)
    assert any("not in the parcel" in r for r in result.review_reasons)
    with world.uow() as uow, pytest.raises(StateConflict, match="waiting for supervisor review"):
        receive_parcel(uow, ctx, rma.number)


def test_empty_box_is_denied_and_units_marked_missing(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receive_parcel(uow, ctx, rma.number, weight_g=150, weight_source="scale")
    with world.uow() as uow:
        assert propose(uow, ctx, rma.id, "deny").quote.amount_minor == 0
    with world.uow() as uow:
        result = decide(uow, ctx, DecideCommand(rma.id, "deny"))
    assert (result.status, result.amount.minor, result.rma_status) == ("approved", 0, "closed")
    assert [i.reception_status for i in _items(world, rma.id)] == ["missing"]


def test_partial_refund_itemizes_deductions(world: World) -> None:
    world.clock.now += timedelta(days=0)
    order = add_order(world, [LineSpec("AP-1", 10000)], delivered_days_ago=20)  # past the free-return window
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    with world.uow() as uow:
        scan_item(uow, ctx, receipt.receipt_id, "AP-1")
    item = _items(world, rma.id)[0]
    with world.uow() as uow:
        inspect_item(uow, ctx, item.id, "C")
    damage = DeductionLine("damage", "Stain on sleeve", 500, item.id)
    with world.uow() as uow:
        result = decide(uow, ctx, DecideCommand(rma.id, "partial_refund", extra_deductions=(damage,)))
    codes = {d.code: d.amount_minor for d in result.deductions}
    assert codes == {"restocking_fee": 1000, "damage": 500, "return_shipping_fee": 595}
    assert result.amount.minor == 10000 - 1000 - 500 - 595
    assert _count(world, Deduction) == 3


def test_quantity_never_above_shipped_less_returned(world: World) -> None:
    order = add_order(world, [LineSpec("SOCK", 500, quantity=3)])
    ctx = world.ctx()
    with world.uow() as uow:
        line_id = uow.session.scalars(select(ReturnItem.order_line_id)).first()
        from db.models import OrderLine
        line_id = uow.session.scalar(select(OrderLine.id).where(OrderLine.order_id == order.id))
        authorize_return(uow, ctx, order.number, [ReturnLine(line_id, 2, "too_small")])
        uow.commit()
    with world.uow() as uow, pytest.raises(PolicyViolation, match="only 1 of 3 shipped is left"):
        authorize_return(uow, ctx, order.number, [ReturnLine(line_id, 2, "too_small")])
    with world.uow() as uow, pytest.raises(InvalidInput, match="a reason is required"):
        authorize_return(uow, ctx, order.number, [ReturnLine(line_id, 1, "")])
    with world.uow() as uow, pytest.raises(InvalidInput, match="is not a reason code"):
        authorize_return(uow, ctx, order.number, [ReturnLine(line_id, 1, "bored")])


def test_refunds_over_several_rmas_add_up_to_what_was_paid(world: World) -> None:
    # 3 units for 1000 with a 1 cent-odd discount: 333 + 333 + 334 style shares must sum exactly.
    order = add_order(world, [LineSpec("SOCK", 334, quantity=3, discount=1, tax=80)], order_discount=0)
    ctx = world.ctx()
    total = 0
    for _ in range(3):
        rma = add_rma(world, order, {"SOCK": 1})
        _receive_scan_grade(world, rma, "SOCK", "A")
        with world.uow() as uow:
            total += decide(uow, ctx, DecideCommand(rma.id, "full_refund")).amount.minor
    assert total == 3 * 334 - 1 + 80


def test_one_parcel_with_two_rmas_of_two_orders(world: World) -> None:
    a = add_order(world, [LineSpec("AP-1", 1000)])
    b = add_order(world, [LineSpec("AP-2", 2000)])
    rma_a = add_rma(world, a, tracking="1ZSHARED0000000001")
    rma_b = add_rma(world, b)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma_a.number)
    # The second RMA's label is found in the same parcel: the clerk adds it.
    from console.receiving import add_rma_to_parcel

    with world.uow() as uow:
        added = add_rma_to_parcel(uow, ctx, receipt.receipt_id, rma_b.number)
    assert set(added.rma_numbers) == {rma_a.number, rma_b.number}
    with world.uow() as uow:
        assert scan_item(uow, ctx, receipt.receipt_id, "AP-2").result == "matched"
        assert scan_item(uow, ctx, receipt.receipt_id, "AP-1").result == "matched"


def test_parcel_back_by_outbound_tracking_is_received_without_refund(world: World) -> None:
    order = add_order(world, [LineSpec("HM-1", 5000, category="home")], tracking="1ZLOST000000000001")
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, "1zlost000000000001")
    assert receipt.returned_to_sender and len(receipt.rma_ids) == 1
    with world.uow() as uow:
        assert scan_item(uow, ctx, receipt.receipt_id, "HM-1").result == "matched"
    item = _items(world, receipt.rma_ids[0])[0]
    assert item.reason_code == "returned_to_sender"
    with world.uow() as uow:
        inspect_item(uow, ctx, item.id, "A")
    with world.uow() as uow:
        assert dispose(uow, ctx, item.id).kind == "restock"
        uow.commit()
    with world.uow() as uow:
        close_without_refund(uow, ctx, receipt.rma_ids[0], "replacement already shipped")
    assert _count(world, Decision) == 0
    with world.uow() as uow:
        assert uow.session.get(ReturnAuthorization, receipt.rma_ids[0]).status == "closed"
    assert order.number


def test_keep_it_refund_without_return_within_the_limit(world: World) -> None:
    order = add_order(world, [LineSpec("BE-1", 900, category="beauty"), LineSpec("EL-1", 30000, category="electronics")])
    ctx = world.ctx()
    with world.uow() as uow:
        from db.models import OrderLine
        cheap, dear = uow.session.scalars(select(OrderLine.id).where(OrderLine.order_id == order.id)
                                          .order_by(OrderLine.line_no)).all()
    with world.uow() as uow:
        result = refund_without_return(uow, ctx, order.number, cheap, 1, "damaged")
    assert (result.kind, result.status, result.amount.minor) == ("full_refund", "approved", 900)
    with world.uow() as uow, pytest.raises(PolicyViolation, match="above the keep-it limit"):
        refund_without_return(uow, ctx, order.number, dear, 1, "damaged")
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ReturnAuthorization)) == 1


def test_lookup_kinds_and_errors(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)], tracking="1ZOUT0000000000001")
    rma = add_rma(world, order, tracking="1ZRET0000000000001")
    with world.uow() as uow:
        s = uow.session
        assert find_code(s, rma.number).kind == "rma"
        assert find_code(s, rma.number.replace("-", "").lower()).rmas[0].number == rma.number
        assert find_code(s, "1ZRET0000000000001").kind == "return_tracking"
        assert find_code(s, " 1zout0000000000001\n").kind == "outbound_tracking"
        by_order = find_code(s, order.number)
        assert by_order.kind == "order" and by_order.rmas[0].number == rma.number
        bad_check = rma.number[:-1] + ("0" if rma.number[-1] != "0" else "1")
        with pytest.raises(InvalidInput, match="check character is wrong"):
            find_code(s, bad_check)
        with pytest.raises(NotFound, match="No RMA, tracking number or order matches"):
            find_code(s, "XYZ")
        with pytest.raises(InvalidInput):
            find_code(s, "\x00\x1d  ")


def test_view_masks_contact_details_and_shows_window(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)], delivered_days_ago=12, tier="gold")
    rma = add_rma(world, order)
    with world.uow() as uow:
        view = load_rma_view(uow.session, world.ctx(), rma.id)
    with world.uow() as uow:
        phone = uow.session.get(Customer, order.customer_id).phone
    assert view.customer_email.startswith("c•••@") and view.customer_phone == "•••• " + phone[-3:]
    assert view.window is not None and view.window.days_since_delivery == 12 and view.window.window_days == 60
    assert view.to_dict()["items"][0]["paid"] == {"minor": 1000, "currency": "USD"}


def test_bad_inputs_are_domain_errors(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow, pytest.raises(InvalidInput, match="needs a reason"):
        receive_parcel(uow, ctx, rma.number, weight_g=500, weight_source="manual")
    with world.uow() as uow, pytest.raises(InvalidInput, match="not plausible"):
        receive_parcel(uow, ctx, rma.number, weight_g=-5, weight_source="scale")
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    item = _items(world, rma.id)[0]
    with world.uow() as uow, pytest.raises(StateConflict, match="has not been scanned"):
        inspect_item(uow, ctx, item.id, "A")
    with world.uow() as uow, pytest.raises(InvalidInput, match="grade 'Q'"):
        inspect_item(uow, ctx, item.id, "Q")
    with world.uow() as uow, pytest.raises(StateConflict, match="Nothing to decide"):
        decide(uow, ctx, DecideCommand(rma.id, "full_refund"))
    with world.uow() as uow, pytest.raises(DomainError):
        scan_item(uow, ctx, receipt.receipt_id, "")
    with world.uow() as uow, pytest.raises(InvalidInput, match="replacement SKU"):
        decide(uow, ctx, DecideCommand(rma.id, "exchange"))


def test_outbox_rows_name_the_scan_inspection_and_disposition_they_carry(world: World) -> None:
    from console.disposition import dispose
    from db.models import Disposition, Inspection, ItemScan

    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    _receive_scan_grade(world, rma, "AP-1", "A")
    with world.uow() as uow:
        dispose(uow, world.ctx(), _items(world, rma.id)[0].id)
        uow.commit()
    with world.uow() as uow:
        s = uow.session
        named = {(row.kind, row.aggregate_id) for row in s.scalars(select(OutboxRow))}
        expected = {("item_scan", str(s.scalars(select(ItemScan.id)).one())),
                    ("inspection", str(s.scalars(select(Inspection.id)).one())),
                    ("disposition", str(s.scalars(select(Disposition.id)).one()))}
    assert expected <= named
    assert not any(aggregate == "None" for _, aggregate in named)
