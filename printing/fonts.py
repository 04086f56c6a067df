"""Which font draws a piece of text, and fitting text into a width.

reportlab's standard Helvetica covers Windows-1252 only. Names and addresses in Japanese,
Chinese or Korean are drawn with reportlab's CID fonts, which need no font file (the PDF
names an Adobe-Japan1/GB1/Korea1 font that every PDF viewer and CUPS filter carries), and
whose Unicode CMaps keep the text layer searchable.
"""
from __future__ import annotations

from functools import cache

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont

LATIN = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
JAPANESE = "HeiseiKakuGo-W5"
CHINESE = "STSong-Light"
KOREAN = "HYGothic-Medium"


@cache
def _register(name: str) -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(name))
    return name


def _latin(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def font_for(text: str, bold: bool = False) -> str:
    """Helvetica when it can draw every character; otherwise a CID font by script.

    Kana means Japanese; Hangul means Korean; other Han text is drawn with the Chinese font.
    A Japanese name written only in kanji then gets Chinese glyph shapes — the same characters,
    readable by both, and the text layer is the same Unicode either way.
    """
    if _latin(text):
        return LATIN_BOLD if bold else LATIN
    for ch in text:
        code = ord(ch)
        if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
            return _register(JAPANESE)
        if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
            return _register(KOREAN)
    return _register(CHINESE)


def width(text: str, font: str, size: float) -> float:
    return pdfmetrics.stringWidth(text, font, size)


def fit(text: str, font: str, size: float, max_width: float, min_size: float = 6.0) -> tuple[str, float]:
    """Shrink ``size`` down to ``min_size`` until ``text`` fits; then cut it with an ellipsis."""
    while size > min_size and width(text, font, size) > max_width:
        size = max(min_size, size - 0.5)
    if width(text, font, size) <= max_width:
        return text, size
    while text and width(text + "…", font, size) > max_width:
        text = text[:-1]
    return text + "…", size


def wrap(text: str, font: str, size: float, max_width: float, max_lines: int) -> list[str]:
    """Greedy wrap on spaces (or between characters for CJK text without spaces)."""
    words = text.split(" ") if " " in text else list(text) if not _latin(text) else [text]
    sep = " " if " " in text else ""
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current}{sep}{word}" if current else word
        if width(candidate, font, size) <= max_width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        rest = sep.join(lines[max_lines - 1:])
        lines = lines[:max_lines - 1] + [fit(rest, font, size, max_width, min_size=size)[0]]
    return [fit(line, font, size, max_width, min_size=size)[0] for line in lines]
