"""What each printed document says: plain, frozen data.

The console fills these from the station database (``console/printouts.py``); ``printing``
draws them as PDF, ZPL or ESC/POS. Amounts arrive already formatted by ``console.money`` so
that no document does arithmetic with money. Payment data is a card brand and the last four
digits, never more.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DOCUMENTS = ("disposition-label", "lpn-sticker", "exchange-slip", "refund-receipt", "claim-packet")

_LAST4 = re.compile(r"\d{4}")


@dataclass(frozen=True)
class DispositionLabel:
    """4×6 in label on the returned unit's tote or bag: where it goes next."""

    lpn: str
    disposition: str  # restock, refurbish, outlet, return-to-vendor, recycle, quarantine
    rma: str
    sku: str
    title: str
    grade: str
    date: str  # the station's local date, e.g. 2026-11-23
    station: str
    bin_hint: str


@dataclass(frozen=True)
class LpnSticker:
    """2×1 in sticker on the unit itself."""

    lpn: str
    sku: str
    grade: str
    rma: str


@dataclass(frozen=True)
class ExchangeSlip:
    rma: str
    customer_name: str
    original_sku: str
    original_title: str
    replacement_sku: str
    replacement_title: str
    replacement_size: str | None
    pick_code: str  # what the picker scans: the replacement's GTIN, or its SKU
    difference: str  # e.g. "Customer pays USD 5.00", "Refund to customer USD 3.00", "No price difference"
    station: str
    date: str

    @property
    def pick_symbology(self) -> str:
        """EAN-13/UPC-A for a GTIN the shelves carry, Code 128 for anything else."""
        if self.pick_code.isdigit() and len(self.pick_code) in (12, 13):
            return "ean13" if len(self.pick_code) == 13 else "upca"
        return "code128"


@dataclass(frozen=True)
class ReceiptLine:
    title: str
    sku: str
    amount: str


@dataclass(frozen=True)
class ReceiptDeduction:
    label: str
    amount: str  # shown as a negative, e.g. "-USD 4.00"


@dataclass(frozen=True)
class RefundReceipt:
    """80 mm thermal receipt for the customer."""

    store: str
    station: str
    rma: str
    order: str
    customer_name: str
    when: str  # local date and time
    clerk: str
    lines: tuple[ReceiptLine, ...]
    deductions: tuple[ReceiptDeduction, ...]
    total: str
    refund_method: str  # "original payment", "store credit", "exchange", ...
    card_brand: str | None = None
    card_last4: str | None = None
    store_credit_code: str | None = None

    def __post_init__(self) -> None:
        if self.card_last4 is not None and not _LAST4.fullmatch(self.card_last4):
            raise ValueError("card_last4 must be exactly four digits: a receipt never shows more of a card")

    @property
    def method_text(self) -> str:
        if self.card_brand and self.card_last4:
            return f"{self.refund_method}: {self.card_brand} •••• {self.card_last4}"
        return self.refund_method


@dataclass(frozen=True)
class CarrierEventLine:
    when: str
    code: str
    description: str
    location: str = ""


@dataclass(frozen=True)
class ClaimPacket:
    """Multi-page PDF for a carrier claim on a damaged or lost parcel."""

    claim_id: str
    kind: str  # damaged, lost, missing-item, wrong-item
    order: str
    customer_name: str
    address: tuple[str, ...]
    carrier: str
    tracking_number: str
    shipped: str
    delivered: str
    events: tuple[CarrierEventLine, ...]
    shipped_weight_g: int | None
    expected_weight_g: int | None
    received_weight_g: int | None
    amount: str
    decision: str
    note: str
    prepared_by: str
    prepared_at: str
    photos: tuple[Path, ...] = field(default_factory=tuple)


Document = DispositionLabel | LpnSticker | ExchangeSlip | RefundReceipt | ClaimPacket
