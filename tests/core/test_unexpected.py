"""Parcels with no return authorization, and parcels nothing can be found for, on real SQLite files."""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from console.audit_verify import verify_chain
from console.errors import InvalidInput, NotFound, PolicyViolation, StateConflict
from console.receiving import receive_parcel, scan_item
from console.unexpected import (
    MAX_PHOTOS,
    UNEXPECTED_REASON,
    match_unidentified,
    receive_without_rma,
    record_unidentified,
    unidentified_parcels,
)
from db.models import AuditEvent, OutboxRow, ParcelReceipt, ReceiptRma, ReturnAuthorization, ReturnItem
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


@pytest.fixture
def photos(tmp_path: Path) -> list[str]:
    folder = tmp_path / "camera"
    folder.mkdir()
    paths = []
    for n in (1, 2):
        path = folder / f"IMG_{n:04d}.jpg"
        path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        paths.append(str(path))
    return paths


def _count(world: World, model: type) -> int:
    with world.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def _counts(world: World) -> dict[str, int]:
    return {m.__name__: _count(world, m) for m in (ReturnAuthorization, ReturnItem, ParcelReceipt, ReceiptRma,
                                                    AuditEvent, OutboxRow)}


def _items(world: World, rma_id: int) -> list[ReturnItem]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(ReturnItem).where(ReturnItem.rma_id == rma_id).order_by(ReturnItem.id)))


# --- an order with no return authorization -------------------------------------------------------

def test_a_parcel_for_an_order_without_rma_is_received_on_a_new_rma(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000, quantity=2, weight_g=400), LineSpec("HM-1", 2000, weight_g=900)])
    ctx = world.ctx()
    with world.uow() as uow, pytest.raises(NotFound, match="record the parcel as unexpected"):
        receive_parcel(uow, ctx, order.number)
    receipt_id = uuid.uuid4()
    with world.uow() as uow:
        result = receive_without_rma(uow, ctx, order.number.lower(), weight_g=1900, weight_source="scale",
                                     scale_division_g=5, receipt_id=receipt_id)
    assert result.receipt_id == receipt_id and len(result.rma_ids) == 1
    assert result.weight.expected_g == 400 * 2 + 900 + 150 and not result.weight.mismatch
    assert result.match.order_number == order.number and result.rma_numbers[0] in [r.number for r in result.match.rmas]
    with world.uow() as uow:
        s = uow.session
        rma = s.get(ReturnAuthorization, result.rma_ids[0])
        assert rma is not None and rma.status == "received" and rma.reason_code == UNEXPECTED_REASON
        assert rma.customer_comment.startswith("Created at the bench by Aiko at station WH1-01")
        receipt = s.get(ParcelReceipt, receipt_id)
        assert receipt is not None and receipt.order_id == order.id and not receipt.in_quarantine
        assert (receipt.weight_g, receipt.scale_division_g) == (1900, 5)
        assert s.scalars(select(ReceiptRma.rma_id).where(ReceiptRma.receipt_id == receipt_id)).all() == [rma.id]
        actions = [a for a in s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq))]
        assert actions == ["rma_authorized", "unexpected_parcel_received"]
        received = s.scalars(select(AuditEvent).where(AuditEvent.action == "unexpected_parcel_received")).one()
        assert received.details == {"rma": rma.number, "order": order.number, "units": 3, "weight_g": 1900,
                                    "expected_g": 1850, "weight_mismatch": False}
        assert verify_chain(s, "WH1-01") is None
        assert [o.kind for o in s.scalars(select(OutboxRow).order_by(OutboxRow.id))] == ["rma", "receipt"]
    items = _items(world, result.rma_ids[0])
    assert [(i.order_line.sku, i.reason_code, i.reception_status) for i in items] == [
        ("AP-1", UNEXPECTED_REASON, "awaiting"), ("AP-1", UNEXPECTED_REASON, "awaiting"),
        ("HM-1", UNEXPECTED_REASON, "awaiting")]
    with world.uow() as uow:  # the bench goes on as for any parcel
        assert scan_item(uow, ctx, receipt_id, "HM-1").result == "matched"


