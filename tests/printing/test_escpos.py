"""The refund receipt's ESC/POS bytes, read back by a small ESC/POS reader written here.

The reader knows the commands an 80 mm receipt needs and fails on anything else (so a stray
control byte in the text, or a command the encoder was not meant to send, fails the test). It
recovers the printed lines with their column widths at the active character size, the GS k
barcodes, and whether the paper was cut.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printing.content import ReceiptDeduction, ReceiptLine, RefundReceipt
from printing.escpos import receipt_escpos

# --- the reader ------------------------------------------------------------------------------

ONE_BYTE_ESC = {ord("t"), ord("a"), ord("E"), ord("d"), ord("!")}
ONE_BYTE_GS = {ord("!"), ord("h"), ord("w"), ord("H"), ord("f")}


@dataclass
class PrintedLine:
    text: str = ""
    cols: int = 0  # columns used, at the character width active for each character
    bold: bool = False
    height: int = 1
    align: int = 0


@dataclass
class Printout:
    lines: list[PrintedLine] = field(default_factory=list)
    barcodes: list[tuple[int, bytes]] = field(default_factory=list)  # (m, data as sent)
    commands: list[bytes] = field(default_factory=list)
    cut: bool = False

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]

    @property
    def full_text(self) -> str:
        return "\n".join(self.texts)


def read_escpos(data: bytes) -> Printout:
    out = Printout()
    line = PrintedLine()
    width, height, bold, align, kanji = 1, 1, False, 0, False
    i = 0

    def take(n: int) -> bytes:
        nonlocal i
        assert i + n <= len(data), f"command cut short at byte {i}"
        chunk = data[i:i + n]
        i += n
        return chunk

    while i < len(data):
        assert not out.cut, f"bytes after the cut: {data[i:]!r}"
        b = take(1)[0]
        if b == 0x1B:  # ESC
            cmd = take(1)[0]
            if cmd == ord("@"):
                out.commands.append(b"ESC @")
                width, height, bold, align, kanji = 1, 1, False, 0, False
            elif cmd in ONE_BYTE_ESC:
                n = take(1)[0]
                out.commands.append(b"ESC " + bytes([cmd]))
                if cmd == ord("a"):
                    assert n in (0, 1, 2)
                    align = n
                elif cmd == ord("E"):
                    bold = bool(n & 1)
                elif cmd == ord("t"):
                    assert n == 0, "code table other than PC437"
            else:
                raise AssertionError(f"unexpected ESC {cmd:#04x} at byte {i - 2}")
        elif b == 0x1D:  # GS
            cmd = take(1)[0]
            if cmd in ONE_BYTE_GS:
                n = take(1)[0]
                out.commands.append(b"GS " + bytes([cmd]))
                if cmd == ord("!"):
                    width, height = (n >> 4) + 1, (n & 0x0F) + 1
            elif cmd == ord("k"):
                m = take(1)[0]
                if m >= 65:
                    n = take(1)[0]
                    out.barcodes.append((m, take(n)))
                else:  # function A: NUL-terminated
                    end = data.index(b"\0", i)
                    out.barcodes.append((m, take(end - i)))
                    take(1)
            elif cmd == ord("V"):
                m = take(1)[0]
                if m in (65, 66):
                    take(1)
                assert m in (1, 49, 66), "a full cut, not a partial one"
                out.cut = True
            else:
                raise AssertionError(f"unexpected GS {cmd:#04x} at byte {i - 2}")
        elif b == 0x1C:  # FS
            cmd = take(1)[0]
            if cmd == ord("&"):
                kanji = True
            elif cmd == ord("."):
                kanji = False
            elif cmd == ord("C"):
                assert take(1)[0] == 1, "Kanji code system other than Shift-JIS"
            else:
                raise AssertionError(f"unexpected FS {cmd:#04x}")
            out.commands.append(b"FS " + bytes([cmd]))
        elif b == 0x0A:  # LF: print the line
            line.bold, line.height, line.align = bold, height, align
            out.lines.append(line)
            line = PrintedLine()
        elif b < 0x20 or b == 0x7F:
            raise AssertionError(f"control byte {b:#04x} in the text at byte {i - 1}")
        elif kanji:
            assert 0x81 <= b <= 0x9F or 0xE0 <= b <= 0xFC, f"not a Shift-JIS lead byte: {b:#04x}"
            line.text += (bytes([b]) + take(1)).decode("shift_jis")
            line.cols += 2 * width
        else:
            line.text += bytes([b]).decode("cp437")
            line.cols += width
    assert line.text == "", f"text never printed (no LF): {line.text!r}"
    return out


def barcode128_data(sent: bytes) -> str:
    assert sent.startswith(b"{B"), f"CODE128 data without the code set B prefix: {sent!r}"
    return sent[2:].replace(b"{{", b"{").decode("ascii")


# --- receipts --------------------------------------------------------------------------------


def receipt(**changes: object) -> RefundReceipt:
    base: dict[str, object] = dict(
        store="Northwind Returns",
        station="WH1-01",
        rma="RMA-2026-000123-K",
        order="SO-1000001",
        customer_name="Chloé Müller",
        when="2026-11-23 14:05",
        clerk="Aiko",
        lines=(
            ReceiptLine("Wireless noise-cancelling headphones, matte black, with travel case",
                        "WH-1000-BLK", "USD 199.00"),
            ReceiptLine("USB-C cable 2 m", "CBL-C-2M", "USD 12.50"),
        ),
        deductions=(
            ReceiptDeduction("Restocking fee (grade C, electronics)", "-USD 19.90"),
            ReceiptDeduction("Return shipping label", "-USD 5.00"),
        ),
        total="USD 186.60",
        refund_method="original payment",
        card_brand="Visa",
        card_last4="4242",
    )
    base.update(changes)
    return RefundReceipt(**base)  # type: ignore[arg-type]


def line_with(printout: Printout, start: str) -> PrintedLine:
    found = [line for line in printout.lines if line.text.startswith(start)]
    assert found, f"no line starts with {start!r} in:\n{printout.full_text}"
    return found[0]


def test_receipt_reads_back_completely() -> None:
    doc = receipt()
    data = receipt_escpos(doc)
    printout = read_escpos(data)

    assert data.startswith(b"\x1b@")  # ESC @ first
    header = printout.lines[0]
    assert header.text == "Northwind Returns" and header.bold and header.height == 2 and header.align == 1
    assert "REFUND RECEIPT" in printout.texts
    for label, value in [("RMA", doc.rma), ("Order", doc.order), ("Customer", doc.customer_name),
                         ("Station", doc.station), ("Clerk", doc.clerk)]:
        assert line_with(printout, label).text.endswith(value)

    # Each line's title starts a line that ends with its amount, right-aligned at column 48.
    for item in doc.lines:
        first = line_with(printout, item.title[:20])
        assert first.text.endswith(" " + item.amount) and first.cols == 48
        assert f"  SKU {item.sku}" in printout.texts
    first_at = printout.lines.index(line_with(printout, "Wireless"))
    wrapped = " ".join(" ".join(line.text for line in printout.lines[first_at:first_at + 2]).split())
    assert wrapped.startswith("Wireless noise-cancelling headphones, USD 199.00 matte")  # words kept whole
    wrapped = wrapped.replace(" USD 199.00", "")
    assert "black, with travel case" in wrapped  # the rest of the long title, on the next line
    for deduction in doc.deductions:
        shown = line_with(printout, deduction.label)
        assert shown.text.endswith(" " + deduction.amount) and shown.cols == 48

    total = line_with(printout, "REFUND TOTAL")
    assert total.text.endswith(" USD 186.60") and total.height == 2 and total.bold
    assert "Refund to original payment: Visa **** 4242" in printout.texts
    assert printout.barcodes == []  # no store credit, no barcode
    assert printout.cut and data.endswith(b"\x1dVB\x00")


def test_no_line_is_wider_than_the_paper() -> None:
    for width in (48, 42, 32):
        printout = read_escpos(receipt_escpos(receipt(customer_name="Ａｉｋｏ　山田"), width_chars=width))
        assert max(line.cols for line in printout.lines) <= width


def test_card_shows_brand_and_last_four_only() -> None:
    doc = receipt(rma="RMA-4111111111111111", order="SO-1")  # data that must not look like a PAN
    printout = read_escpos(receipt_escpos(doc))
    assert "Visa **** 4242" in printout.full_text
    # Only this RMA holds a long digit run; nothing the receipt adds may.
    text = printout.full_text.replace(doc.rma, "")
    assert re.search(r"\d{13,19}", text) is None
    assert re.search(r"\d{13,19}", receipt_escpos(receipt()).decode("latin-1")) is None


def test_store_credit_code_is_a_code128_barcode() -> None:
    doc = receipt(refund_method="store credit", card_brand=None, card_last4=None,
                  store_credit_code="SC-7Q4K-{9}-XM2P")
    printout = read_escpos(receipt_escpos(doc))

    assert len(printout.barcodes) == 1
    m, sent = printout.barcodes[0]
    assert m == 73  # GS k function B, CODE128
    assert barcode128_data(sent) == "SC-7Q4K-{9}-XM2P"
    assert "SC-7Q4K-{9}-XM2P" in printout.texts  # also as text, for a printer that skips it
    assert "Refund to store credit" in printout.texts
    assert printout.cut


def test_store_credit_code_outside_code128_is_refused() -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        receipt_escpos(receipt(store_credit_code="SC-ÄÖ"))


def test_latin_text_falls_back_to_question_marks() -> None:
    doc = receipt(customer_name="Zoë Łukasz “Jo” – €5")
    printout = read_escpos(receipt_escpos(doc))
    # ë is in CP437; Ł is not; curly quotes, dash and euro have ASCII stand-ins.
    assert line_with(printout, "Customer").text.endswith('Zoë ?ukasz "Jo" - EUR5')


def test_control_characters_cannot_become_printer_commands() -> None:
    doc = receipt(customer_name="Eve\x1b@\x1dV\x00\x1c&", clerk="Al\tex\r\n")
    printout = read_escpos(receipt_escpos(doc))  # the reader fails on any stray command
    assert line_with(printout, "Customer").text.endswith("Eve?@?V??&")  # ESC, GS, NUL, FS
    assert line_with(printout, "Clerk").text.endswith("Al ex")


def test_japanese_name_in_kanji_mode() -> None:
    doc = receipt(customer_name="山田 太郎", store="ｶﾞｰﾃﾞﾝ Shop")
    data = receipt_escpos(doc, kanji=True)
    printout = read_escpos(data)

    assert data.startswith(b"\x1b@\x1bt\x00\x1cC\x01")  # PC437 for Latin, Shift-JIS for Kanji
    name = line_with(printout, "Customer")
    assert name.text.endswith("山田 太郎")
    assert name.cols == 48  # each kanji takes two columns, and the line still fits
    assert printout.lines[0].text == "ガーデン Shop"  # half-width kana folded to full-width


def test_chinese_names_print_what_shift_jis_has() -> None:
    printout = read_escpos(receipt_escpos(receipt(customer_name="王芳 / 张伟 / 김민준"), kanji=True))
    # 王芳 share kanji code points; simplified 张伟 and Hangul do not exist in Shift-JIS.
    assert line_with(printout, "Customer").text.endswith("王芳 / ?? / ???")


def test_without_kanji_fonts_cjk_is_question_marks_and_no_fs_command() -> None:
    data = receipt_escpos(receipt(customer_name="山田 太郎"))
    assert b"\x1c" not in data
    assert line_with(read_escpos(data), "Customer").text.endswith("?? ??")


def test_width_is_checked() -> None:
    with pytest.raises(ValueError, match="width_chars"):
        receipt_escpos(receipt(), width_chars=10)


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(title=_TEXT, name=_TEXT, amount=st.text(alphabet="0123456789.,-USDJPY€¥ ", min_size=1, max_size=60),
       code=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40),
       kanji=st.booleans(), width=st.sampled_from([32, 42, 48]))
def test_any_text_reads_back_within_the_width(title: str, name: str, amount: str, code: str,
                                              kanji: bool, width: int) -> None:
    doc = receipt(lines=(ReceiptLine(title, "SKU-1", amount),), customer_name=name, total=amount,
                  store=name or "Store", store_credit_code=code)
    printout = read_escpos(receipt_escpos(doc, width_chars=width, kanji=kanji))
    assert max(line.cols for line in printout.lines) <= width
    assert printout.cut
    assert all(barcode128_data(sent) == code for _m, sent in printout.barcodes)
