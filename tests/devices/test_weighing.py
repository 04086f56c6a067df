"""The receive step's weight check: expected weight, tolerance from policy and the scale's division."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from console.errors import InvalidInput, NotFound
from console.receiving import receive_parcel, weigh_parcel
from db.models import AuditEvent, OutboxRow, ParcelReceipt
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


def test_tolerance_is_the_larger_of_two_divisions_and_the_percentage(world: World) -> None:
    policy = world.policy
    assert policy.weight_tolerance_bp == 500
    assert policy.weight_tolerance_g(1480, division_g=50) == 100  # two divisions beat 5 % (74 g)
    assert policy.weight_tolerance_g(1480, division_g=2) == 74  # 5 % beats two divisions (4 g)
    assert policy.weight_tolerance_g(200, division_g=None) == policy.weight_tolerance_min_g


def test_a_light_parcel_weighed_after_the_scan_is_a_mismatch_in_plain_words(world: World) -> None:
    order = add_order(world, [LineSpec("EL-1", 30000, category="electronics", weight_g=1330)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    assert receipt.weight.weight_g is None and not receipt.weight.mismatch
    with world.uow() as uow:
        check = weigh_parcel(uow, ctx, receipt.receipt_id, 120, source="scale", scale_division_g=5)
    assert check.mismatch
    assert check.message == "WEIGHT MISMATCH: parcel weighs 120 g, expected 1,480 g ± 74 g"
    with world.uow() as uow:
        stored = uow.session.get(ParcelReceipt, receipt.receipt_id)
        assert stored is not None and (stored.weight_g, stored.weight_source, stored.scale_division_g) == (120, "scale", 5)
        kinds = list(uow.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
        assert kinds[-1] == "parcel_weighed"
        assert uow.session.scalars(select(OutboxRow).order_by(OutboxRow.id.desc())).first().aggregate_id == str(receipt.receipt_id)


def test_a_coarse_scale_widens_the_tolerance_so_a_good_parcel_passes(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 2000, weight_g=250)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        # expected 400 g; 5 % is 20 g but the scale reads in 50 g steps, so ±100 g
        receipt = receive_parcel(uow, ctx, rma.number, weight_g=450, weight_source="scale", scale_division_g=50)
    assert not receipt.weight.mismatch
    assert receipt.weight.tolerance_g == 100


def test_a_hand_typed_weight_needs_a_reason_and_ignores_any_division(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 2000, weight_g=250)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    with world.uow() as uow, pytest.raises(InvalidInput, match="needs a reason"):
        weigh_parcel(uow, ctx, receipt.receipt_id, 400, source="manual")
    with world.uow() as uow:
        check = weigh_parcel(uow, ctx, receipt.receipt_id, 400, source="manual", reason="parcel too large",
                             scale_division_g=50)
    assert check.tolerance_g == world.policy.weight_tolerance_g(400)
    with world.uow() as uow, pytest.raises(InvalidInput, match="division"):
        weigh_parcel(uow, ctx, receipt.receipt_id, 400, source="scale", scale_division_g=0)
    with world.uow() as uow, pytest.raises(NotFound):
        import uuid
        weigh_parcel(uow, ctx, uuid.uuid4(), 400, source="scale")