def test_a_retry_with_the_same_receipt_id_creates_nothing_more(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    ctx = world.ctx()
    receipt_id = uuid.uuid4()
    with world.uow() as uow:
        first = receive_without_rma(uow, ctx, order.number, receipt_id=receipt_id)
    before = _counts(world)
    with world.uow() as uow:
        again = receive_without_rma(uow, ctx, order.number, receipt_id=receipt_id)
    assert (again.receipt_id, again.rma_ids, again.rma_numbers) == (first.receipt_id, first.rma_ids, first.rma_numbers)
    assert _counts(world) == before
    # Without the receipt id (a new command), the RMA created at the bench is named, not doubled.
    with world.uow() as uow, pytest.raises(StateConflict) as err:
        receive_without_rma(uow, ctx, order.number)
    assert err.value.message == (f"Order {order.number} already has an open return authorization "
                                 f"({first.rma_numbers[0]}): receive the parcel on it by scanning "
                                 f"{first.rma_numbers[0]}.")
    assert _counts(world) == before


def test_only_units_not_yet_returned_are_authorized(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000, quantity=2), LineSpec("HM-1", 2000, category="home")])
    add_rma(world, order, {"AP-1": 1}, status="closed")
    add_rma(world, order, {"HM-1": 1}, status="canceled")  # canceled: its unit is returnable again
    ctx = world.ctx()
    with world.uow() as uow, pytest.raises(StateConflict, match="already closed"):
        receive_parcel(uow, ctx, order.number)
    with world.uow() as uow:
        result = receive_without_rma(uow, ctx, order.number)
    assert [i.order_line.sku for i in _items(world, result.rma_ids[0])] == ["AP-1", "HM-1"]


def test_the_rma_and_the_parcel_are_one_transaction(world: World) -> None:
    """The parcel's row fails after the RMA was written (a station unknown to the database):
    no RMA is left behind that was authorized at the bench but never received."""
    order = add_order(world, [LineSpec("AP-1", 1000)])
    before = _counts(world)
    world.station_id = "WH9-99"
    with world.uow() as uow, pytest.raises(IntegrityError):
        receive_without_rma(uow, world.ctx(), order.number, receipt_id=uuid.uuid4())
    assert _counts(world) == before
    world.station_id = "WH1-01"
    with world.uow() as uow:
        assert len(receive_without_rma(uow, world.ctx(), order.number).rma_ids) == 1


def test_an_order_returned_in_full_already_is_refused_and_nothing_is_written(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000, quantity=2)])
    done = add_rma(world, order, status="closed")
    before = _counts(world)
    with world.uow() as uow, pytest.raises(StateConflict) as err:
        receive_without_rma(uow, world.ctx(), order.number, receipt_id=uuid.uuid4())
    assert err.value.message == (f"Every unit of order {order.number} is already on a return authorization "
                                 f"({done.number}): nothing is left to return on it. Put the parcel aside for a "
                                 "supervisor.")
    assert _counts(world) == before


