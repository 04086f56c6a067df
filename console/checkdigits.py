"""Check-digit algorithms for the codes a returns desk meets.

Carrier rules follow the MIT-licensed tracking_number_data specification (jkeen); the
parametrised tests use its published valid/invalid numbers. Issue 3 grows this into the full
barcode interpreter; here it gives demo data valid numbers and lookups a cheap sanity check.
"""
from __future__ import annotations

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def gs1_check_digit(body: str) -> int:
    """GS1 mod-10 (GTIN, SSCC, USPS IMpb): weights 3,1,3,... from the rightmost data digit."""
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin(code: str) -> bool:
    return code.isdigit() and len(code) in (8, 12, 13, 14) and gs1_check_digit(code[:-1]) == int(code[-1])


def ups_check_digit(body: str) -> int:
    """UPS 1Z: body is the 15 characters after '1Z' without the check; letters fold to digits."""
    total = 0
    for i, c in enumerate(body):
        x = int(c) if c.isdigit() else (ord(c) - 3) % 10
        total += x * 2 if i % 2 == 1 else x
    return (10 - total % 10) % 10


def is_valid_ups(code: str) -> bool:
    return (len(code) == 18 and code.startswith("1Z") and code[2:].isalnum() and code[-1].isdigit()
            and ups_check_digit(code[2:-1]) == int(code[-1]))


_FEDEX12_WEIGHTS = (3, 1, 7, 3, 1, 7, 3, 1, 7, 3, 1)


def fedex12_check_digit(body: str) -> int:
    return sum(int(c) * w for c, w in zip(body, _FEDEX12_WEIGHTS)) % 11 % 10


def is_valid_fedex12(code: str) -> bool:
    return len(code) == 12 and code.isdigit() and fedex12_check_digit(code[:11]) == int(code[-1])


def is_valid_usps22(code: str) -> bool:
    return len(code) == 22 and code.isdigit() and code[0] == "9" and gs1_check_digit(code[:-1]) == int(code[-1])


def mod7_check_digit(body: str) -> int:
    """Yamato and Sagawa 12-digit numbers: the check digit is the first 11 digits mod 7."""
    return int(body) % 7


def is_valid_mod7_12(code: str) -> bool:
    return len(code) == 12 and code.isdigit() and mod7_check_digit(code[:11]) == int(code[-1])


def luhn_mod36_char(body: str) -> str:
    """Luhn mod N over 0-9A-Z: one check character that catches every single-character error
    and most transpositions in the console's own RMA numbers and LPNs."""
    n = len(_ALNUM)
    factor, total = 2, 0
    for c in reversed(body):
        addend = factor * _ALNUM.index(c)
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return _ALNUM[(n - total % n) % n]


def luhn_mod36_valid(code: str) -> bool:
    return len(code) >= 2 and all(c in _ALNUM for c in code) and luhn_mod36_char(code[:-1]) == code[-1]
