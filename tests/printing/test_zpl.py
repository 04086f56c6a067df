"""ZPL for the disposition label and the LPN sticker, read back with tests/tools/zpl_reader.py the way a
printer would split it: sizes, the LPN barcode's data and modules, every text, escaping, edges."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from printing.content import DispositionLabel, LpnSticker
from printing.symbols import SymbolError, symbol
from printing.zpl import UNICODE_FONT, ZPL_DPIS, disposition_label_zpl, lpn_sticker_zpl
from tests.tools.zpl_reader import QUIET_MODULES, Label, parse, split_commands

SIZES = {  # dots: (4×6 in, 2×1 in)
    203: ((812, 1218), (406, 203)),
    300: ((1200, 1800), (600, 300)),
}
JP_TITLE = "ワイヤレスイヤホン"

LABEL = DispositionLabel(
    lpn="LPN000012345X", disposition="refurbish", rma="R-0001234K", sku="EAR-BT-530",
    title=JP_TITLE, grade="B", date="2026-11-23", station="WH1-01", bin_hint="RF-03-B",
)
STICKER = LpnSticker(lpn="LPN000012345X", sku="EAR-BT-530", grade="B", rma="R-0001234K")
DPIS = pytest.mark.parametrize("dpi", ZPL_DPIS)


def values_of(label: Label, *, captions: bool = False) -> list[str]:
    caption_words = {"RMA", "SKU", "ITEM", "GRADE", "BIN", "DATE", "STATION"}
    return [t.text for t in label.texts if captions or t.text not in caption_words]


def whole_or_cut(original: str, printed: str) -> bool:
    """``printed`` is ``original``, or a strictly shorter start of it ending in "..." (or without
    it where not even "..." fits)."""
    if printed == original:
        return True
    stem = printed[:-3] if printed.endswith("...") else printed
    return original.startswith(stem) and len(stem) < len(original)


def title_printed_from(title: str, lines: list[str]) -> bool:
    """The title's one or two printed lines are the title: whole, or broken at one space (which
    is dropped) or mid-word, and if too long cut at the end of line two with "..."."""
    if len(lines) == 1:
        return lines[0] in (title, title[:-1] if title.endswith(" ") else title)
    first, second = lines
    for joined in (first + second, first + " " + second):
        if joined == title:
            return True
        if second.endswith("...") and title.startswith(joined[:-3]) and len(joined) - 3 < len(title):
            return True
    return False


def zpl_for(doc: DispositionLabel | LpnSticker, dpi: int) -> str:
    return disposition_label_zpl(doc, dpi) if isinstance(doc, DispositionLabel) else lpn_sticker_zpl(doc, dpi)


# --- frame ------------------------------------------------------------------------------------------


@DPIS
@pytest.mark.parametrize("doc", [LABEL, STICKER], ids=["disposition", "sticker"])
def test_frame_charset_and_label_size(doc: DispositionLabel | LpnSticker, dpi: int) -> None:
    zpl = zpl_for(doc, dpi)
    assert zpl.startswith("^XA") and zpl.endswith("^XZ")
    label = parse(zpl)
    names = [c.name for c in label.commands]
    assert names.count("XA") == names.count("XZ") == 1
    assert label.charset == 28
    assert names.index("CI") < names.index("FD")  # UTF-8 before any field data
    expected = SIZES[dpi][0] if isinstance(doc, DispositionLabel) else SIZES[dpi][1]
    assert (label.width, label.length) == expected
    assert label.off_label() == []


@DPIS
@pytest.mark.parametrize("doc", [LABEL, STICKER], ids=["disposition", "sticker"])
def test_fields_do_not_overlap(doc: DispositionLabel | LpnSticker, dpi: int) -> None:
    label = parse(zpl_for(doc, dpi))
    areas = [(t.text, t.x, t.y, t.x + t.approx_width, t.y + t.h) for t in label.texts]
    areas += [(b.data, b.x - QUIET_MODULES * b.module, b.y, b.x + b.width + QUIET_MODULES * b.module,
               b.y + b.height + b.font_h * 5 // 4) for b in label.barcodes]
    for i, (name_a, ax0, ay0, ax1, ay1) in enumerate(areas):
        for name_b, bx0, by0, bx1, by1 in areas[i + 1:]:
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, f"{name_a!r} overlaps {name_b!r}"


def test_unsupported_dpi_is_refused() -> None:
    with pytest.raises(ValueError, match="203 or 300 dpi"):
        disposition_label_zpl(LABEL, 600)
    with pytest.raises(ValueError, match="203 or 300 dpi"):
        lpn_sticker_zpl(STICKER, 150)


# --- the LPN barcode ----------------------------------------------------------------------------------


@DPIS
@pytest.mark.parametrize("doc", [LABEL, STICKER], ids=["disposition", "sticker"])
def test_lpn_barcode_carries_the_lpn_and_fits_with_quiet_zones(doc: DispositionLabel | LpnSticker, dpi: int) -> None:
    label = parse(zpl_for(doc, dpi))
    (bc,) = label.barcodes
    assert bc.kind == "code128" and bc.data == doc.lpn
    assert re.fullmatch(r"N,\d+,Y,N,N", bc.params)
    # The printer draws the same codewords python-barcode chose, so the same modules.
    assert bc.modules == len(symbol("code128", doc.lpn).modules)
    assert label.width is not None
    quiet = QUIET_MODULES * bc.module
    assert bc.x - quiet >= 0 and bc.x + bc.width + quiet <= label.width
    # The widest whole-dot module that fits (within the layout's margins), at least 0.25 mm.
    assert bc.module >= round(0.25 / 25.4 * dpi)
    assert (bc.modules + 2 * QUIET_MODULES) * (bc.module + 1) > label.width - 2 * round(10 * dpi / 203) \
        or bc.module == round((4 if isinstance(doc, DispositionLabel) else 3) * dpi / 203)
    # Centred on the label.
    assert abs((bc.x + bc.width / 2) - label.width / 2) <= bc.module + 1


@DPIS
@pytest.mark.parametrize("lpn", ["A^B~C>D_E", "LPN>>00^^", "99", "x", "12345678901234567"])
def test_barcode_data_with_zpl_special_characters_round_trips(lpn: str, dpi: int) -> None:
    zpl = lpn_sticker_zpl(LpnSticker(lpn=lpn, sku="S", grade="A", rma="R"), dpi)
    (bc,) = parse(zpl).barcodes
    assert bc.data == lpn
    assert bc.modules == len(symbol("code128", lpn).modules)
    fd = re.search(r"\^BC[^\^]*\^FD(.*?)\^FS", zpl)
    assert fd is not None and "^" not in fd.group(1) and "~" not in fd.group(1)


def test_lpn_that_cannot_be_printed_is_refused() -> None:
    with pytest.raises(SymbolError, match="printable ASCII"):
        lpn_sticker_zpl(LpnSticker(lpn="LPN\t1", sku="S", grade="A", rma="R"))
    with pytest.raises(SymbolError, match="printable ASCII"):
        lpn_sticker_zpl(LpnSticker(lpn="LPNé1", sku="S", grade="A", rma="R"))
    with pytest.raises(SymbolError, match="too long"):
        lpn_sticker_zpl(LpnSticker(lpn="ABCDEFGHIJKLMNOPQRSTUVWXYZ", sku="S", grade="A", rma="R"))


# --- text -------------------------------------------------------------------------------------------


@DPIS
def test_disposition_label_shows_every_field(dpi: int) -> None:
    zpl = disposition_label_zpl(LABEL, dpi)
    label = parse(zpl)
    assert values_of(label) == ["REFURBISH", LABEL.rma, LABEL.sku, JP_TITLE, LABEL.grade, LABEL.bin_hint,
                                LABEL.date, LABEL.station]
    assert {"RMA", "SKU", "ITEM", "GRADE", "BIN", "DATE", "STATION"} <= set(values_of(label, captions=True))
    # The Japanese title travels as UTF-8 in a Unicode font; Latin text stays in font 0.
    assert JP_TITLE.encode("utf-8") in zpl.encode("utf-8")
    by_text = {t.text: t for t in label.texts}
    assert by_text[JP_TITLE].font == UNICODE_FONT
    assert by_text[LABEL.rma].font == "0"
    # The disposition in large letters, white on the black box.
    disposition = by_text["REFURBISH"]
    assert disposition.reverse and disposition.h >= 0.4 * dpi
    assert disposition.h == max(t.h for t in label.texts)
    box = max(label.boxes, key=lambda b: b.h)
    assert box.thickness == box.h  # filled
    assert box.x <= disposition.x and disposition.y + disposition.h <= box.y + box.h
    assert disposition.x + disposition.approx_width <= box.x + box.w


@DPIS
def test_lpn_sticker_shows_every_field(dpi: int) -> None:
    label = parse(lpn_sticker_zpl(STICKER, dpi))
    assert values_of(label) == [STICKER.sku, STICKER.rma, STICKER.grade]


@DPIS
@pytest.mark.parametrize("disposition", ["restock", "refurbish", "outlet", "return-to-vendor", "recycle", "quarantine"])
def test_every_disposition_fits_in_large_letters(disposition: str, dpi: int) -> None:
    label = parse(disposition_label_zpl(DispositionLabel(**{**LABEL.__dict__, "disposition": disposition}), dpi))
    (big,) = [t for t in label.texts if t.reverse]
    assert big.text == disposition.upper()  # never cut
    assert big.h >= 0.4 * dpi
    assert label.off_label() == []


@DPIS
def test_zpl_special_characters_in_text_round_trip_through_fh(dpi: int) -> None:
    doc = DispositionLabel(
        lpn="LPN000012345X", disposition="restock", rma="R-^XZ~JA", sku="SKU_1^2~3",
        title="50%~^FS^XZ trap_", grade="_", date="2026-11-23", station="WH1~01", bin_hint="^A0",
    )
    zpl = disposition_label_zpl(doc, dpi)
    label = parse(zpl)
    assert values_of(label) == ["RESTOCK", doc.rma, doc.sku, doc.title, doc.grade, doc.bin_hint, doc.date,
                                doc.station]
    assert [c.name for c in label.commands].count("XZ") == 1
    escaped = {t.text: t.hex_escaped for t in label.texts}
    assert escaped[doc.sku] and escaped[doc.title] and escaped[doc.grade] and not escaped[doc.date]
    assert "^FH^FDSKU_5F1_5E2_7E3^FS" in zpl
    assert "^FH^FD_5F^FS" in zpl


@DPIS
def test_long_text_is_cut_to_stay_on_the_label(dpi: int) -> None:
    title = ("Wireless earbuds with active noise cancelling, 40 hours of battery, IPX7, charging case "
             "and three sizes of tips ") * 3
    doc = DispositionLabel(lpn="LPN000012345X", disposition="return-to-vendor", rma="R-" + "9" * 60,
                           sku="SKU-" + "X" * 80, title=title, grade="B" * 40, date="2026-11-23",
                           station="ステーション" * 10, bin_hint="BIN-" + "7" * 50)
    label = parse(disposition_label_zpl(doc, dpi))
    assert label.off_label() == []
    texts = values_of(label)
    first, second = texts[3], texts[4]
    assert second.endswith("...")
    assert title.startswith(first + " " + second[:-3])  # broken at a space, then cut
    assert title_printed_from(title, [first, second])
    for original, printed in zip([doc.rma, doc.sku], texts[1:3], strict=True):
        assert printed.endswith("...") and original.startswith(printed[:-3])
    assert texts[-1].endswith("...") and doc.station.startswith(texts[-1][:-3])
    sticker = parse(lpn_sticker_zpl(LpnSticker("LPN000012345X", "S" * 50, "GRADE-B", "R" * 50), dpi))
    assert sticker.off_label() == []
    printed = values_of(sticker)
    assert printed[0].endswith("...") and printed[1].endswith("...")
    assert all(whole_or_cut(o, p) and o != p for o, p in zip(["S" * 50, "R" * 50, "GRADE-B"], printed, strict=True))


# --- any text at all ----------------------------------------------------------------------------------

# Short enough to fit their fields whole at either resolution (a row holds at least 13 wide chars).
short_text = st.text(max_size=12)
any_text = st.text(max_size=200)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(dpi=st.sampled_from(ZPL_DPIS), rma=short_text, sku=short_text, title=any_text, grade=short_text,
       date=short_text, station=short_text, bin_hint=short_text,
       lpn=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=14))
# Breaking at the space right after a full first line leaves nothing for line two.
@example(dpi=203, rma="", sku="", title="A" * 25 + " ", grade="", date="", station="", bin_hint="", lpn="L")
def test_arbitrary_text_never_leaks_into_zpl(dpi: int, rma: str, sku: str, title: str, grade: str, date: str,
                                             station: str, bin_hint: str, lpn: str) -> None:
    doc = DispositionLabel(lpn=lpn, disposition="quarantine", rma=rma, sku=sku, title=title, grade=grade,
                           date=date, station=station, bin_hint=bin_hint)
    zpl = disposition_label_zpl(doc, dpi)
    # No raw ^ or ~ inside any field's data: the first ^FS after ^FD really ends it.
    for data in re.findall(r"\^FD(.*?)\^FS", zpl, flags=re.S):
        assert "^" not in data and "~" not in data
    label = parse(zpl)  # raises on any stray command or broken escape
    assert [c.name for c in label.commands].count("XZ") == 1
    (bc,) = label.barcodes
    assert bc.data == lpn
    texts = values_of(label, captions=True)[7:]  # after the seven captions
    assert texts[0] == "QUARANTINE"
    assert texts[1:3] == [rma, sku]  # these rows hold 12 characters of any width whole
    assert texts[-2:] == [date, station]
    assert whole_or_cut(grade, texts[-4]) and whole_or_cut(bin_hint, texts[-3])  # larger letters
    assert title_printed_from(title, texts[3:-4])
    assert label.off_label() == []


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=4))
def test_arbitrary_sticker_text_round_trips(sku: str, rma: str, grade: str) -> None:
    label = parse(lpn_sticker_zpl(LpnSticker("LPN000012345X", sku, grade, rma), 203))
    printed = values_of(label, captions=True)[3:]
    assert len(printed) == 3
    assert all(whole_or_cut(o, p) for o, p in zip([sku, rma, grade], printed, strict=True))
    assert printed[2] == grade or len(grade) > 2  # two characters, even wide ones, always fit the grade
    assert label.off_label() == []


def test_reader_catches_a_leak() -> None:
    """The reader is what the tests above trust: raw ^ in field data must not get past it."""
    good = lpn_sticker_zpl(STICKER, 203)
    leaked = good.replace(f"^FD{STICKER.sku}^FS", "^FDEAR^XZ^FS")
    with pytest.raises(ValueError):
        parse(leaked)
    assert [c.name for c in split_commands(b"^XA^FDa~JAb^FS^XZ")] == ["XA", "FD", "JA", "FS", "XZ"]
