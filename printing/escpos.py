"""The refund receipt as ESC/POS bytes for an 80 mm thermal printer (48 columns of Font A).

A focused encoder rather than python-escpos: a receipt needs about a dozen commands (init,
code table, alignment, bold, character size, Kanji mode, CODE128, feed, cut), and that package
brings image, QR and USB dependencies and its own printer connections, where this project
already has its printer backends (:mod:`printing.printers`). Every command used is listed below
with the byte it is.

Text. Latin text goes out in code page 437 (``ESC t 0``, the code table every ESC/POS printer
has). Before encoding, typographic characters CP437 lacks get an ASCII stand-in (``•`` → ``*``,
so a card is shown as ``Visa **** 4242``; ``–`` → ``-``; ``€`` → ``EUR``), characters with a
compatibility form in CP437 are folded to it (full-width ``Ａ`` → ``A``), control characters
cannot pass (a name holding ESC would otherwise be a printer command), and anything else
prints as ``?`` — one ``?`` per character, so a name of three unknown characters is visibly
three characters long.

Japanese and Chinese names. With ``kanji=True`` (a Japanese-model printer with Kanji fonts) the
printer is told to read Shift-JIS (``FS C 1``), and each run of characters that CP437 lacks and
Shift-JIS has is sent in Kanji mode (``FS &`` … ``FS .``), two columns a character: kana,
kanji, and the many Chinese hanzi that share a kanji code point. Without it, or for characters
Shift-JIS lacks (most simplified hanzi, Hangul), each character prints as ``?``: a printer
without Kanji fonts would print two garbage characters per byte otherwise. GB18030 on
Chinese-model printers is not supported; the receipt stays correct (amounts, codes) either way.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from itertools import groupby
from typing import NamedTuple

from printing.content import RefundReceipt

__all__ = ["receipt_escpos"]

ESC, GS, FS, LF = b"\x1b", b"\x1d", b"\x1c", b"\n"

INIT = ESC + b"@"  # ESC @: reset to power-on settings
CODE_PAGE_437 = ESC + b"t\x00"  # ESC t 0: PC437 (Japanese models start in Katakana)
SHIFT_JIS = FS + b"C\x01"  # FS C 1: Kanji code system Shift-JIS
KANJI_ON = FS + b"&"  # FS &: Kanji character mode
KANJI_OFF = FS + b"."  # FS .: cancel Kanji character mode
PARTIAL_CUT = GS + b"V\x42\x00"  # GS V 66 0: feed to the cutter, then cut leaving a hinge
_FONT_A_DOTS = 12  # Font A is 12 dots wide: 48 columns on 576 dots (72 mm printable of 80 mm)
_BARCODE_HEIGHT = 80  # dots, about 10 mm
_QUIET_MODULES = 10  # Code 128 wants 10 modules of white either side

# Stand-ins for characters CP437 lacks but receipts carry. "•" is what
# RefundReceipt.method_text masks a card with.
_STAND_INS = {
    "\u2022": "*", "\u25cf": "*", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...",
    "\u20ac": "EUR", "\u00a0": " ", "\u3000": "  ",
}


def _align(n: int) -> bytes:
    return ESC + b"a" + bytes([n])  # ESC a n: 0 left, 1 centre, 2 right


def _bold(on: bool) -> bytes:
    return ESC + b"E" + bytes([1 if on else 0])  # ESC E n


def _size(width: int, height: int) -> bytes:
    return GS + b"!" + bytes([(width - 1) << 4 | (height - 1)])  # GS ! n: magnification


def _feed(lines: int) -> bytes:
    return ESC + b"d" + bytes([lines])  # ESC d n: print and feed n lines


class _Glyph(NamedTuple):
    kanji: bool  # sent in Kanji mode
    data: bytes
    cols: int  # columns at normal size


def _in_cp437(c: str) -> bool:
    if unicodedata.category(c).startswith("C"):
        return False  # ESC, GS, FS … are in CP437 as bytes, but must never pass as text
    try:
        c.encode("cp437")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """The text as the printer should get it: composed (NFC: "e" + U+0301 is "é", which CP437
    has), stand-ins for typographic characters, and NFKC on each run of characters CP437 lacks
    (full-width "Ａ" to "A", half-width "ｶﾞ" to "ガ", "㈱" to "(株)"). NFKC only on those runs:
    on the whole text it would turn "½", which CP437 has, into "1⁄2", which it has not."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if c in "\t\r\n" else _STAND_INS.get(c, c) for c in text)
    runs = (
        "".join(chars) if ok else unicodedata.normalize("NFKC", "".join(chars))
        for ok, chars in groupby(text, key=_in_cp437)
    )
    # Trimmed: a value ending in a newline would otherwise push its right-aligned column in.
    return "".join(_STAND_INS.get(c, c) for c in "".join(runs)).strip(" ")


