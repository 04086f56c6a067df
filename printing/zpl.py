"""ZPL II for Zebra-compatible label printers: the 4×6 in disposition label and the 2×1 in LPN sticker.

Pure functions from a document to a ZPL string; the printer backends send it (UTF-8 encoded)
as is. Every field is placed at whole dots computed per resolution (203 or 300 dpi), so the
same layout prints the same physical size on both.

Field data is never trusted: ZPL takes ``^`` and ``~`` anywhere in the stream as the start of a
command, so a title containing either would end the field and run whatever follows. Such data
goes through ``^FH`` (hex escapes, indicator ``_``): ``^`` -> ``_5E``, ``~`` -> ``_7E``, ``_``
itself -> ``_5F``, and control characters likewise, so what prints is exactly the data.
Everything else passes through raw as UTF-8 under ``^CI28``.

Text that fits is printed whole; text that doesn't is cut and ends in "..." (the title gets two
lines first). Widths are estimated, not measured (the printer's fonts are not here): a Latin
character at most 3/4 of the font's cell width ``w``, an East Asian wide character a full
``w``. The estimate errs wide, so a field may stop short of the edge but never runs past it.

The LPN is a Code 128 symbol with the same code sets and so the same modules as
:func:`printing.symbols.symbol` draws for the PDFs: we write python-barcode's codewords with
ZPL's ``^BC`` invocation codes (ZPL II Programming Guide, ``^BC``, table "Code 128 Invocation
Characters": ``>:`` start B, ``>;`` start C, ``>5`` B->C, ``>6`` C->B, and in code set B
``><`` for ``^``, ``>0`` for ``>``, ``>=`` for ``~``). Knowing the exact module count lets us
pick the widest whole-dot module that still fits the label with both quiet zones.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from printing.content import DispositionLabel, LpnSticker
from printing.symbols import SymbolError, code128_values, symbol

ZPL_DPIS = (203, 300)

# Text beyond Latin-1 (Japanese, Chinese, Cyrillic, ...) is not in the resident font 0 (CG
# Triumvirate); it needs a Unicode TrueType font on the printer. Zebra's Andale Mono WT J is
# installed as E:ANMDJ.TTF on printers set up for the Asian markets and covers Latin as well.
UNICODE_FONT = "E:ANMDJ.TTF"

_DESIGN_DPI = 203  # layouts below are drawn in 203-dpi dots and scaled
_NEEDS_HEX = re.compile(r"[\x00-\x1f\x5e\x5f\x7e\x7f]")
_HEX_ESCAPES = {c: f"_{c:02X}" for c in (*range(0x20), 0x5E, 0x5F, 0x7E, 0x7F)}
_ELLIPSIS = "..."
_QUIET = 10  # Code 128 quiet zone, modules
# Code 128 code set B values that ZPL reads as something else in ^FD: ^ and ~ (command
# prefixes) and > (the invocation code prefix itself).
_BC_SET_B_ESCAPES = {62: "><", 30: ">0", 94: ">="}


@dataclass(frozen=True)
class _Font:
    h: int
    w: int


@dataclass(frozen=True)
class _Text:
    """Where one text field goes: origin, font, and how far right it may reach."""

    x: int
    y: int
    font: _Font
    max_w: int


@dataclass(frozen=True)
class _Barcode:
    """A Code 128 band: the box it is centred in, its bar height, the module widths allowed."""

    left: int
    right: int
    y: int
    bar_h: int
    min_module: int  # 0.25 mm: thinner bars print unreliably on thermal printers
    max_module: int
    font: _Font  # the interpretation line under the bars


# --- public -------------------------------------------------------------------------------------


def disposition_label_zpl(doc: DispositionLabel, dpi: int = 203) -> str:
    """The 4×6 in label for the tote or bag: the disposition in large reversed letters, the LPN
    barcode, then RMA, SKU, title, grade, bin hint, date and station."""
    lay = _disposition_layout(dpi)
    disposition = doc.disposition.upper()
    title = _wrap2(doc.title, lay.title.font.w, lay.title.max_w)
    parts = [
        lay.head,
        _text(_fill_width(lay.disposition, disposition), disposition, reverse=True),
        _code128(lay.barcode, doc.lpn),
        _text(lay.rma, doc.rma),
        _text(lay.sku, doc.sku),
        _text(lay.title, title[0]),
        _text(lay.title2, title[1]) if len(title) > 1 else "",
        _text(lay.grade, doc.grade),
        _text(lay.bin_hint, doc.bin_hint),
        _text(lay.date, doc.date),
        _text(lay.station, doc.station),
        "^XZ",
    ]
    return "".join(parts)


def lpn_sticker_zpl(doc: LpnSticker, dpi: int = 203) -> str:
    """The 2×1 in sticker for the unit itself: LPN barcode, SKU, RMA and grade."""
    lay = _sticker_layout(dpi)
    return "".join((
        lay.head,
        _code128(lay.barcode, doc.lpn),
        _text(lay.sku, doc.sku),
        _text(lay.rma, doc.rma),
        _text(lay.grade, doc.grade),
        "^XZ",
    ))


# --- fields -------------------------------------------------------------------------------------


def _field_data(data: str) -> str:
    """``^FD…^FS`` for ``data``, through ``^FH`` hex escapes when it holds anything ZPL would read."""
    if _NEEDS_HEX.search(data):
        return "^FH^FD" + data.translate(_HEX_ESCAPES) + "^FS"
    return "^FD" + data + "^FS"


def _font_command(font: _Font, text: str) -> str:
    if text.isascii() or max(map(ord, text)) <= 0xFF:
        return f"^A0N,{font.h},{font.w}"
    return f"^A@N,{font.h},{font.w},{UNICODE_FONT}"


def _text(spec: _Text, text: str, *, reverse: bool = False) -> str:
    text = _fit(text, spec.font.w, spec.max_w)
    # ^FR prints the field in the colour opposite to what is under it (white on the black box).
    return f"^FO{spec.x},{spec.y}{_font_command(spec.font, text)}{'^FR' if reverse else ''}{_field_data(text)}"


def _fill_width(spec: _Text, text: str) -> _Text:
    """``spec`` with the widest font (up to its own) that fits ``text`` on one line: narrower
    letters for a long word, and not taller than 1.6 times their width so they stay legible.
    Down to a third of the width; text longer than that is cut like any other."""
    units = 3 * len(text) if text.isascii() else sum(map(_units, text))
    w = max(spec.font.w // 3, min(spec.font.w, 4 * spec.max_w // max(units, 1)))
    h = min(spec.font.h, round(w * 1.6))
    return _Text(spec.x, spec.y + (spec.font.h - h) // 2, _Font(h, w), spec.max_w) if w < spec.font.w else spec


def _code128(spec: _Barcode, data: str) -> str:
    bad = sorted({ch for ch in data if not " " <= ch <= "~"})
    if bad:
        # Control characters would need code set A, which ZPL programs as digit pairs: an LPN never
        # has them, so refusing is simpler than supporting them.
        raise SymbolError(f"a ZPL LPN barcode takes printable ASCII only; {data!r} contains "
                          f"{', '.join(map(repr, bad))}")
    total = len(symbol("code128", data).modules) + 2 * _QUIET
    module = min(spec.max_module, (spec.right - spec.left) // total)
    if module < spec.min_module:
        raise SymbolError(f"LPN {data!r} is too long for a Code 128 barcode on this label: {total} modules "
                          f"of at least {spec.min_module} dots do not fit in {spec.right - spec.left} dots")
    # ^FO is the first bar; the quiet zones are the blank label around it.
    x = spec.left + (spec.right - spec.left - total * module) // 2 + _QUIET * module
    return (f"^BY{module}^FO{x},{spec.y}^A0N,{spec.font.h},{spec.font.w}"
            f"^BCN,{spec.bar_h},Y,N,N^FD{_bc_field_data(code128_values(data))}^FS")


def _bc_field_data(values: tuple[int, ...]) -> str:
    """python-barcode's Code 128 values (start first, no check character) as ``^BC`` field data."""
    code_set = {104: "B", 105: "C"}[values[0]]
    out = [">:" if code_set == "B" else ">;"]
    for value in values[1:]:
        if value == 102:
            out.append(">8")  # FNC1 (not in printable ASCII data, kept for completeness)
        elif code_set == "C":
            if value == 100:
                out.append(">6")
                code_set = "B"
            else:
                out.append(f"{value:02d}")
        elif value == 99:
            out.append(">5")
            code_set = "C"
        else:
            out.append(_BC_SET_B_ESCAPES.get(value) or chr(value + 32))
    return "".join(out)


