"""Linear barcode symbols as module patterns, drawn as vector rectangles.

The bar/space patterns come from python-barcode; this module validates the data first (so a
clerk gets an actionable message instead of a silently different barcode), then draws each run
of bar modules as one filled rectangle. No bitmap is ever made: at a printer's resolution a
module is a whole number of dots (:func:`module_width_pt`), so every bar edge lands on the
printer's dot grid and nothing is resampled.

What python-barcode 0.16.1 does, and what we give it because of that (each is checked by
``tests/printing/test_symbols.py``, which decodes the rasterized PDF with zxing-cpp):

* ``Gs1_128`` does not parse GS1 data at all. It only prepends its FNC1 marker (the character
  ``"\\xf1"``) and encodes the rest as plain Code 128: parentheses in "(01)…(10)…" would be
  encoded as literal "(" and ")" characters, and no separator is inserted after a
  variable-length element. So we parse the element string with biip, write it without
  parentheses, and put ``Gs1_128.FNC1_CHAR`` after every variable-length element that is not
  last; python-barcode then emits codeword 102 (FNC1) for it in whichever code set is current
  (it switches C→B first when a digit is pending, which is correct). Passing the ASCII GS
  character (0x1D) instead would be wrong: it becomes a data character (CODE A, 93), not FNC1;
  zxing-cpp happens to read both back alike (as GS), but only FNC1 is GS1-128.
* ``Code128`` uses the Latin-1 letters ``ñ ó ò ô`` as markers for FNC1/FNC3/FNC2/FNC4, so user
  text such as "Peña" would silently carry an FNC1 (zxing reads it back as "Pe<GS>a"). Code 128
  only encodes ASCII without FNC4 tricks, so non-ASCII data is a :class:`SymbolError`.
* ``Code128`` always starts in code set C and then "optimizes" a leading switch away by looking
  at the second codeword. A value of 99 there is taken for "CODE C" even when it is the data
  pair "99", so "9912" is encoded as "12". :class:`_Code128` keeps that codeword.
* ``EAN13``/``EAN8``/``UPCA`` ignore a given check digit and compute their own, so a mistyped
  GTIN would print as a different, valid product. We check the given check digit first.
* ``Code128.encoded`` and ``build()`` share state (the current code set): call one per object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from barcode.charsets import code128 as _c128
from barcode.codex import Code128, Gs1_128
from barcode.ean import EAN8, EAN13
from barcode.errors import BarcodeError
from barcode.upc import UPCA
from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_messages import GS1Message

SYMBOLOGIES = ("code128", "gs1-128", "ean13", "upca", "ean8")

# Quiet zone on each side, in modules (ISO/IEC 15417 for Code 128, the GS1 General
# Specifications for EAN/UPC; EAN-13 asks 11 left / 7 right, we use 11 on both sides).
_QUIET = {"code128": 10, "gs1-128": 10, "ean13": 11, "upca": 9, "ean8": 7}
_GTIN_LENGTH = {"ean13": 13, "upca": 12, "ean8": 8}
_GTIN_NAME = {"ean13": "EAN-13", "upca": "UPC-A", "ean8": "EAN-8"}
# GS1 General Specifications: a GS1-128 symbol holds at most 48 data characters (separators included).
_GS1_MAX_DATA = 48

# The human-readable line: its band below the bars is this many font sizes tall, and the
# baseline sits this far above the band's bottom (clears descenders, leaves a gap to the bars).
_TEXT_BAND = 1.25
_TEXT_BASELINE = 0.25
# Bar edges fall exactly on dot boundaries, but PDF coordinates are decimals (reportlab writes 5
# places) and 72/dpi is not one, so an edge lands a hair to either side. Renderers that paint
# every pixel a bar touches (PostScript's rule; PDFium snaps axis-aligned rectangles outwards
# and rounds their width up) then grow that bar by a whole dot, a 50 % error for a 2-dot module.
# Pulling each edge in by 0.2 % of a module keeps it inside its dot: invisible, and exact.
_EDGE_INSET = 0.002


@dataclass(frozen=True)
class Symbol:
    symbology: str
    data: str  # what was encoded, as given (GS1: the element string in "(01)…(21)…" form)
    modules: str  # "1" bar / "0" space per module, quiet zones NOT included
    quiet_modules: int  # quiet zone on each side, in modules
    text: str  # human-readable interpretation printed under the bars


class SymbolError(ValueError):
    """The data cannot be encoded in the symbology; the message says what to change."""


class _KeepLeading99:
    """python-barcode's Code 128 start-code "optimization", without its bug for data beginning
    with "99": after START C, 99 is the digit pair "99", never a CODE C switch."""

    def _try_to_optimize(self, encoded: list[int]) -> list[int]:
        if encoded[0] == _c128.START_CODES["C"] and len(encoded) > 1 and encoded[1] == 99:
            return encoded
        return super()._try_to_optimize(encoded)  # type: ignore[misc, no-any-return]


class _Code128(_KeepLeading99, Code128):
    pass


class _Gs1_128(_KeepLeading99, Gs1_128):  # noqa: N801 - mirrors python-barcode's class name
    pass


def symbol(symbology: str, data: str) -> Symbol:
    """Validate ``data`` for ``symbology`` and return its module pattern.

    EAN-13, UPC-A and EAN-8 take the full code including its check digit (13/12/8 digits); a
    wrong check digit is an error, never recomputed. GS1-128 takes the element string in
    "(AI)value" form. Code 128 takes ASCII.
    """
    if symbology == "code128":
        _check_code128(data)
        # Control characters have no glyph: a space stands in for each in the printed line.
        text = data if data.isprintable() else "".join(c if c.isprintable() else " " for c in data)
        return Symbol(symbology, data, _Code128(data).build()[0], _QUIET[symbology], text)
    if symbology == "gs1-128":
        raw = _gs1_raw(data)
        return Symbol(symbology, data, _Gs1_128(raw).build()[0], _QUIET[symbology], data)
    if symbology in _GTIN_LENGTH:
        _check_gtin(symbology, data)
        try:
            code = {"ean13": EAN13, "upca": UPCA, "ean8": EAN8}[symbology](data)
        except BarcodeError as exc:  # pragma: no cover - _check_gtin already refused such data
            raise SymbolError(f"{_GTIN_NAME[symbology]} {data!r}: {exc}") from exc
        # The library recomputes the check digit; after our check it must agree with the input.
        assert code.get_fullcode() == data, (code.get_fullcode(), data)
        return Symbol(symbology, data, code.build()[0], _QUIET[symbology], data)
    raise SymbolError(f"unknown symbology {symbology!r}: use one of {', '.join(SYMBOLOGIES)}")


def code128_values(data: str) -> tuple[int, ...]:
    """The Code 128 symbol values of ``data``, start character first, check character and stop
    excluded: exactly the codewords :func:`symbol` draws, for printers that take code sets
    explicitly (ZPL's ``^BC`` invocation codes) so their barcode matches ours module for module."""
    _check_code128(data)
    return tuple(_Code128(data).encoded)


def module_width_pt(dpi: int, dots: int) -> float:
    """The width of a module of ``dots`` printer dots, in PDF points (1/72 in)."""
    if dpi <= 0 or dots <= 0:
        raise ValueError(f"dpi and dots must be positive, not {dpi} and {dots}")
    return dots * 72 / dpi


def symbol_width_pt(sym: Symbol, module_pt: float) -> float:
    """The width of the symbol including both quiet zones."""
    return (len(sym.modules) + 2 * sym.quiet_modules) * module_pt


class _Canvas(Protocol):
    """The part of ``reportlab.pdfgen.canvas.Canvas`` that :func:`draw_symbol` uses."""

    def saveState(self) -> None: ...  # noqa: N802 - reportlab's names
    def restoreState(self) -> None: ...  # noqa: N802
    def setFillColorRGB(self, r: float, g: float, b: float) -> None: ...  # noqa: N802
    def setFont(self, psfontname: str, size: float) -> None: ...  # noqa: N802
    def rect(self, x: float, y: float, width: float, height: float, stroke: int = 1, fill: int = 0) -> None: ...
    def drawCentredString(self, x: float, y: float, text: str) -> None: ...  # noqa: N802
    def stringWidth(self, text: str, fontName: str, fontSize: float) -> float: ...  # noqa: N802,N803


def draw_symbol(canvas: _Canvas, sym: Symbol, x: float, y: float, *, module_pt: float, bar_height_pt: float,
                text: bool = True, font: str = "Helvetica", font_size: float = 8) -> tuple[float, float]:
    """Draw ``sym`` on a reportlab canvas; return (width incl. quiet zones, height incl. text).

    The symbol occupies the box from (x, y) to (x + width, y + height): (x, y) is the lower-left
    corner of the left quiet zone and of the text band. With ``text``, the human-readable line
    sits in a band ``1.25 * font_size`` tall at the bottom (centred, shrunk to the symbol's width
    if it would be wider) and the bars stand on top of it; without, the bars start at y.
    Each run of bar modules is one black filled rectangle, no stroke: a stroke would widen the
    bars by the line width and break the module grid.
    """
    band = _TEXT_BAND * font_size if text else 0.0
    width = symbol_width_pt(sym, module_pt)
    canvas.saveState()
    canvas.setFillColorRGB(0, 0, 0)
    modules, n, i = sym.modules, len(sym.modules), 0
    inset = module_pt * _EDGE_INSET
    bar_y = y + band
    while i < n:
        if modules[i] == "1":
            start = i
            while i < n and modules[i] == "1":
                i += 1
            # Positions are whole modules times module_pt, so edges stay on the dot grid; the tiny
            # inset keeps them just inside it (see _EDGE_INSET).
            canvas.rect(x + (sym.quiet_modules + start) * module_pt + inset, bar_y,
                        (i - start) * module_pt - 2 * inset, bar_height_pt, stroke=0, fill=1)
        else:
            i += 1
    if text and sym.text:
        size = font_size
        natural = canvas.stringWidth(sym.text, font, font_size)
        if natural > width:
            size = font_size * width / natural
        canvas.setFont(font, size)
        canvas.drawCentredString(x + width / 2, y + _TEXT_BASELINE * font_size, sym.text)
    canvas.restoreState()
    return width, band + bar_height_pt


# --- validation ---------------------------------------------------------------------------------


def _check_code128(data: str) -> None:
    if not data:
        raise SymbolError("Code 128 data is empty")
    bad = sorted({ch for ch in data if ord(ch) > 0x7F})
    if bad:
        raise SymbolError(f"Code 128 encodes ASCII only; {data!r} contains {', '.join(map(repr, bad))}")


def _check_gtin(symbology: str, data: str) -> None:
    name, length = _GTIN_NAME[symbology], _GTIN_LENGTH[symbology]
    if not (data.isascii() and data.isdigit()) or len(data) != length:
        raise SymbolError(f"{name} needs exactly {length} digits including the check digit, not {data!r}")
    expected = gs1_standard_check_digit(data[:-1])
    if int(data[-1]) != expected:
        raise SymbolError(f"{name} {data}: wrong check digit {data[-1]}, expected {expected}; "
                          "rescan or retype the code")


def _gs1_raw(hri: str) -> str:
    """"(01)…(10)…" -> the string python-barcode's Gs1_128 needs: AIs and values, FNC1 after
    each variable-length element but the last (the leading FNC1 is added by Gs1_128)."""
    try:
        message = GS1Message.parse_hri(hri)
    except ParseError as exc:
        raise SymbolError(f"GS1-128 data {hri!r} is not a valid element string: {exc}") from exc
    parts: list[str] = []
    elements = message.element_strings
    for index, element in enumerate(elements):
        # biip keeps check-digit problems on the element instead of raising.
        for problem in (element.gtin_error, element.sscc_error, element.gln_error):
            if problem:
                raise SymbolError(f"GS1-128 ({element.ai.ai}): {problem}")
        parts.append(element.ai.ai + element.value)
        if element.ai.separator_required and index < len(elements) - 1:
            parts.append(Gs1_128.FNC1_CHAR)
    raw = "".join(parts)
    if len(raw) > _GS1_MAX_DATA:
        raise SymbolError(f"GS1-128 data {hri!r} is {len(raw)} characters with separators; "
                          f"one symbol holds at most {_GS1_MAX_DATA}")
    return raw