def _glyphs(text: str, kanji: bool) -> list[_Glyph]:
    out: list[_Glyph] = []
    for c in _printable(text):
        if _in_cp437(c):
            out.append(_Glyph(False, c.encode("cp437"), 1))
            continue
        if unicodedata.category(c) in ("Cf", "Mn"):
            continue  # zero-width joiners, stray combining marks: nothing to print
        data = b""
        if kanji and not unicodedata.category(c).startswith("C"):
            try:
                data = c.encode("shift_jis")
            except UnicodeEncodeError:
                pass
        # Two bytes is a Kanji-mode character; one byte would be a half-width code the PC437
        # table prints as something else.
        out.append(_Glyph(True, data, 2) if len(data) == 2 else _Glyph(False, b"?", 1))
    return out


def _cols(glyphs: list[_Glyph]) -> int:
    return sum(g.cols for g in glyphs)


def _wrap(glyphs: list[_Glyph], width: int) -> list[list[_Glyph]]:
    """Break at spaces where possible, inside a word where it is longer than the line."""
    lines: list[list[_Glyph]] = []
    line: list[_Glyph] = []
    words: list[list[_Glyph]] = [[]]
    for g in glyphs:
        if g.data == b" " and not g.kanji:
            words.append([])
        else:
            words[-1].append(g)
    for word in words:
        sep = 1 if line else 0
        if _cols(line) + sep + _cols(word) <= width:
            line = line + [_SPACE] * sep + word
            continue
        if line:
            lines.append(line)
            line = []
        for g in word:
            if _cols(line) + g.cols > width:
                lines.append(line)
                line = []
            line.append(g)
    if line or not lines:
        lines.append(line)
    return lines


_SPACE = _Glyph(False, b" ", 1)


@dataclass
class _Line:
    glyphs: list[_Glyph]
    align: int = 0
    bold: bool = False
    width: int = 1  # character magnification
    height: int = 1


