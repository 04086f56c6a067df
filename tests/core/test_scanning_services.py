"""Scanned codes as the services receive them: with symbology identifiers, GS1 data and misreads."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.barcodes import GS
from console.checkdigits import gs1_check_digit
from console.errors import InvalidInput
from console.lookup import find_code
from console.receiving import receive_parcel, scan_item
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world

GTIN = "0950600013435" + str(gs1_check_digit("0950600013435"))
IMPB = "920559123456781234567" + str(gs1_check_digit("920559123456781234567"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


def test_parcel_codes_with_aim_identifiers_and_usps_routing_are_found(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 1000)])
    rma = add_rma(world, order, tracking=IMPB)
    with world.uow() as uow:
        assert find_code(uow.session, "]C0" + rma.number).rmas[0].number == rma.number
        assert find_code(uow.session, f"]C142037221{GS}{IMPB}").kind == "return_tracking"
        assert find_code(uow.session, f"42037221{IMPB}").kind == "return_tracking"
        with pytest.raises(InvalidInput, match="rescan"):
            find_code(uow.session, "]C0" + rma.number[:-1] + ("0" if rma.number[-1] != "0" else "1"))


def test_items_by_gs1_datamatrix_serial_and_a_misread_gtin(world: World) -> None:
    order = add_order(world, [LineSpec("EL-1", 30000, category="electronics", gtin=GTIN, serials=("SNAAA111",)),
                              LineSpec("AP-2", 1000, gtin="4006381333931")])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    with world.uow() as uow:
        # GS1 DataMatrix on the device: GTIN (01) and serial (21), FNC1 between
        result = scan_item(uow, ctx, receipt.receipt_id, f"]d201{GTIN}21SNAAA111")
    assert result.result == "matched" and result.code == "SNAAA111"
    with world.uow() as uow, pytest.raises(InvalidInput, match="rescan"):
        scan_item(uow, ctx, receipt.receipt_id, "]E04006381333932")  # last digit misread
    with world.uow() as uow:
        assert scan_item(uow, ctx, receipt.receipt_id, "]E04006381333931").result == "matched"
