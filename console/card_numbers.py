"""Full payment card numbers in text a person typed or a file brought: found in any formatting,
and masked. The console never stores one: order exports carry only the last four digits, and
every free-text field (notes, import columns) is checked.

A card number hides behind more than spaces: dots, slashes, hyphens, non-breaking and other
Unicode spaces, full-width digits (NFKC makes them ASCII) and other scripts' decimal digits
(Arabic-Indic, Devanagari …, which NFKC keeps: each is read by its Unicode digit value). The
text is read one character at a time into a form of the same length, so a span found there is
the same span in what the person typed, and masking keeps every other character as it was.
"""
from __future__ import annotations

import re
import unicodedata

MASK = "[card number]"
# Between the groups of a card number as people write it; after NFKC (any Unicode space is then
# a plain one, a full-width hyphen or solidus an ASCII one).
_SEPARATORS = frozenset(" -./\u2010\u2011\u2012\u2013")
_DIGIT_RUN = re.compile(r"[0-9]+(?:[ -]+[0-9]+)*")


def _reading(text: str) -> str:
    """``text`` with every decimal digit as ASCII and every separator as ' ' or '-', one
    character for each character of ``text``; anything else left as it is."""
    out = []
    for char in text:
        if char.isascii():
            out.append(" " if char in "./" else char)
            continue
        value = unicodedata.decimal(char, None)
        if value is not None:
            out.append(str(value))
            continue
        folded = unicodedata.normalize("NFKC", char)
        if len(folded) == 1 and (folded.isspace() or folded in _SEPARATORS):
            out.append("-" if folded not in " \t" and not folded.isspace() else " ")
        elif len(folded) == 1 and folded.isascii() and folded.isdigit():
            out.append(folded)
        else:
            out.append(char)
    return "".join(out)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        x = ord(c) - 48
        if i % 2:
            x = x * 2 - 9 if x > 4 else x * 2
        total += x
    return total % 10 == 0


def card_like(digits: str) -> bool:
    """A payment card number: 14-19 digits, an issuer's prefix for that length, Luhn valid.

    The prefixes keep 15-digit IMEIs (serial numbers of phones, Luhn valid too, mostly 35... or
    86...) and E.164 phone numbers from being taken for cards."""
    n = len(digits)
    if n < 14 or n > 19:
        return False
    if n == 14:
        ok = digits[:2] in ("36", "38", "39") or "300" <= digits[:3] <= "305"
    elif n == 15:
        ok = digits[:2] in ("34", "37")
    else:
        ok = digits[0] in "3456" or "2221" <= digits[:4] <= "2720"
    return ok and _luhn_ok(digits)


# Cheap first look: fourteen digits (any script's) with nothing but separators between them.
_FOURTEEN_DIGITS = re.compile(r"(?:\d[\s\-./\u2010-\u2013\uff0d\uff0e\uff0f]*){13}\d")


def maybe_card_number(value: str) -> bool:
    """Whether ``value`` may hold a card number at all (``card_spans`` says where, if it does)."""
    return _FOURTEEN_DIGITS.search(value) is not None


def card_spans(value: str) -> list[tuple[int, int]]:
    """Where ``value`` holds something that looks like a full card number (maybe grouped, in
    any digits, with any separators), as (start, end) in ``value``."""
    if not maybe_card_number(value):
        return []
    reading = _reading(value)
    spans: list[tuple[int, int]] = []
    for run in _DIGIT_RUN.finditer(reading):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"[0-9]+", run.group())]
        open_start = run.start() == 0 or not reading[run.start() - 1].isalnum()
        open_end = run.end() == len(reading) or not reading[run.end()].isalnum()
        for i in range(len(groups)):
            if i == 0 and not open_start:
                continue
            digits = ""
            for j in range(i, len(groups)):
                digits += reading[groups[j][0]:groups[j][1]]
                if len(digits) > 19:
                    break
                if j == len(groups) - 1 and not open_end:
                    break
                if card_like(digits):
                    spans.append((groups[i][0], groups[j][1]))
    return spans


def mask_card_numbers(value: str) -> str:
    """``value`` with every full card number in it replaced by ``[card number]``."""
    spans = card_spans(value)
    if not spans:
        return value
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    for start, end in reversed(merged):
        value = value[:start] + MASK + value[end:]
    return value


def free_text(value: str | None) -> str | None:
    """What a service stores of a free-text field a person filled in: as typed, card numbers
    masked (the rest of the note is kept: nothing they wrote is lost but the number)."""
    return None if value is None else mask_card_numbers(value)
