"""Every document as PDF, drawn with reportlab.

Barcodes are vector rectangles whose module width is a whole number of the target printer's
dots (``dpi``): a bar never falls between two dots, so a 203 dpi label printer prints every
bar the same width and scanners read it at the first pass.
"""
from __future__ import annotations

import io
from collections.abc import Sequence

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch, mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Image, KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle,
)

from printing import fonts
from printing.content import (
    ClaimPacket, DispositionLabel, ExchangeSlip, LpnSticker, RefundReceipt,
)
from printing.symbols import Symbol, draw_symbol, module_width_pt, symbol, symbol_width_pt

LABEL_4X6 = (4 * inch, 6 * inch)
STICKER_2X1 = (2 * inch, 1 * inch)
RECEIPT_WIDTH = 80 * mm
RECEIPT_MARGIN = 4 * mm  # 72 mm printable on an 80 mm roll

# Nominal module (X dimension): 0.33 mm for EAN/UPC at 100 %, 0.25 mm for Code 128 on labels.
_NOMINAL_MM = {"ean13": 0.33, "upca": 0.33, "ean8": 0.33, "code128": 0.25, "gs1-128": 0.25}


def module_dots(dpi: int, symbology: str) -> int:
    return max(1, round(_NOMINAL_MM[symbology] * dpi / 25.4))


def _canvas(buf: io.BytesIO, size: tuple[float, float], title: str) -> Canvas:
    # invariant: the same document renders to the same bytes (no timestamp or random id inside),
    # so a reprint is byte-identical and tests can compare.
    c = Canvas(buf, pagesize=size, invariant=1, pageCompression=1)
    c.setTitle(title)
    c.setCreator("Returns Console")
    return c


def _text(c: Canvas, x: float, y: float, text: str, size: float, *, bold: bool = False,
          max_width: float | None = None, align: str = "left") -> float:
    """Draw one line; returns the font size used (shrunk to fit ``max_width``)."""
    font = fonts.font_for(text, bold)
    if max_width is not None:
        text, size = fonts.fit(text, font, size, max_width)
    c.setFont(font, size)
    if align == "center":
        c.drawCentredString(x, y, text)
    elif align == "right":
        c.drawRightString(x, y, text)
    else:
        c.drawString(x, y, text)
    return size


def _fit_symbol(sym: Symbol, dpi: int, max_width: float) -> float:
    """The largest whole-dot module width, from the nominal size down, that fits ``max_width``."""
    dots = module_dots(dpi, sym.symbology)
    while dots > 1 and symbol_width_pt(sym, module_width_pt(dpi, dots)) > max_width:
        dots -= 1
    module = module_width_pt(dpi, dots)
    if symbol_width_pt(sym, module) > max_width:
        raise ValueError(f"{sym.data!r} is too long for a {max_width / inch:.1f} in wide barcode at {dpi} dpi")
    return module


def _centered_symbol(c: Canvas, sym: Symbol, page_width: float, y: float, dpi: int, bar_height: float,
                     margin: float, text: bool = True, font_size: float = 8) -> float:
    module = _fit_symbol(sym, dpi, page_width - 2 * margin)
    w = symbol_width_pt(sym, module)
    # Centre on a whole dot too, so every bar edge stays on the printer's dot grid.
    dot = 72 / dpi
    x = round((page_width - w) / 2 / dot) * dot
    _, h = draw_symbol(c, sym, x, y, module_pt=module, bar_height_pt=bar_height, text=text, font_size=font_size)
    return h


def _header(c: Canvas, doc: DispositionLabel | ExchangeSlip, w: float, y: float, m: float) -> None:
    """Station on the left, date on the right: the top line of every 4×6 document."""
    _text(c, m, y, doc.station, 9, max_width=(w - 2 * m) * 0.65)
    _text(c, w - m, y, doc.date, 9, align="right")


def _paragraph(c: Canvas, x: float, y: float, text: str, size: float, width: float, max_lines: int) -> float:
    """``text`` wrapped into at most ``max_lines``; returns the baseline below the last line."""
    font = fonts.font_for(text)
    c.setFont(font, size)
    for line in fonts.wrap(text, font, size, width, max_lines=max_lines):
        c.drawString(x, y, line)
        y -= size * 1.27
    return y


