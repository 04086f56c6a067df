"""Every document as PDF: each barcode rendered at the printer's resolution and decoded back
from the pixels, names in Japanese and Chinese in the text layer, no card number anywhere."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from printing import pdf
from printing.content import (
    CarrierEventLine, ClaimPacket, DispositionLabel, ExchangeSlip, LpnSticker, ReceiptDeduction, ReceiptLine,
    RefundReceipt,
)
from printing.render import render, render_all
from tests.tools import pixels

LABEL = DispositionLabel(lpn="LPN000012345X", disposition="return-to-vendor", rma="R-0001234K", sku="EL-12345",
                         title="Kestrel ワイヤレスイヤホン, Black", grade="B", date="2026-11-23",
                         station="Warehouse 1, bench 1", bin_hint="RTV-ELEC")
STICKER = LpnSticker(lpn="LPN000012346Y", sku="AP-40211", grade="A", rma="R-0001234K")
SLIP = ExchangeSlip(rma="R-0001234K", customer_name="王 秀英", original_sku="AP-40211",
                    original_title="Fieldhouse Oxford shirt, Navy, M", replacement_sku="AP-40212",
                    replacement_title="Fieldhouse Oxford shirt, Navy, L", replacement_size="Navy, L",
                    pick_code="4006381333931", difference="Customer pays USD 5.00", station="Bench 1",
                    date="2026-11-23")
RECEIPT = RefundReceipt(
    store="Warehouse 1, bench 1", station="WH1-01", rma="R-0001234K", order="SO-1000123",
    customer_name="田中 さくら", when="2026-11-23 10:42", clerk="Aiko",
    lines=(ReceiptLine("Kestrel ワイヤレスイヤホン, Black", "EL-12345", "JPY 11,980"),
           ReceiptLine("Hakone runner, US 9", "FW-22010", "JPY 8,980")),
    deductions=(ReceiptDeduction("Restocking fee, grade B (15 %)", "-JPY 1,797"),),
    total="JPY 19,163", refund_method="store credit", store_credit_code="SC0A1B2C3D4E5FX")


def one_page_codes(data: bytes, dpi: int = 203) -> list[tuple[str, str]]:
    found = pixels.barcodes(data, dpi)
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("dpi", [203, 300])
def test_the_disposition_label_scans_at_the_label_printers_resolution(dpi: int) -> None:
    data = pdf.disposition_label_pdf(LABEL, dpi)
    assert one_page_codes(data, dpi) == [(LABEL.lpn, "Code128")]
    text = pixels.text(data)
    for expected in ("RETURN TO VENDOR", "BIN RTV-ELEC", "R-0001234K", "EL-12345", "ワイヤレスイヤホン", "2026-11-23"):
        assert expected in text


def test_the_label_is_4_by_6_inches_and_the_sticker_2_by_1() -> None:
    import pypdfium2 as pdfium

    assert pdfium.PdfDocument(pdf.disposition_label_pdf(LABEL))[0].get_size() == pytest.approx((288, 432))
    assert pdfium.PdfDocument(pdf.lpn_sticker_pdf(STICKER))[0].get_size() == pytest.approx((144, 72))


@pytest.mark.parametrize("dpi", [203, 300])
def test_the_lpn_sticker_scans(dpi: int) -> None:
    assert one_page_codes(pdf.lpn_sticker_pdf(STICKER, dpi), dpi) == [(STICKER.lpn, "Code128")]


def test_several_labels_make_one_job_with_a_page_each() -> None:
    other = DispositionLabel(**{**LABEL.__dict__, "lpn": "LPN000012347Z", "disposition": "restock"})
    payload = render_all([LABEL, other], "pdf")
    assert pixels.barcodes(payload.data) == [[(LABEL.lpn, "Code128")], [(other.lpn, "Code128")]]
    zpl = render_all([LABEL, other], "zpl").data.decode()
    assert zpl.count("^XA") == 2 and zpl.count("^XZ") == 2


def test_the_exchange_slip_carries_the_pick_barcode_and_the_customer_in_chinese() -> None:
    data = pdf.exchange_slip_pdf(SLIP)
    assert one_page_codes(data) == [(SLIP.pick_code, "EAN13")]
    text = pixels.text(data)
    for expected in ("EXCHANGE", "王 秀英", "AP-40212", "Navy, L", "Customer pays USD 5.00"):
        assert expected in text


def test_an_exchange_slip_for_a_sku_without_gtin_uses_code_128() -> None:
    slip = ExchangeSlip(**{**SLIP.__dict__, "pick_code": "AP-40212"})
    assert one_page_codes(pdf.exchange_slip_pdf(slip)) == [("AP-40212", "Code128")]


def test_the_receipt_is_80_mm_wide_itemized_with_the_store_credit_code_as_a_barcode() -> None:
    import pypdfium2 as pdfium

    data = pdf.refund_receipt_pdf(RECEIPT)
    width, _ = pdfium.PdfDocument(data)[0].get_size()
    assert width == pytest.approx(80 / 25.4 * 72)
    assert one_page_codes(data) == [(RECEIPT.store_credit_code, "Code128")]
    text = pixels.text(data)
    for expected in ("REFUND RECEIPT", "田中 さくら", "JPY 11,980", "Restocking fee, grade B (15 %)", "-JPY 1,797",
                     "JPY 19,163", "store credit"):
        assert expected in text


def test_a_card_shows_as_brand_and_last_four_only() -> None:
    receipt = RefundReceipt(**{**RECEIPT.__dict__, "refund_method": "original payment",
                               "card_brand": "VISA", "card_last4": "4242", "store_credit_code": None})
    data = pdf.refund_receipt_pdf(receipt)
    text = pixels.text(data)
    assert "VISA •••• 4242" in text
    assert not re.search(r"\d{13,19}", re.sub(r"\s", "", text))
    assert one_page_codes(data) == []
    with pytest.raises(ValueError, match="four digits"):
        RefundReceipt(**{**receipt.__dict__, "card_last4": "4111111111111111"})


def test_the_claim_packet_has_every_page_its_events_and_photos(tmp_path: Path) -> None:
    photo = tmp_path / "crushed-box.png"
    Image.new("RGB", (640, 480), (180, 120, 60)).save(photo)
    packet = ClaimPacket(
        claim_id="C-7F3A", kind="damaged in transit", order="SO-1000123", customer_name="李 娜",
        address=("上海市浦东新区", "世纪大道 100 号", "China"), carrier="UPS", tracking_number="1Z999AA10123456784",
        shipped="2026-11-01 09:00", delivered="2026-11-04 14:12",
        events=tuple(CarrierEventLine(f"2026-11-0{d} 10:00", "IT", f"In transit, scan {d}", "Louisville, KY")
                     for d in range(1, 4)),
        shipped_weight_g=1480, expected_weight_g=1480, received_weight_g=1490, amount="USD 60.00",
        decision="carrier claim filed", note="Box crushed on one corner.", prepared_by="Aiko",
        prepared_at="2026-11-23 10:42 UTC", photos=(photo, tmp_path / "missing.jpg"))
    data = pdf.claim_packet_pdf(packet)
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(data)
    assert len(doc) == 3  # summary, carrier events, photos
    text = pixels.text(data)
    for expected in ("李 娜", "上海市浦东新区", "1Z999AA10123456784", "In transit, scan 3", "1,490 g", "crushed-box.png",
                     "missing.jpg could not be read"):
        assert expected in text
    assert len(list(doc[2].get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE]))) == 1  # the photo that exists
    a4 = pdfium.PdfDocument(render(packet, "pdf", size="a4").data)
    assert a4[0].get_size() == pytest.approx((595.28, 841.89), abs=0.1)


def test_a_document_in_a_format_it_does_not_come_in_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be rendered as 'zpl'"):
        render(RECEIPT, "zpl")


def test_rendering_is_deterministic_so_a_reprint_is_the_same_document() -> None:
    assert pdf.disposition_label_pdf(LABEL) == pdf.disposition_label_pdf(LABEL)
    assert pdf.refund_receipt_pdf(RECEIPT) == pdf.refund_receipt_pdf(RECEIPT)
