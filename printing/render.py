"""One entry point from a document to the bytes a printer takes."""
from __future__ import annotations

import re

from printing import pdf, zpl
from printing.content import (
    ClaimPacket, DispositionLabel, Document, ExchangeSlip, LpnSticker, RefundReceipt,
)
from printing.printers import PrintPayload

_KINDS: dict[type, str] = {
    DispositionLabel: "disposition-label",
    LpnSticker: "lpn-sticker",
    ExchangeSlip: "exchange-slip",
    RefundReceipt: "refund-receipt",
    ClaimPacket: "claim-packet",
}


def document_kind(doc: Document) -> str:
    return _KINDS[type(doc)]


def reference(doc: Document) -> str:
    """What the printout is for, as staff search for it: the LPN, the RMA or the claim."""
    if isinstance(doc, (DispositionLabel, LpnSticker)):
        return doc.lpn
    if isinstance(doc, ClaimPacket):
        return doc.claim_id
    return doc.rma


def job_name(doc: Document) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{document_kind(doc)}-{reference(doc)}")


def render(doc: Document, fmt: str = "pdf", dpi: int = 203, size: str = "", copies: int = 1) -> PrintPayload:
    """Raises ValueError for a format the document does not come in."""
    data: bytes
    if fmt == "pdf":
        if isinstance(doc, DispositionLabel):
            data = pdf.disposition_label_pdf(doc, dpi)
        elif isinstance(doc, LpnSticker):
            data = pdf.lpn_sticker_pdf(doc, dpi)
        elif isinstance(doc, ExchangeSlip):
            data = pdf.exchange_slip_pdf(doc, dpi)
        elif isinstance(doc, RefundReceipt):
            data = pdf.refund_receipt_pdf(doc, dpi)
        else:
            data = pdf.claim_packet_pdf(doc, dpi, a4=size == "a4")
    elif fmt == "zpl" and isinstance(doc, DispositionLabel):
        data = zpl.disposition_label_zpl(doc, dpi).encode("utf-8")
    elif fmt == "zpl" and isinstance(doc, LpnSticker):
        data = zpl.lpn_sticker_zpl(doc, dpi).encode("utf-8")
    elif fmt == "escpos" and isinstance(doc, RefundReceipt):
        from printing.escpos import receipt_escpos

        data = receipt_escpos(doc)
    else:
        raise ValueError(f"a {document_kind(doc)} cannot be rendered as {fmt!r}")
    return PrintPayload(data=data, format=fmt, name=job_name(doc), copies=copies)


def render_all(docs: list[Document], fmt: str = "pdf", dpi: int = 203, size: str = "", copies: int = 1) -> PrintPayload:
    """Several labels as one job (one page, or one ^XA…^XZ format, each); any other document alone."""
    if not docs:
        raise ValueError("nothing to render")
    if len(docs) == 1:
        return render(docs[0], fmt, dpi, size, copies)
    if not all(isinstance(d, (DispositionLabel, LpnSticker)) for d in docs):
        raise ValueError("only labels and stickers print several to a job")
    labels = [d for d in docs if isinstance(d, (DispositionLabel, LpnSticker))]
    if fmt == "pdf":
        data = pdf.labels_pdf(labels, dpi)
    else:
        data = b"".join(render(d, fmt, dpi, size).data for d in labels)
    return PrintPayload(data=data, format=fmt, name=f"{job_name(docs[0])}-and-{len(docs) - 1}-more", copies=copies)