def test_a_policy_without_the_unexpected_reason_says_so(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    reasons = {k: v for k, v in world.policy.reasons.items() if k != UNEXPECTED_REASON}
    world.policy = dataclasses.replace(world.policy, reasons=reasons)
    with world.uow() as uow, pytest.raises(PolicyViolation, match="no reason code 'unexpected_return'"):
        receive_without_rma(uow, world.ctx(), order.number)
    assert _count(world, ReturnAuthorization) == 0


def test_receive_without_rma_validates_the_weight_first(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    with world.uow() as uow, pytest.raises(InvalidInput, match="needs a reason"):
        receive_without_rma(uow, world.ctx(), order.number, weight_g=700, weight_source="manual")
    with world.uow() as uow, pytest.raises(NotFound, match="No RMA, tracking number or order matches"):
        receive_without_rma(uow, world.ctx(), "NOTHING-HERE")
    assert _count(world, ReturnAuthorization) == 0


# --- a parcel nothing can be found for -----------------------------------------------------------

def test_an_unidentified_parcel_is_recorded_in_quarantine(world: World, photos: list[str]) -> None:
    ctx = world.ctx()
    with world.uow() as uow:
        receipt_id = record_unidentified(uow, ctx, " zz-torn-42 ", weight_g=1234, weight_source="scale",
                                         weight_reason=None, photos=photos, note="Brown box, no label, a blue kettle")
    with world.uow() as uow:
        s = uow.session
        receipt = s.get(ParcelReceipt, receipt_id)
        assert receipt is not None and receipt.in_quarantine
        assert (receipt.scanned_code, receipt.weight_g, receipt.weight_source, receipt.photos, receipt.order_id) == (
            "ZZ-TORN-42", 1234, "scale", photos, None)
        assert receipt.quarantined_at == world.clock.now and receipt.identified_at is None
        assert s.scalar(select(func.count()).select_from(ReceiptRma)) == 0
        event = s.scalars(select(AuditEvent)).one()
        assert (event.action, event.entity_id, event.details) == (
            "parcel_unidentified", str(receipt_id), {"code": "ZZ-TORN-42", "weight_g": 1234, "photos": 2})
        outbox = s.scalars(select(OutboxRow)).one()
        waiting = unidentified_parcels(s)
    assert (outbox.kind, outbox.aggregate_id) == ("receipt", str(receipt_id))
    sent = next(r["values"] for r in outbox.payload["rows"] if r["table"] == "parcel_receipts")
    assert sent["photos"] == photos and sent["quarantined_at"] is not None
    assert [(p.receipt_id, p.weight_g, p.photos, p.note, p.received_by, p.scanned_code) for p in waiting] == [
        (receipt_id, 1234, photos, "Brown box, no label, a blue kettle", "Aiko", "ZZ-TORN-42")]
    with world.uow() as uow, pytest.raises(StateConflict, match="waits in quarantine"):
        scan_item(uow, ctx, receipt_id, "AP-1")
    with world.uow() as uow:  # without any code, typed weight, no photos
        second = record_unidentified(uow, ctx, None, weight_g=800, weight_source="manual",
                                     weight_reason="parcel too large for the scale", photos=[], note="Soft bag")
    with world.uow() as uow:
        assert [p.receipt_id for p in unidentified_parcels(uow.session)] == [receipt_id, second]
        assert unidentified_parcels(uow.session)[1].scanned_code is None
        assert unidentified_parcels(uow.session, station_id="WH9-99") == []


def test_bad_photos_are_refused_with_nothing_written(world: World, photos: list[str], tmp_path: Path) -> None:
    ctx = world.ctx()
    common = dict(weight_g=500, weight_source="scale", weight_reason=None, note="Box")
    before = _counts(world)
    missing = str(tmp_path / "camera" / "IMG_9999.jpg")
    with world.uow() as uow, pytest.raises(InvalidInput) as err:
        record_unidentified(uow, ctx, None, photos=[photos[0], missing], **common)  # type: ignore[arg-type]
    assert err.value.message == f"photo {missing} does not exist: take the photo again, or check the camera folder."
    with world.uow() as uow, pytest.raises(InvalidInput, match="is not a file"):
        record_unidentified(uow, ctx, None, photos=[str(tmp_path / "camera")], **common)  # type: ignore[arg-type]
    with world.uow() as uow, pytest.raises(InvalidInput, match=f"more than the {MAX_PHOTOS}"):
        record_unidentified(uow, ctx, None, photos=[photos[0]] * (MAX_PHOTOS + 1), **common)  # type: ignore[arg-type]
    with world.uow() as uow, pytest.raises(InvalidInput, match="not a file path"):
        record_unidentified(uow, ctx, None, photos=[""], **common)  # type: ignore[arg-type]
    with world.uow() as uow, pytest.raises(InvalidInput, match="Describe the parcel"):
        record_unidentified(uow, ctx, None, weight_g=500, weight_source="scale", weight_reason=None,
                            photos=photos, note="  ")
    assert _counts(world) == before
    with world.uow() as uow:  # exactly the limit is fine
        record_unidentified(uow, ctx, None, photos=[photos[0]] * MAX_PHOTOS, **common)  # type: ignore[arg-type]
    assert _count(world, ParcelReceipt) == 1


def test_a_code_that_finds_something_is_not_unidentified(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order)
    with world.uow() as uow, pytest.raises(StateConflict, match=f"finds {rma.number}: receive the parcel on it"):
        record_unidentified(uow, world.ctx(), rma.number, weight_g=None, weight_source=None, weight_reason=None,
                            photos=[], note="Box")
    with world.uow() as uow, pytest.raises(StateConflict, match="record the parcel as unexpected on that order"):
        record_unidentified(uow, world.ctx(), add_order(world, [LineSpec("HM-1", 900)]).number, weight_g=None,
                            weight_source=None, weight_reason=None, photos=[], note="Box")
    assert _count(world, ParcelReceipt) == 0


def test_an_unidentified_parcel_is_matched_later_and_leaves_quarantine(world: World, photos: list[str]) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000, weight_g=600)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt_id = record_unidentified(uow, ctx, None, weight_g=750, weight_source="scale", weight_reason=None,
                                         photos=photos, note="Grey mailer, jacket inside")
    with world.uow() as uow:
        result = match_unidentified(uow, ctx, receipt_id, rma.number)
    assert (result.receipt_id, result.rma_numbers) == (receipt_id, [rma.number])
    assert result.weight.expected_g == 600 + 150 and not result.weight.mismatch
    with world.uow() as uow:
        s = uow.session
        receipt = s.get(ParcelReceipt, receipt_id)
        assert receipt is not None and not receipt.in_quarantine and receipt.identified_at == world.clock.now
        assert receipt.quarantined_at is not None and receipt.photos == photos  # the history stays
        assert s.get(ReturnAuthorization, rma.id).status == "received"
        assert unidentified_parcels(s) == []
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert (event.action, event.details["rmas"], event.details["rma_created"]) == (
            "parcel_identified", [rma.number], False)
    with world.uow() as uow:
        assert scan_item(uow, ctx, receipt_id, "AP-1").result == "matched"
    before = _counts(world)
    with world.uow() as uow:  # the same match again (a retry): the earlier answer
        again = match_unidentified(uow, ctx, receipt_id, rma.number)
    assert again.rma_numbers == [rma.number] and _counts(world) == before
    other = add_rma(world, add_order(world, [LineSpec("HM-1", 2000, category="home")]))
    with world.uow() as uow, pytest.raises(StateConflict, match=f"already matched to {rma.number} at 15:00"):
        match_unidentified(uow, ctx, receipt_id, other.number)
    with world.uow() as uow, pytest.raises(NotFound):
        match_unidentified(uow, ctx, uuid.uuid4(), rma.number)


def test_matching_to_an_order_without_rma_creates_one_and_a_received_parcel_is_not_matched(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000), LineSpec("AP-2", 500)])
    ctx = world.ctx()
    with world.uow() as uow:
        receipt_id = record_unidentified(uow, ctx, "NOLABEL", weight_g=None, weight_source=None, weight_reason=None,
                                         photos=[], note="Packing slip inside names the order")
    with world.uow() as uow:
        result = match_unidentified(uow, ctx, receipt_id, order.number)
    items = _items(world, result.rma_ids[0])
    assert [(i.order_line.sku, i.reason_code) for i in items] == [("AP-1", UNEXPECTED_REASON),
                                                                   ("AP-2", UNEXPECTED_REASON)]
    with world.uow() as uow:
        assert uow.session.get(ParcelReceipt, receipt_id).order_id == order.id
    normal = add_rma(world, add_order(world, [LineSpec("HM-1", 2000, category="home")]))
    with world.uow() as uow:
        received = receive_parcel(uow, ctx, normal.number)
    with world.uow() as uow, pytest.raises(StateConflict, match="not recorded as unidentified"):
        match_unidentified(uow, ctx, received.receipt_id, normal.number)
