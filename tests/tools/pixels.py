"""Printed output read back the way a scanner and a person would: PDF pages rendered to pixels
by PDFium at the printer's resolution, barcodes decoded by zxing-cpp, text from the text layer."""
from __future__ import annotations

import pypdfium2 as pdfium
import zxingcpp


def pages(data: bytes, dpi: int = 203) -> list:
    doc = pdfium.PdfDocument(data)
    return [page.render(scale=dpi / 72).to_pil().convert("L") for page in doc]


def barcodes(data: bytes, dpi: int = 203) -> list[list[tuple[str, str]]]:
    """Per page: (text, format name) of every barcode zxing-cpp finds in the rendered page."""
    return [[(b.text, b.format.name) for b in zxingcpp.read_barcodes(img)] for img in pages(data, dpi)]


def text(data: bytes) -> str:
    doc = pdfium.PdfDocument(data)
    return "\n".join(page.get_textpage().get_text_range() for page in doc)