def _finish(c: Canvas, buf: io.BytesIO) -> bytes:
    c.showPage()
    c.save()
    return buf.getvalue()


# -- labels ------------------------------------------------------------------------------------

def disposition_label_pdf(doc: DispositionLabel, dpi: int = 203) -> bytes:
    return labels_pdf([doc], dpi)


def lpn_sticker_pdf(doc: LpnSticker, dpi: int = 203) -> bytes:
    return labels_pdf([doc], dpi)


def labels_pdf(docs: Sequence[DispositionLabel | LpnSticker], dpi: int = 203) -> bytes:
    """One page per label, e.g. every unit of an RMA in one print job."""
    if not docs:
        raise ValueError("no labels to print")
    buf = io.BytesIO()
    first = docs[0]
    kind = "Disposition label" if isinstance(first, DispositionLabel) else "LPN sticker"
    c = _canvas(buf, LABEL_4X6 if isinstance(first, DispositionLabel) else STICKER_2X1,
                f"{kind} {first.lpn}" + (f" and {len(docs) - 1} more" if len(docs) > 1 else ""))
    for doc in docs:
        if isinstance(doc, DispositionLabel):
            c.setPageSize(LABEL_4X6)
            _draw_disposition_label(c, doc, dpi)
        else:
            c.setPageSize(STICKER_2X1)
            _draw_lpn_sticker(c, doc, dpi)
        c.showPage()
    c.save()
    return buf.getvalue()


def _draw_disposition_label(c: Canvas, doc: DispositionLabel, dpi: int) -> None:
    w, h = LABEL_4X6
    m = 14.0
    inner = w - 2 * m
    y = h - m - 10
    _header(c, doc, w, y, m)
    y -= 62
    _text(c, w / 2, y, doc.disposition.upper().replace("-", " "), 52, bold=True, max_width=inner, align="center")
    y -= 30
    _text(c, w / 2, y, f"BIN {doc.bin_hint}", 20, bold=True, max_width=inner, align="center")
    y -= 16
    c.setLineWidth(1.5)
    c.line(m, y, w - m, y)

    # Grade in a box on the right, the identifiers on the left.
    box = 64.0
    c.rect(w - m - box, y - 10 - box, box, box, stroke=1, fill=0)
    _text(c, w - m - box / 2, y - 10 - box + 14, doc.grade, 48, bold=True, align="center")
    _text(c, w - m - box / 2, y - 10 - box - 11, "GRADE", 8, align="center")
    left = inner - box - 10
    y -= 28
    for label, value in (("RMA", doc.rma), ("SKU", doc.sku)):
        _text(c, m, y, label, 8)
        _text(c, m + 30, y, value, 16, bold=True, max_width=left - 30)
        y -= 26
    _paragraph(c, m, y, doc.title, 11, left, max_lines=2)

    # The LPN at the bottom: the code the unit is scanned by from here on.
    _text(c, m, m + 118, "LPN", 8)
    _centered_symbol(c, symbol("code128", doc.lpn), w, m + 6, dpi, bar_height=90, margin=m, font_size=11)


def _draw_lpn_sticker(c: Canvas, doc: LpnSticker, dpi: int) -> None:
    w, h = STICKER_2X1
    m = 4.0
    _text(c, m, h - m - 7, f"{doc.sku} · grade {doc.grade} · {doc.rma}", 7, max_width=w - 2 * m)
    _centered_symbol(c, symbol("code128", doc.lpn), w, m, dpi, bar_height=h - 2 * m - 21, margin=0, font_size=7)