class _Receipt:
    def __init__(self, width_chars: int, kanji: bool) -> None:
        self.width = width_chars
        self.kanji = kanji
        self.out = bytearray(INIT + CODE_PAGE_437 + (SHIFT_JIS if kanji else b""))
        self.style: tuple[int, bool, int, int] = (0, False, 1, 1)  # what ESC @ leaves set

    def text(self, text: str, *, align: int = 0, bold: bool = False, width: int = 1, height: int = 1,
             indent: int = 0) -> None:
        for glyphs in _wrap(_glyphs(text, self.kanji), self.width // width - indent):
            self._emit(_Line([_SPACE] * indent + glyphs, align, bold, width, height))

    def pair(self, left: str, right: str, *, bold: bool = False, height: int = 1) -> None:
        """``left`` wrapped on the left, ``right`` right-aligned on its first line."""
        lg, rg = _glyphs(left, self.kanji), _glyphs(right, self.kanji)
        room = self.width - _cols(rg) - 1
        if room < self.width // 2:  # an amount too long to share a line: give it its own
            # The amount right-aligned on lines of its own, wrapped if even a whole line is too short.
            for glyphs in _wrap(lg, self.width) + [self._pad(part) for part in _wrap(rg, self.width)]:
                self._emit(_Line(glyphs, bold=bold, height=height))
            return
        lines = _wrap(lg, room)
        first = lines[0]
        self._emit(_Line(first + [_SPACE] * (self.width - _cols(first) - _cols(rg)) + rg, bold=bold, height=height))
        for glyphs in lines[1:]:
            self._emit(_Line(glyphs, bold=bold, height=height))

    def rule(self, char: str = "-") -> None:
        self._emit(_Line(_glyphs(char * self.width, False)))

    def blank(self) -> None:
        self._emit(_Line([]))

    def barcode128(self, code: str) -> None:
        """``GS k`` function B, m = 73 (CODE128), data starting with ``{B`` (code set B).

        Skipped when it cannot fit the paper even at the thinnest module a printer takes
        (2 dots): the code is printed as text just above it either way.
        """
        if not code or any(not 0x20 <= ord(c) <= 0x7E for c in code):
            raise ValueError(f"store credit code {code!r} must be printable ASCII to be a Code 128 barcode")
        data = b"{B" + code.encode("ascii").replace(b"{", b"{{")  # "{" itself is sent as "{{"
        modules = 11 * (len(code) + 2) + 13 + 2 * _QUIET_MODULES  # start, data, check, stop
        dots = self.width * _FONT_A_DOTS
        fitting = [m for m in (3, 2) if m * modules <= dots]
        if not fitting or len(data) > 255:
            return
        self.out += _align(1)
        self.out += GS + b"h" + bytes([_BARCODE_HEIGHT])  # GS h n: bar height in dots
        self.out += GS + b"w" + bytes([fitting[0]])  # GS w n: module width in dots
        self.out += GS + b"H\x02"  # GS H 2: human-readable digits below the bars
        self.out += GS + b"f\x00"  # GS f 0: in Font A
        self.out += GS + b"k" + bytes([73, len(data)]) + data
        self.out += _align(self.style[0])

    def finish(self) -> bytes:
        self.out += _feed(3) + PARTIAL_CUT
        return bytes(self.out)

    def _pad(self, glyphs: list[_Glyph]) -> list[_Glyph]:
        return [_SPACE] * max(0, self.width - _cols(glyphs)) + glyphs

    def _emit(self, line: _Line) -> None:
        out = self.out
        style = (line.align, line.bold, line.width, line.height)
        if style != self.style:  # only what changed: a long receipt at 9600 baud adds up
            if line.align != self.style[0]:
                out += _align(line.align)
            if line.bold != self.style[1]:
                out += _bold(line.bold)
            if (line.width, line.height) != self.style[2:]:
                out += _size(line.width, line.height)
            self.style = style
        in_kanji = False
        for g in line.glyphs:
            if g.kanji != in_kanji:
                out += KANJI_ON if g.kanji else KANJI_OFF
                in_kanji = g.kanji
            out += g.data
        if in_kanji:
            out += KANJI_OFF
        out += LF


def receipt_escpos(doc: RefundReceipt, *, width_chars: int = 48, kanji: bool = False) -> bytes:
    """The customer's refund receipt: header, lines, itemized deductions, total, refund method
    (a card as brand and last four only), the store-credit code as text and a Code 128 barcode,
    then a partial cut. ``kanji``: the printer has Kanji fonts (see the module docstring)."""
    if not 24 <= width_chars <= 96:
        raise ValueError(f"width_chars must be from 24 to 96 (48 for 80 mm paper), not {width_chars!r}")
    r = _Receipt(width_chars, kanji)
    header_cols = _cols(_glyphs(doc.store, kanji))
    r.text(doc.store, align=1, bold=True, height=2, width=2 if 2 * header_cols <= width_chars else 1)
    r.text("REFUND RECEIPT", align=1, bold=True)
    r.text(doc.when, align=1)
    r.blank()
    r.pair("RMA", doc.rma)
    r.pair("Order", doc.order)
    r.pair("Customer", doc.customer_name)
    r.pair("Station", doc.station)
    r.pair("Clerk", doc.clerk)
    r.rule()
    r.text("Returned items", bold=True)
    for line in doc.lines:
        r.pair(line.title, line.amount)
        r.text(f"SKU {line.sku}", indent=2)
    if doc.deductions:
        r.rule()
        r.text("Deductions", bold=True)
        for deduction in doc.deductions:
            r.pair(deduction.label, deduction.amount)
    r.rule("=")
    r.pair("REFUND TOTAL", doc.total, bold=True, height=2)
    r.rule("=")
    r.text(f"Refund to {doc.method_text}")
    if doc.store_credit_code:
        r.blank()
        r.text("Store credit code", align=1, bold=True)
        r.text(doc.store_credit_code, align=1)
        r.barcode128(doc.store_credit_code)
    r.blank()
    r.text("Keep this receipt for your records.", align=1)
    return r.finish()
