"""Barcode symbols: drawn into a real PDF, rasterized by PDFium at the printer's resolution, and
read back from the pixels by zxing-cpp; plus the vector geometry and the refusals."""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from reportlab.pdfgen.canvas import Canvas

from printing.symbols import (
    SYMBOLOGIES,
    Symbol,
    SymbolError,
    draw_symbol,
    module_width_pt,
    symbol,
    symbol_width_pt,
)

MODULE_DOTS = {203: 2, 300: 3}  # 0.25 mm modules: 10 mil at 203 dpi
PAD = 16  # dots of blank page around the symbol
BAR_DOTS = 120

GS1_DATA = "(01)09501101530003(17)251231(10)ABC123(21)XYZ"

# (symbology, data, zxing format, symbology identifier, the bytes zxing must read)
CASES = [
    ("code128", "LPN000012345X", zxingcpp.BarcodeFormat.Code128, "]C0", b"LPN000012345X"),
    ("code128", "returns console, lower case", zxingcpp.BarcodeFormat.Code128, "]C0", b"returns console, lower case"),
    # Digit runs: code set C, odd runs falling back to B, and the "99" python-barcode drops.
    ("code128", "A1234567B12345678", zxingcpp.BarcodeFormat.Code128, "]C0", b"A1234567B12345678"),
    ("code128", "9912", zxingcpp.BarcodeFormat.Code128, "]C0", b"9912"),
    ("code128", "99abc", zxingcpp.BarcodeFormat.Code128, "]C0", b"99abc"),
    ("code128", "x^y~z_>", zxingcpp.BarcodeFormat.Code128, "]C0", b"x^y~z_>"),
    ("code128", "TAB\tNUL\x00", zxingcpp.BarcodeFormat.Code128, "]C0", b"TAB\tNUL\x00"),
    # GS1-128: FNC1 after the variable-length (10) only; zxing gives it back as GS (0x1D).
    ("gs1-128", GS1_DATA, zxingcpp.BarcodeFormat.Code128, "]C1", b"01095011015300031725123110ABC123\x1d21XYZ"),
    # An odd digit run before the separator: python-barcode leaves code set C, then FNC1 in B.
    ("gs1-128", "(10)12345(21)A1", zxingcpp.BarcodeFormat.Code128, "]C1", b"1012345\x1d21A1"),
    ("gs1-128", "(00)123456789012345675", zxingcpp.BarcodeFormat.Code128, "]C1", b"00123456789012345675"),
    ("gs1-128", "(01)04012345123456(3103)001250", zxingcpp.BarcodeFormat.Code128, "]C1", b"01040123451234563103001250"),
    ("ean13", "4006381333931", zxingcpp.BarcodeFormat.EAN13, "]E0", b"4006381333931"),
    ("ean13", "4901234567894", zxingcpp.BarcodeFormat.EAN13, "]E0", b"4901234567894"),
    # zxing-cpp 3 reports a UPC-A in its 13-digit EAN form, with the leading 0.
    ("upca", "036000291452", zxingcpp.BarcodeFormat.UPCA, "]E0", b"0036000291452"),
    ("ean8", "96385074", zxingcpp.BarcodeFormat.EAN8, "]E4", b"96385074"),
]


@dataclass
class Rendered:
    pdf: bytes
    image: Image.Image
    sym: Symbol
    dpi: int
    dots: int
    size: tuple[float, float]  # what draw_symbol returned, points

    @property
    def first_bar_px(self) -> int:
        return PAD + self.sym.quiet_modules * self.dots


def render(sym: Symbol, dpi: int, dots: int | None = None, *, text: bool = True) -> Rendered:
    """Draw ``sym`` at (PAD, PAD) dots on a page a whole number of inches wide, rasterize it at
    exactly ``dpi``.

    Whole inches, because pypdfium2 sizes the bitmap as ceil(page width × scale) and PDFium then
    maps the page onto that bitmap: the effective scale is exactly dpi/72 only if the page is a
    whole number of dots wide in every representation. The scale passed is a hair under dpi/72
    so that the float product 216 pt × 300/72 (= 900.0000000000001) doesn't ceil to 901.
    """
    dots = dots or MODULE_DOTS[dpi]
    unit = 72 / dpi
    module = module_width_pt(dpi, dots)
    width_in = math.ceil((len(sym.modules) + 2 * sym.quiet_modules) * dots / dpi + 2 * PAD / dpi)
    height_in = 1
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(width_in * 72, height_in * 72), pageCompression=0)
    size = draw_symbol(canvas, sym, PAD * unit, PAD * unit, module_pt=module, bar_height_pt=BAR_DOTS * unit, text=text)
    canvas.showPage()
    canvas.save()
    page = pdfium.PdfDocument(buf.getvalue())[0]
    width_px, height_px = width_in * dpi, height_in * dpi
    image = page.render(scale=(width_px - 0.001) / (width_in * 72), grayscale=True).to_pil()
    assert image.size == (width_px, height_px)  # i.e. exactly dpi/72 pixels per point
    return Rendered(buf.getvalue(), image, sym, dpi, dots, size)


