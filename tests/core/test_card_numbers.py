"""Full card numbers found in any formatting and masked wherever a person types free text."""
from __future__ import annotations

import pytest

from console.card_numbers import MASK, card_spans, free_text, mask_card_numbers

VISA = "4111111111111111"


@pytest.mark.parametrize("written", [
    "4111 1111 1111 1111", "4111-1111-1111-1111", "4111.1111.1111.1111", "4111/1111/1111/1111",
    "4111\u00a01111\u00a01111\u00a01111",  # non-breaking spaces
    "4111\u202f1111\u202f1111\u202f1111",  # narrow no-break spaces
    "４１１１ １１１１ １１１１ １１１１",  # full-width digits and an ideographic space
    "4111\u30001111\u30001111\u30001111",
    "٤١١١١١١١١١١١١١١١",  # Arabic-Indic digits
    "४१११ ११११ ११११ ११११",  # Devanagari
    "4111 - 1111 - 1111 - 1111", "4111－1111－1111－1111",  # full-width hyphen
    "378282246310005", "5555 5555 5555 4444", "3056 930902 5904",
])
def test_a_card_number_is_found_however_it_is_written(written: str) -> None:
    note = f"customer said: {written} (call back)"
    assert mask_card_numbers(note) == f"customer said: {MASK} (call back)"


@pytest.mark.parametrize("text", [
    "4111111111111112",  # fails Luhn
    "356938035643809",  # an IMEI: Luhn valid, 35... and 15 digits
    "+49 151 2345 6789 0", "+81 90-1234-5678", "order SO-1000001 line 2", "2026-12-07 08:00:00",
    "serial SN4111111111111111",  # part of a serial number, not a number on its own
    "GTIN 04006381333931",
])
def test_what_is_no_card_number_is_left_alone(text: str) -> None:
    assert card_spans(text) == []
    assert mask_card_numbers(text) == text


def test_the_rest_of_a_note_is_kept_as_typed() -> None:
    note = "箱が潰れていた。カード 4111 1111 1111 1111 で払ったとのこと。"
    assert free_text(note) == f"箱が潰れていた。カード {MASK} で払ったとのこと。"
    assert free_text(None) is None
    assert free_text("two: 4111111111111111 and 5555555555554444") == f"two: {MASK} and {MASK}"


def test_a_note_written_through_the_services_never_holds_a_card_number(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from console.inspection import inspect_item
    from console.receiving import receive_parcel, scan_item
    from db.models import AuditEvent, Inspection, OutboxRow
    from tests.tools.factories import LineSpec, add_order, add_rma, make_world

    world = make_world(tmp_path / "station.sqlite3")
    order = add_order(world, [LineSpec("SKU-1", gtin="04006381333931", price=2500)])
    rma = add_rma(world, order)
    with world.uow() as uow:
        receipt = receive_parcel(uow, world.ctx(), rma.number, weight_g=None)
        item = scan_item(uow, world.ctx(), receipt.receipt_id, "04006381333931")
        inspect_item(uow, world.ctx(), item.return_item_id, "B", notes="paid by card ４１１１ １１１１ １１１１ １１１１")
    with world.engine.connect() as conn:
        assert conn.execute(select(Inspection.notes)).scalar_one() == f"paid by card {MASK}"
        stored = " ".join(str(p) for p in conn.execute(select(OutboxRow.payload)).scalars())
        stored += " ".join(str(d) for d in conn.execute(select(AuditEvent.details)).scalars())
    assert "１１１１" not in stored and "1111" not in stored
    world.engine.dispose()
