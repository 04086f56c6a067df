"""A sample of each document for test prints: every field filled, the longest usual values,
Japanese and Chinese names, so a test print shows whether the printer and its settings will do."""
from __future__ import annotations

from printing.content import (
    CarrierEventLine, ClaimPacket, DispositionLabel, Document, ExchangeSlip, LpnSticker, ReceiptDeduction,
    ReceiptLine, RefundReceipt,
)

# An LPN with a valid check character that no real unit carries (sequence 0).
TEST_LPN = "LPN000000000D"


def sample(document: str, station: str) -> Document:
    if document == "disposition-label":
        return DispositionLabel(lpn=TEST_LPN, disposition="return-to-vendor", rma="R-00000009", sku="TEST-PRINT",
                                title="Test print — テスト印刷 — 测试打印", grade="B", date="2026-01-01",
                                station=station, bin_hint="TEST")
    if document == "lpn-sticker":
        return LpnSticker(lpn=TEST_LPN, sku="TEST-PRINT", grade="B", rma="R-00000009")
    if document == "exchange-slip":
        return ExchangeSlip(rma="R-00000009", customer_name="テスト 花子", original_sku="TEST-1",
                            original_title="Test print, original", replacement_sku="TEST-2",
                            replacement_title="Test print, replacement, Navy, M", replacement_size="Navy, M",
                            pick_code="4006381333931", difference="No price difference", station=station,
                            date="2026-01-01")
    if document == "refund-receipt":
        return RefundReceipt(store=station, station="TEST", rma="R-00000009", order="SO-0000000",
                             customer_name="测试 顾客", when="2026-01-01 12:00", clerk="Test",
                             lines=(ReceiptLine("Test print, item", "TEST-1", "USD 10.00"),),
                             deductions=(ReceiptDeduction("Test deduction", "-USD 1.00"),), total="USD 9.00",
                             refund_method="store credit", store_credit_code="SCTESTPRINT")
    if document == "claim-packet":
        return ClaimPacket(claim_id="TEST", kind="test print", order="SO-0000000", customer_name="テスト 花子",
                           address=("東京都千代田区", "丸の内 1-1"), carrier="UPS", tracking_number="1Z999AA10123456784",
                           shipped="2026-01-01", delivered="2026-01-02",
                           events=(CarrierEventLine("2026-01-02 10:00", "DL", "Delivered", "Tokyo"),),
                           shipped_weight_g=1000, expected_weight_g=1000, received_weight_g=1000,
                           amount="USD 0.00", decision="test print", note="", prepared_by="Test",
                           prepared_at="2026-01-01 12:00")
    raise ValueError(f"unknown document {document!r}")