def bar_row(r: Rendered) -> list[int]:
    """The pixel row through the middle of the bars (PDF y grows up, image y grows down)."""
    y = r.image.size[1] - 1 - (PAD + round(r.size[1] * r.dpi / 72) - BAR_DOTS // 2)
    return [r.image.getpixel((x, y)) for x in range(r.image.size[0])]


def runs(modules: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end() - m.start()) for m in re.finditer("1+", modules)]


# --- decoding from pixels -------------------------------------------------------------------------


@pytest.mark.parametrize("dpi", [203, 300])
@pytest.mark.parametrize(("symbology", "data", "fmt", "aim", "raw"), CASES,
                         ids=[f"{c[0]}-{c[1]!r}" for c in CASES])
def test_rasterized_symbol_decodes_to_the_data(symbology: str, data: str, fmt: zxingcpp.BarcodeFormat,
                                               aim: str, raw: bytes, dpi: int) -> None:
    r = render(symbol(symbology, data), dpi)
    found = zxingcpp.read_barcodes(r.image, formats=fmt)
    assert len(found) == 1, found
    (code,) = found
    assert code.format == fmt
    assert code.bytes == raw
    assert code.symbology_identifier == aim
    if symbology == "gs1-128":
        # zxing-cpp: GS1 content type, HRI text with the AIs in parentheses, FNC1 -> GS in bytes.
        assert code.content_type == zxingcpp.ContentType.GS1
        assert code.text == data
    elif raw.decode("ascii").isprintable():
        assert code.text == raw.decode("ascii")


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=24))
def test_any_printable_ascii_code128_round_trips_through_pixels(data: str) -> None:
    r = render(symbol("code128", data), 203)
    found = zxingcpp.read_barcodes(r.image, formats=zxingcpp.BarcodeFormat.Code128)
    assert [c.bytes for c in found] == [data.encode("ascii")]


def code128_values_in(modules: str) -> list[int]:
    """Read a Code 128 module pattern back into symbol values (start .. check, stop dropped)."""
    from barcode.charsets.code128 import CODES

    assert modules.endswith("1100011101011")
    body = modules[:-13]
    return [CODES.index(body[i:i + 11]) for i in range(0, len(body), 11)]


@pytest.mark.parametrize(("data", "separators"), [
    (GS1_DATA, 1), ("(10)12345(21)A1", 1), ("(10)A(21)B(240)C", 2), ("(01)09501101530003(17)251231", 0),
])
def test_gs1_separators_are_fnc1_not_the_gs_character(data: str, separators: int) -> None:
    values = code128_values_in(symbol("gs1-128", data).modules)
    assert values[0] == 105 and values[1] == 102  # START C, FNC1: "this is GS1"
    assert values[2:-1].count(102) == separators  # FNC1 (102 in every code set) after variable AIs
    assert 101 not in values[1:-1] and 103 not in values  # never code set A: no ASCII GS (0x1D) data


def test_python_barcode_takes_gs1_parentheses_as_data() -> None:
    """Why symbols.py parses GS1 data itself: python-barcode's Gs1_128 given the HRI form encodes
    the parentheses as characters (and inserts no FNC1), which zxing then reads back as data."""
    from barcode.codex import Gs1_128

    naive = Symbol("gs1-128", GS1_DATA, Gs1_128(GS1_DATA).build()[0], 10, GS1_DATA)
    (code,) = zxingcpp.read_barcodes(render(naive, 203).image)
    assert code.bytes.startswith(b"(01)09501101530003(17)")
    assert b"\x1d" not in code.bytes


# --- vector geometry ------------------------------------------------------------------------------