def exchange_slip_pdf(doc: ExchangeSlip, dpi: int = 203) -> bytes:
    buf = io.BytesIO()
    w, h = LABEL_4X6
    c = _canvas(buf, LABEL_4X6, f"Exchange slip {doc.rma}")
    m = 14.0
    inner = w - 2 * m
    y = h - m - 10
    _header(c, doc, w, y, m)
    y -= 40
    _text(c, w / 2, y, "EXCHANGE", 36, bold=True, align="center")
    y -= 22
    _text(c, w / 2, y, f"for {doc.rma}", 13, align="center")
    y -= 26
    _text(c, m, y, "Customer", 8)
    _text(c, m + 52, y, doc.customer_name, 13, bold=True, max_width=inner - 52)
    y -= 18
    _text(c, m, y, "Returned", 8)
    _text(c, m + 52, y, f"{doc.original_sku}  {doc.original_title}", 10, max_width=inner - 52)
    y -= 12
    c.setLineWidth(1.5)
    c.line(m, y, w - m, y)
    y -= 26
    _text(c, m, y, "PICK", 10, bold=True)
    _text(c, m + 40, y, doc.replacement_sku, 22, bold=True, max_width=inner - 40)
    y -= 22
    if doc.replacement_size:
        _text(c, m + 40, y, f"size {doc.replacement_size}", 18, bold=True, max_width=inner - 40)
        y -= 18
    y = _paragraph(c, m + 40, y, doc.replacement_title, 11, inner - 40, max_lines=2) - 8
    bar_h = 64.0
    sym = symbol(doc.pick_symbology, doc.pick_code)
    _centered_symbol(c, sym, w, y - bar_h - 14, dpi, bar_height=bar_h, margin=m, font_size=10)
    y -= bar_h + 40
    c.line(m, y, w - m, y)
    y -= 22
    _text(c, w / 2, y, doc.difference, 16, bold=True, max_width=inner, align="center")
    return _finish(c, buf)


# -- receipt -----------------------------------------------------------------------------------

def _receipt_rows(doc: RefundReceipt) -> list[tuple[str, str, float, bool]]:
    rows: list[tuple[str, str, float, bool]] = []
    for line in doc.lines:
        rows.append((f"{line.title}", line.amount, 9, False))
        rows.append((f"  {line.sku}", "", 7.5, False))
    for d in doc.deductions:
        rows.append((f"  {d.label}", d.amount, 9, False))
    return rows


def refund_receipt_pdf(doc: RefundReceipt, dpi: int = 203) -> bytes:
    """80 mm roll: the page is as long as the receipt."""
    rows = _receipt_rows(doc)
    barcode_h = 70.0 if doc.store_credit_code else 0.0
    m = RECEIPT_MARGIN
    rows_h = sum(14 if size >= 9 else 11 for _, _, size, _ in rows)
    # Exactly what the steps below take, so the roll is cut right after the last line.
    height = m + 12 + 14 + 16 + 4 * 12 + 2 + 14 + rows_h + 14 + 16 + 14 + barcode_h + 8 + 4 + m
    buf = io.BytesIO()
    w = RECEIPT_WIDTH
    c = _canvas(buf, (w, height), f"Refund receipt {doc.rma}")
    inner = w - 2 * m
    y = height - m - 12
    _text(c, w / 2, y, doc.store, 13, bold=True, max_width=inner, align="center")
    y -= 14
    _text(c, w / 2, y, "REFUND RECEIPT", 10, bold=True, align="center")
    y -= 16
    for text in (doc.when, f"{doc.station} · {doc.clerk}", f"RMA {doc.rma} · order {doc.order}", doc.customer_name):
        _text(c, m, y, text, 8.5, max_width=inner)
        y -= 12
    y -= 2
    c.setDash(2, 2)
    c.line(m, y, w - m, y)
    c.setDash()
    y -= 14
    amount_w = 62.0
    for label, amount, size, bold in rows:
        _text(c, m, y, label, size, bold=bold, max_width=inner - amount_w - 4)
        if amount:
            _text(c, w - m, y, amount, size, align="right")
        y -= 14 if size >= 9 else 11
    c.setDash(2, 2)
    c.line(m, y + 4, w - m, y + 4)
    c.setDash()
    y -= 14
    _text(c, m, y, "REFUND", 13, bold=True)
    _text(c, w - m, y, doc.total, 13, bold=True, align="right")
    y -= 16
    _text(c, m, y, doc.method_text, 9, max_width=inner)
    y -= 14
    if doc.store_credit_code:
        _text(c, m, y, "Store credit code", 8)
        _centered_symbol(c, symbol("code128", doc.store_credit_code), w, y - barcode_h + 4, dpi,
                         bar_height=barcode_h - 26, margin=m, font_size=8)
        y -= barcode_h
    _text(c, w / 2, y - 8, "Keep this receipt for your records.", 7.5, align="center")
    return _finish(c, buf)


# -- claim packet ------------------------------------------------------------------------------