# --- text widths --------------------------------------------------------------------------------


def _units(ch: str) -> int:
    """Estimated advance in quarters of the font width: 3 for Latin, 4 for East Asian wide."""
    return 4 if unicodedata.east_asian_width(ch) in ("W", "F") else 3


def _width(text: str, font_w: int) -> float:
    units = 3 * len(text) if text.isascii() else sum(map(_units, text))
    return units * font_w / 4


def _fitting_chars(text: str, font_w: int, max_w: int) -> int:
    """How many leading characters of ``text`` fit in ``max_w`` dots."""
    budget = max(0, 4 * max_w // font_w)  # quarter-width units available
    if text.isascii():
        return min(len(text), budget // 3)
    used = 0
    for index, ch in enumerate(text):
        used += _units(ch)
        if used > budget:
            return index
    return len(text)


def _fit(text: str, font_w: int, max_w: int) -> str:
    if _width(text, font_w) <= max_w:
        return text
    room = max_w - _width(_ELLIPSIS, font_w)
    if room < 0:  # not even "..." fits (a field a few characters wide): cut without it
        return text[:_fitting_chars(text, font_w, max_w)]
    return text[:_fitting_chars(text, font_w, int(room))] + _ELLIPSIS


def _wrap2(text: str, font_w: int, max_w: int) -> list[str]:
    """At most two lines: break at the last space that keeps line one at least half full,
    else mid-word; whatever is left after line two is cut with "..."."""
    if _width(text, font_w) <= max_w:
        return [text]
    keep = _fitting_chars(text, font_w, max_w)
    space = text.rfind(" ", 0, keep + 1)  # a space right after the last fitting char is fine too
    if space >= max(1, keep // 2):
        first, rest = text[:space], text[space + 1:]
    else:
        first, rest = text[:keep], text[keep:]
    return [first, _fit(rest, font_w, max_w)] if rest else [first]


# --- layouts (per dpi, computed once) -------------------------------------------------------------


@dataclass(frozen=True)
class _DispositionLayout:
    head: str
    disposition: _Text
    barcode: _Barcode
    rma: _Text
    sku: _Text
    title: _Text
    title2: _Text
    grade: _Text
    bin_hint: _Text
    date: _Text
    station: _Text


@dataclass(frozen=True)
class _StickerLayout:
    head: str
    barcode: _Barcode
    sku: _Text
    rma: _Text
    grade: _Text


def _scale(dpi: int) -> Callable[[float], int]:
    if dpi not in ZPL_DPIS:
        raise ValueError(f"ZPL labels are laid out for {ZPL_DPIS[0]} or {ZPL_DPIS[1]} dpi, not {dpi}")
    return lambda v: round(v * dpi / _DESIGN_DPI)


def _head(width: int, length: int) -> str:
    # ^CI28: field data is UTF-8. ^LH0,0: origins are from the label's top-left corner.
    return f"^XA^CI28^PW{width}^LL{length}^LH0,0"


def _caption(x: int, y: int, font: _Font, text: str) -> str:
    return f"^FO{x},{y}^A0N,{font.h},{font.w}^FD{text}^FS"


@lru_cache(maxsize=None)
def _disposition_layout(dpi: int) -> _DispositionLayout:
    d = _scale(dpi)
    width, length = 4 * dpi, 6 * dpi
    margin = d(30)
    right = width - margin
    caption = _Font(d(26), d(26))
    value_x = d(200)

    def row(y: int, h: int, label: str, w: int | None = None) -> tuple[_Text, str]:
        font = _Font(d(h), d(w or h))
        # The caption sits on the value's baseline: same bottom edge.
        cap = _caption(margin, d(y) + font.h - caption.h, caption, label)
        return _Text(value_x, d(y), font, right - value_x), cap

    rma, cap_rma = row(520, 44, "RMA")
    sku, cap_sku = row(580, 44, "SKU")
    title, cap_title = row(640, 40, "ITEM", w=30)  # a little condensed: more of the title fits
    title2 = _Text(value_x, d(690), title.font, title.max_w)
    grade, cap_grade = row(760, 100, "GRADE")
    bin_hint, cap_bin = row(880, 80, "BIN")
    date, cap_date = row(1020, 40, "DATE")
    station, cap_station = row(1080, 40, "STATION")
    box_h = d(180)
    head = "".join((
        _head(width, length),
        # The black box the disposition is reversed out of, and the rules between the bands.
        f"^FO{margin},{margin}^GB{right - margin},{box_h},{box_h}^FS",
        f"^FO{margin},{d(490)}^GB{right - margin},{d(4)},{d(4)}^FS",
        f"^FO{margin},{d(990)}^GB{right - margin},{d(4)},{d(4)}^FS",
        cap_rma, cap_sku, cap_title, cap_grade, cap_bin, cap_date, cap_station,
    ))
    big = d(150)
    return _DispositionLayout(
        head=head,
        disposition=_Text(d(50), margin + (box_h - big) // 2, _Font(big, big), right - d(20) - d(50)),
        barcode=_Barcode(margin, right, d(250), d(170), min_module=d(2), max_module=d(4), font=_Font(d(34), d(34))),
        rma=rma, sku=sku, title=title, title2=title2, grade=grade, bin_hint=bin_hint, date=date,
        station=station,
    )


@lru_cache(maxsize=None)
def _sticker_layout(dpi: int) -> _StickerLayout:
    d = _scale(dpi)
    width, length = 2 * dpi, 1 * dpi
    margin = d(10)
    caption = _Font(d(18), d(18))
    value = _Font(d(28), d(28))
    value_x, grade_x = d(58), d(300)
    head = "".join((
        _head(width, length),
        _caption(margin, d(132) + value.h - caption.h, caption, "SKU"),
        _caption(margin, d(166) + value.h - caption.h, caption, "RMA"),
        _caption(grade_x, d(130), caption, "GRADE"),
    ))
    return _StickerLayout(
        head=head,
        barcode=_Barcode(margin, width - margin, d(10), d(88), min_module=d(2), max_module=d(3),
                         font=_Font(d(24), d(24))),
        sku=_Text(value_x, d(132), value, grade_x - d(8) - value_x),
        rma=_Text(value_x, d(166), value, grade_x - d(8) - value_x),
        grade=_Text(grade_x, d(150), _Font(d(46), d(46)), width - margin - grade_x),
    )