@pytest.mark.parametrize("dpi", [203, 300])
@pytest.mark.parametrize(("symbology", "data"), [(c[0], c[1]) for c in CASES], ids=[f"{c[0]}-{c[1]!r}" for c in CASES])
def test_bars_are_vector_rectangles_on_the_module_grid(symbology: str, data: str, dpi: int) -> None:
    sym = symbol(symbology, data)
    r = render(sym, dpi)
    dots = MODULE_DOTS[dpi]

    # One filled rectangle per run of bars, no images, no strokes.
    page = pdfium.PdfDocument(r.pdf)[0]
    kinds = [obj.type for obj in page.get_objects()]
    assert pdfium_c.FPDF_PAGEOBJ_IMAGE not in kinds
    assert kinds.count(pdfium_c.FPDF_PAGEOBJ_PATH) == len(runs(sym.modules))
    stream = r.pdf[r.pdf.index(b"stream"):]
    assert b" Do" not in stream and b"\nBI" not in stream and b" S\n" not in stream
    rects = [tuple(map(float, m)) for m in
             re.findall(rb"n (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) re f\*?\n", stream)]
    assert len(rects) == len(runs(sym.modules))
    for (x, _y, w, _h), (start, length) in zip(rects, runs(sym.modules), strict=True):
        left_dots = x * dpi / 72
        # Each edge is on the dot grid, pulled in by at most 1 % of a dot.
        assert abs(left_dots - (PAD + (sym.quiet_modules + start) * dots)) < 0.01
        assert abs(w * dpi / 72 - length * dots) < 0.02

    # In the pixels: every module is exactly `dots` pixels, black or white, nothing in between.
    row = bar_row(r)
    first = r.first_bar_px
    expected = [0 if first <= x < first + len(sym.modules) * dots and sym.modules[(x - first) // dots] == "1"
                else 255 for x in range(len(row))]
    assert row == expected


def test_a_module_is_a_whole_number_of_dots() -> None:
    assert module_width_pt(203, 2) == 144 / 203
    assert module_width_pt(300, 3) == 0.72
    sym = symbol("code128", "LPN000012345X")
    assert symbol_width_pt(sym, module_width_pt(203, 2)) * 203 / 72 == pytest.approx((len(sym.modules) + 20) * 2)
    with pytest.raises(ValueError):
        module_width_pt(203, 0)


def test_text_band_under_the_bars_and_the_returned_box() -> None:
    sym = symbol("ean13", "4006381333931")
    with_text = render(sym, 203)
    without = render(sym, 203, text=False)
    module = module_width_pt(203, 2)
    bar_h = BAR_DOTS * 72 / 203
    assert with_text.size == pytest.approx((symbol_width_pt(sym, module), bar_h + 1.25 * 8))
    assert without.size == pytest.approx((symbol_width_pt(sym, module), bar_h))
    assert pdfium_c.FPDF_PAGEOBJ_TEXT in [o.type for o in pdfium.PdfDocument(with_text.pdf)[0].get_objects()]
    assert pdfium_c.FPDF_PAGEOBJ_TEXT not in [o.type for o in pdfium.PdfDocument(without.pdf)[0].get_objects()]
    page = pdfium.PdfDocument(with_text.pdf)[0]
    assert page.get_textpage().get_text_range().strip() == "4006381333931"
    # The bars stand on the text band (or on y itself without text).
    for rendered, band in ((with_text, 1.25 * 8), (without, 0.0)):
        ys = [float(m) for m in re.findall(rb"n -?[\d.]+ (-?[\d.]+) -?[\d.]+ -?[\d.]+ re", rendered.pdf)]
        assert ys and all(y == pytest.approx(PAD * 72 / 203 + band, abs=1e-4) for y in ys)


def test_quiet_zones_and_module_counts() -> None:
    assert {s: symbol(s, d).quiet_modules for s, d in
            [("code128", "A"), ("gs1-128", "(00)123456789012345675"), ("ean13", "4006381333931"),
             ("upca", "036000291452"), ("ean8", "96385074")]} == \
        {"code128": 10, "gs1-128": 10, "ean13": 11, "upca": 9, "ean8": 7}
    assert len(symbol("ean13", "4006381333931").modules) == 95
    assert len(symbol("upca", "036000291452").modules) == 95
    assert len(symbol("ean8", "96385074").modules) == 67
    # Code 128: (start + data + check) × 11 + stop 13; "LPN000012345X" = B L P N C 00 00 12 34 B 5 X.
    assert len(symbol("code128", "LPN000012345X").modules) == 13 * 11 + 13
    assert symbol("gs1-128", GS1_DATA).text == GS1_DATA
    assert SYMBOLOGIES == ("code128", "gs1-128", "ean13", "upca", "ean8")


# --- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("symbology", "data", "message"), [
    ("ean13", "4006381333932", "wrong check digit 2, expected 1"),
    ("ean13", "400638133393", "exactly 13 digits"),
    ("ean13", "40063813339３1", "exactly 13 digits"),
    ("upca", "036000291453", "wrong check digit 3, expected 2"),
    ("upca", "03600029145", "exactly 12 digits"),
    ("ean8", "96385073", "wrong check digit 3, expected 4"),
    ("ean8", "9638507A", "exactly 8 digits"),
    ("gs1-128", "(01)09501101530004", "Invalid GTIN check digit"),
    ("gs1-128", "(00)123456789012345670", "Invalid SSCC check digit"),
    ("gs1-128", "(17)251332", "not a valid element string"),
    ("gs1-128", "01095011015300031725123110ABC123", "not a valid element string"),
    ("gs1-128", "(10)ABC^", "not a valid element string"),
    ("gs1-128", "(10)ABCDEFGHIJ(21)ABCDEFGHIJKLMNOPQRST(240)ABCDEFGHIJ", "at most 48"),
    ("code128", "Peña", "ASCII only"),
    ("code128", "ワイヤレス", "ASCII only"),
    ("code128", "", "empty"),
    ("qr", "hello", "unknown symbology 'qr'"),
    ("EAN13", "4006381333931", "unknown symbology"),
])
def test_bad_data_is_a_symbol_error(symbology: str, data: str, message: str) -> None:
    with pytest.raises(SymbolError, match=re.escape(message)):
        symbol(symbology, data)
    assert issubclass(SymbolError, ValueError)