def _style(size: float, bold: bool = False, leading: float | None = None) -> ParagraphStyle:
    return ParagraphStyle(f"s{size}{bold}", fontName=fonts.LATIN_BOLD if bold else fonts.LATIN, fontSize=size,
                          leading=leading or size * 1.25)


def _para(text: str, size: float = 9.5, bold: bool = False) -> Paragraph:
    from xml.sax.saxutils import escape

    style = _style(size, bold)
    font = fonts.font_for(text, bold)
    if font not in (fonts.LATIN, fonts.LATIN_BOLD):
        style = ParagraphStyle(style.name + font, parent=style, fontName=font, wordWrap="CJK")
    return Paragraph(escape(text), style)


def _grams(g: int | None) -> str:
    return "not recorded" if g is None else f"{g:,} g"


def claim_packet_pdf(doc: ClaimPacket, dpi: int = 300, *, a4: bool = False) -> bytes:  # noqa: ARG001 - no barcodes
    buf = io.BytesIO()
    page = A4 if a4 else LETTER
    title = f"Carrier claim {doc.claim_id} — {doc.carrier} {doc.tracking_number}"

    def footer(c: Canvas, d: SimpleDocTemplate) -> None:
        c.saveState()
        c.setFont(fonts.LATIN, 8)
        c.drawString(d.leftMargin, 0.5 * inch, title)
        c.drawRightString(page[0] - d.rightMargin, 0.5 * inch, f"page {c.getPageNumber()}")
        c.restoreState()

    d = SimpleDocTemplate(buf, pagesize=page, title=title, author=doc.prepared_by, creator="Returns Console",
                          invariant=1, leftMargin=0.8 * inch, rightMargin=0.8 * inch,
                          topMargin=0.8 * inch, bottomMargin=0.9 * inch)
    facts: Sequence[tuple[str, str]] = (
        ("Claim", f"{doc.claim_id} ({doc.kind})"),
        ("Order", doc.order),
        ("Customer", doc.customer_name),
        ("Delivery address", "\n".join(doc.address) or "not on file"),
        ("Carrier", doc.carrier),
        ("Tracking number", doc.tracking_number),
        ("Shipped", doc.shipped),
        ("Delivered", doc.delivered),
        ("Weight when shipped", _grams(doc.shipped_weight_g)),
        ("Expected weight", _grams(doc.expected_weight_g)),
        ("Weight when received", _grams(doc.received_weight_g)),
        ("Amount claimed", doc.amount),
        ("Decision", doc.decision),
    )
    table = Table([[_para(k, bold=True), [_para(line) for line in v.split("\n")]] for k, v in facts],
                  colWidths=[1.9 * inch, 5.0 * inch])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.grey),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 5)]))
    story: list = [_para(f"Carrier claim — {doc.kind}", 18, bold=True), Spacer(0, 6),
                   _para(f"Prepared by {doc.prepared_by} on {doc.prepared_at}", 9), Spacer(0, 14), table]
    if doc.note:
        story += [Spacer(0, 12), _para("Note", 11, bold=True), _para(doc.note)]

    story += [PageBreak(), _para("Carrier events", 14, bold=True), Spacer(0, 8)]
    if doc.events:
        rows = [[_para("When", bold=True), _para("Event", bold=True), _para("Description", bold=True),
                 _para("Location", bold=True)]]
        rows += [[_para(e.when), _para(e.code), _para(e.description), _para(e.location)] for e in doc.events]
        events = Table(rows, colWidths=[1.5 * inch, 1.0 * inch, 2.9 * inch, 1.5 * inch], repeatRows=1)
        events.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                    ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                                    ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.grey)]))
        story.append(events)
    else:
        story.append(_para("The carrier reported no events for this shipment."))

    if doc.photos:
        story += [PageBreak(), _para("Photos", 14, bold=True), Spacer(0, 8)]
        max_w, max_h = page[0] - 1.6 * inch, 4.0 * inch
        for path in doc.photos:
            try:
                img = Image(str(path))
                scale = min(max_w / img.imageWidth, max_h / img.imageHeight, 1.0)
                img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
                story.append(KeepTogether([img, _para(path.name, 8), Spacer(0, 10)]))
            except OSError as exc:  # a photo file that is gone or unreadable: say so, print the rest
                story.append(_para(f"Photo {path.name} could not be read ({exc.strerror or exc}).", 9))
    d.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
