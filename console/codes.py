"""The console's own identifiers: RMA numbers, LPNs and order numbers.

RMA ``R-0001234K``: 7-digit sequence and a Luhn mod-36 check character, so a dropped or
swapped character in a hand-typed or misread RMA is caught before any database lookup. An RMA a
station creates itself (offline, from an order) has a 10-digit sequence from the station's own
block of ids (``console.context.station_id_range``), so no two stations ever make the same one.
LPN ``LPN000012345X`` identifies one returned unit. Order numbers ``SO-1000123`` come from
the order system and carry no check character.
"""
from __future__ import annotations

import re

from console.checkdigits import luhn_mod36_char, luhn_mod36_valid

RMA_RE = re.compile(r"^R-?(\d{7}|\d{10})([0-9A-Z])$")
LPN_RE = re.compile(r"^LPN(\d{9})([0-9A-Z])$")
ORDER_RE = re.compile(r"^SO-?(\d{7,9})$")


def rma_number(seq: int) -> str:
    body = f"{seq:07d}"
    return f"R-{body}{luhn_mod36_char('R' + body)}"


def lpn(seq: int) -> str:
    body = f"{seq:09d}"
    return f"LPN{body}{luhn_mod36_char('LPN' + body)}"


def order_number(seq: int) -> str:
    return f"SO-{seq:07d}"


def normalize(code: str) -> str:
    """What a scanner or a hand may add: spaces, lower case, stray control characters."""
    return "".join(ch for ch in code.strip().upper() if ch.isprintable() and not ch.isspace())


def parse_rma(code: str) -> str | None:
    """The canonical RMA number if ``code`` is one with a valid check character, else None."""
    m = RMA_RE.match(code)
    if not m or not luhn_mod36_valid("R" + m.group(1) + m.group(2)):
        return None
    return f"R-{m.group(1)}{m.group(2)}"


def looks_like_rma(code: str) -> bool:
    return RMA_RE.match(code) is not None


def parse_lpn(code: str) -> str | None:
    m = LPN_RE.match(code)
    return code if m and luhn_mod36_valid(code) else None


def parse_order_number(code: str) -> str | None:
    m = ORDER_RE.match(code)
    return f"SO-{m.group(1)}" if m else None
