"""Turn whatever a scanner sent into one typed answer: what kind of code, its normalized value,
which carrier or symbology, and whether it is valid — with a reason a clerk can act on when not.

Order of reasoning:

1. An AIM symbology identifier (``]C1``, ``]E0``, ``]d2``, ...) says which barcode was read; it
   settles ambiguous cases — a 12-digit string after ``]E0`` is a UPC-A, never a FedEx number.
2. The console's own codes (RMA numbers, LPNs, order numbers) have shapes nothing else has.
3. GS1 (GTIN-8/12/13/14, SSCC-18, element strings, Digital Link URLs) is read by biip.
4. Carrier tracking numbers come from ``console.tracking`` (the tracking_number_data rules).
5. Anything else that looks like a SKU or a serial number is passed on as such: it has no check
   character, so only a match against the order can tell whether it is right.

A code that could be two things (a bare 12-digit string that is both a valid UPC-A and a valid
FedEx number) is answered with the likelier reading first and the others in ``alternatives``.
Nothing here raises: every input, however garbled, gets an answer.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import biip

from console import tracking
from console.checkdigits import gs1_check_digit, luhn_mod36_valid
from console.codes import LPN_RE, ORDER_RE, RMA_RE, parse_lpn, parse_order_number, parse_rma

GS = "\x1d"
MAX_LENGTH = 4096

# ISO/IEC 15424 symbology identifiers: the letter after "]" names the symbology, the digit a
# variant. Only the variants that change how the data is read are listed separately.
_SYMBOLOGY = {
    "A": "Code 39", "C": "Code 128", "E": "EAN/UPC", "F": "Codabar", "G": "Code 93",
    "I": "Interleaved 2 of 5", "L": "PDF417", "Q": "QR Code", "d": "Data Matrix", "e": "GS1 DataBar",
    "z": "Aztec", "H": "Code 11", "M": "MSI", "X": "Other",
}
_GS1_MODIFIERS = {("C", "1"), ("d", "2"), ("Q", "3"), ("e", "0"), ("z", "4"), ("J", "1")}
_AIM_RE = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_RMA_SHAPE_RE = re.compile(r"R-\d{3,12}[0-9A-Z]?")
_LPN_SHAPE_RE = re.compile(r"LPN\d{4,14}[0-9A-Z]?")
_SERIAL_RE = re.compile(r"[A-Z0-9][A-Z0-9\-./_+]{2,59}")
_AI_START_RE = re.compile(r"(?:0[0-3]|1[0-7]|2[0-5]|3[0-9]{2}|4[0-2][0-9]|7[0-9]{2}|8[0-9]{3}|9[0-9])")
# Bare digit strings of these lengths are GS1 or carrier shapes: failing every check there means
# a misread, not a SKU.
_CHECKED_DIGIT_LENGTHS = {8, 12, 13, 14, 15, 18, 20, 22, 26, 30, 34}

KINDS = ("rma", "lpn", "order", "gtin", "sscc", "gs1", "tracking", "serial_or_sku", "unknown")


@dataclass(frozen=True)
class Barcode:
    kind: str  # one of KINDS
    value: str  # normalized: GTIN-14, canonical RMA, tracking number without routing prefix, ...
    valid: bool
    reason: str | None = None  # why not valid, and what to do
    symbology: str | None = None  # from the AIM identifier, when the scanner sent one
    aim_id: str | None = None
    carrier: str | None = None  # tracking numbers: ups, fedex, usps, dhl, s10, yamato, sagawa, ...
    service: str | None = None  # e.g. "FedEx Express (12)", "GS1-128"
    details: Mapping[str, str] = field(default_factory=dict)
    alternatives: tuple[Barcode, ...] = ()
    raw: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "raw": self.raw, "kind": self.kind, "value": self.value, "valid": self.valid,
            "reason": self.reason, "symbology": self.symbology, "aim_id": self.aim_id,
            "carrier": self.carrier, "service": self.service, "details": dict(self.details),
            "alternatives": [
                {k: v for k, v in a.to_dict().items() if k not in ("raw", "alternatives")}
                for a in self.alternatives],
        }

    @property
    def message(self) -> str:
        """One line for the clerk."""
        if self.valid:
            what = {"tracking": f"{self.service or 'tracking number'}", "gtin": "GTIN", "sscc": "SSCC",
                    "rma": "RMA", "lpn": "LPN", "order": "order", "gs1": "GS1 data",
                    "serial_or_sku": "serial number or SKU"}.get(self.kind, self.kind)
            return f"{what} {self.value}"
        return self.reason or "Unreadable scan: rescan the code."


def _invalid(kind: str, value: str, reason: str, **kw: Any) -> Barcode:
    return Barcode(kind=kind, value=value, valid=False, reason=reason, **kw)


def _gtin14(code: str) -> str:
    return code.zfill(14)


def gtin_reading(code: str) -> Barcode | None:
    """A bare GTIN-8/12/13/14, or None when the shape is wrong."""
    if not (code.isascii() and code.isdigit() and len(code) in (8, 12, 13, 14)):
        return None
    expected = gs1_check_digit(code[:-1])
    fmt = f"GTIN-{len(code)}"
    if expected != int(code[-1]):
        return _invalid("gtin", _gtin14(code), f"{fmt} {code} has check digit {code[-1]}, expected {expected}: "
                        "a digit was misread — rescan the item.", service=fmt)
    return Barcode("gtin", _gtin14(code), True, service=fmt, details={"gtin_format": fmt})


def sscc_reading(code: str) -> Barcode | None:
    if not (code.isascii() and code.isdigit() and len(code) == 18):
        return None
    expected = gs1_check_digit(code[:-1])
    if expected != int(code[-1]):
        return _invalid("sscc", code, f"SSCC {code} has check digit {code[-1]}, expected {expected}: rescan the label.",
                        service="SSCC-18")
    return Barcode("sscc", code, True, service="SSCC-18")


def _own_code(code: str) -> Barcode | None:
    """RMA numbers, LPNs and order numbers: the console's own shapes."""
    if RMA_RE.match(code):
        rma = parse_rma(code)
        if rma is None:
            return _invalid("rma", code, f"'{code}' looks like an RMA number but its check character is wrong: "
                            "rescan the label or type it again.")
        return Barcode("rma", rma, True)
    if LPN_RE.match(code):
        if parse_lpn(code) is None:
            return _invalid("lpn", code, f"'{code}' looks like an LPN but its check character is wrong: "
                            "rescan the sticker.")
        return Barcode("lpn", code, True)
    if _RMA_SHAPE_RE.fullmatch(code):
        return _invalid("rma", code, f"'{code}' starts like an RMA number but has the wrong length (a character "
                        "was dropped or doubled): rescan the label.")
    if _LPN_SHAPE_RE.fullmatch(code):
        return _invalid("lpn", code, f"'{code}' starts like an LPN but has the wrong length: rescan the sticker.")
    if ORDER_RE.match(code):
        number = parse_order_number(code)
        assert number is not None
        return Barcode("order", number, True)
    return None


def _element_error(es: Any) -> str | None:
    for attr in ("gtin_error", "sscc_error", "gln_error"):
        err = getattr(es, attr, None)
        if err:
            return str(err)
    return None


def _gs1_reading(text: str, *, service: str) -> Barcode | None:
    """A GS1 element string (GS1-128, GS1 DataMatrix/QR/DataBar) or Digital Link URL via biip."""
    try:
        result = biip.parse(text)
    except Exception:  # biip.ParseError, and anything its parsers raise on hostile input
        return None
    message = result.gs1_message or result.gs1_digital_link_uri
    if message is None:
        return None
    elements = list(message.element_strings)
    details: dict[str, str] = {}
    for es in elements:
        details[f"ai_{es.ai.ai}"] = es.value
    if result.gs1_digital_link_uri is not None:
        details["gs1_digital_link"] = result.gs1_digital_link_uri.value
        service = "GS1 Digital Link"
    for es in elements:
        if (err := _element_error(es)) is not None:
            kind = "sscc" if es.ai.ai == "00" else "gtin" if es.ai.ai in ("01", "02") else "gs1"
            return _invalid(kind, es.value, f"{err.rstrip('.')}: rescan the label.", service=service, details=details)
    by_ai = {es.ai.ai: es for es in elements}
    if "00" in by_ai:
        return Barcode("sscc", by_ai["00"].value, True, service=service, details=details)
    if "01" in by_ai:
        return Barcode("gtin", _gtin14(by_ai["01"].value), True, service=service, details=details)
    first = elements[0] if elements else None
    if first is None:
        return None
    return Barcode("gs1", first.value, True, service=service, details=details)


def _tracking_readings(code: str) -> tuple[list[Barcode], Barcode | None]:
    """Valid tracking readings, and the best invalid one for a reason when none is valid."""
    try:
        matches = tracking.match_tracking(code)
    except Exception:  # the engine promises not to raise; a scan must not crash the station anyway
        return [], None
    valid = [Barcode("tracking", m.value, True, carrier=m.carrier, service=m.service, details=dict(m.details))
             for m in matches if m.valid]
    invalid = next((m for m in matches if not m.valid), None)
    near_miss = None
    if invalid is not None:
        near_miss = _invalid("tracking", invalid.value,
                             f"{invalid.service} {invalid.value}: {invalid.reason or 'check digit is wrong'} — "
                             "a character was misread; rescan the label.",
                             carrier=invalid.carrier, service=invalid.service, details=dict(invalid.details))
    return valid, near_miss


def _pick(readings: list[Barcode]) -> Barcode | None:
    if not readings:
        return None
    first, rest = readings[0], tuple(readings[1:])
    return replace(first, alternatives=rest) if rest else first


def _clean(raw: str) -> tuple[str, str | None]:
    """Strip what a scanner adds around the data; return the text and a reason when it is unusable."""
    text = raw.strip(" \t\r\n")
    if not text:
        return "", "Nothing was scanned: scan the barcode again."
    if len(text) > MAX_LENGTH:
        return text[:40], f"The scan is {len(text):,} characters long — no barcode is: rescan it."
    bad = next((c for c in text if (ord(c) < 32 and c != GS) or ord(c) == 127), None)
    if bad is not None:
        return text, (f"The scan contains the control character 0x{ord(bad):02X}: the scanner's settings or "
                      "cable garbled it — rescan the code.")
    return text, None


def interpret(raw: str) -> Barcode:
    """The one entry point: never raises, whatever ``raw`` holds."""
    try:
        result = _interpret(raw if isinstance(raw, str) else str(raw))
    except Exception as exc:  # pragma: no cover - a bug here must cost one scan, not the station
        return _invalid("unknown", "", f"The console could not read this scan ({type(exc).__name__}): rescan it.",
                        raw=str(raw)[:200])
    return replace(result, raw=raw)


def _interpret(raw: str) -> Barcode:
    text, problem = _clean(raw)
    aim_id = symbology = None
    letter = modifier = ""
    if not problem and _AIM_RE.match(text):
        aim_id, letter, modifier = text[:3], text[1], text[2]
        symbology = _SYMBOLOGY.get(letter, f"AIM {letter}")
        text = text[3:]
        if not text:
            problem = f"The scanner sent only its symbology identifier {aim_id} and no data: rescan the code."
    gs1_symbology = (letter, modifier) in _GS1_MODIFIERS
    if gs1_symbology:
        symbology = {"C": "GS1-128", "d": "GS1 DataMatrix", "Q": "GS1 QR Code", "e": "GS1 DataBar",
                     "z": "GS1 Aztec", "J": "GS1 DotCode"}.get(letter, symbology)
    if problem:
        return _invalid("unknown", text, problem, aim_id=aim_id, symbology=symbology)
    found = _read(text, letter, modifier, gs1_symbology)
    return replace(found, aim_id=aim_id, symbology=symbology or found.symbology,
                   alternatives=tuple(replace(a, aim_id=aim_id, symbology=symbology or a.symbology)
                                      for a in found.alternatives))


def _read(text: str, letter: str, modifier: str, gs1_symbology: bool) -> Barcode:
    # GS1 Digital Link: a URL from a QR code carrying GS1 keys in its path.
    if text[:8].lower() in ("https://", "http://w") or text[:7].lower() == "http://":
        gs1 = _gs1_reading(text, service="GS1 Digital Link")
        if gs1 is not None:
            return gs1
        return _invalid("unknown", text[:200], "This QR code holds a web address, not a product or parcel code: "
                        "scan the barcode on the label instead.")

    # EAN/UPC symbologies only ever carry GTINs (add-ons after the main code are kept aside).
    if letter == "E":
        digits = text
        details: dict[str, str] = {}
        if modifier == "3" and len(text) in (15, 18):  # EAN-13 + 2- or 5-digit add-on
            digits, details["add_on"] = text[:13], text[13:]
        if modifier in ("1", "2"):
            return _invalid("gtin", text, f"Only the add-on {text} of an EAN/UPC code was read: scan the main "
                            "barcode, not the small one beside it.")
        reading = gtin_reading(digits)
        if reading is None:
            return _invalid("gtin", text, f"'{text[:40]}' was read as an EAN/UPC barcode but is not a GTIN: "
                            "rescan the item.", service="EAN/UPC")
        return replace(reading, details={**reading.details, **details})

    upper = text.upper()
    if not gs1_symbology and (own := _own_code(upper)) is not None:
        return own

    # GS1 element strings: announced by the symbology, or by a leading FNC1 the scanner passed on.
    gs1_text = text
    if text.startswith(GS):
        gs1_symbology, gs1_text = True, text.lstrip(GS)
    if gs1_symbology or GS in text or (("#" in text or "^]" in text) and _AI_START_RE.match(text)):
        gs1_text = gs1_text.replace("#", GS).replace("^]", GS)
        # USPS IMpb is GS1-128 too: 420 + ZIP, FNC1, then the tracking number.
        if gs1_text.startswith("420"):
            valid, near = _tracking_readings(gs1_text)
            if valid:
                return _pick(valid)  # type: ignore[return-value]
        gs1 = _gs1_reading(gs1_text, service="GS1-128" if letter == "C" else "GS1 element string")
        if gs1 is not None:
            return gs1
        if gs1_symbology:
            return _invalid("gs1", gs1_text[:80], "The GS1 data in this barcode does not follow GS1's rules "
                            "(unknown application identifier or wrong length): rescan it, or type the GTIN.")

    if letter == "I" and upper.isdigit() and len(upper) == 14:  # ITF-14 on an outer carton
        return gtin_reading(upper) or _invalid("gtin", upper, "Not a GTIN-14: rescan the carton label.")

    readings: list[Barcode] = []
    near_misses: list[Barcode] = []
    for candidate in (gtin_reading(upper), sscc_reading(upper)):
        if candidate is not None:
            (readings if candidate.valid else near_misses).append(candidate)
    tracked, near = _tracking_readings(upper)
    if near is not None:
        near_misses.append(near)
    # A bare 8/13/14-digit string is far likelier a GTIN; tracking numbers come before SSCCs, and a
    # 12-digit number that is both a UPC-A and a parcel number keeps both readings.
    readings = [r for r in readings if r.kind == "gtin"] + tracked + [r for r in readings if r.kind == "sscc"]
    if upper.isdigit() and len(upper) in (20, 22, 26, 30, 34) and upper.startswith("00"):
        # GS1-128 without its symbology identifier: AI 00 + SSCC.
        gs1 = _gs1_reading(upper, service="GS1-128")
        if gs1 is not None and gs1.valid and not tracked:
            readings.append(gs1)
    if (chosen := _pick(readings)) is not None:
        return chosen
    if near_misses and (upper.isdigit() and len(upper) in _CHECKED_DIGIT_LENGTHS or near_misses[0].kind == "tracking"):
        miss = near_misses[0]
        return replace(miss, alternatives=tuple(near_misses[1:]))
    if upper.isdigit() and len(upper) in _CHECKED_DIGIT_LENGTHS:
        return _invalid("unknown", upper, f"{len(upper)} digits, but not a valid GTIN, SSCC or tracking number: "
                        "a digit was misread — rescan it.")
    if _SERIAL_RE.fullmatch(upper):
        return Barcode("serial_or_sku", upper, True)
    return _invalid("unknown", text[:80], f"'{text[:40]}' is not a code the console knows: scan the RMA, "
                    "tracking, order or item barcode.")


def is_really_valid(code: Barcode) -> bool:
    """Re-check a reading claimed valid by independent means (used by tests and the fuzzer)."""
    if not code.valid:
        return True
    v = code.value
    if code.kind == "gtin":
        return len(v) == 14 and v.isdigit() and gs1_check_digit(v[:-1]) == int(v[-1])
    if code.kind == "sscc":
        return len(v) == 18 and v.isdigit() and gs1_check_digit(v[:-1]) == int(v[-1])
    if code.kind == "rma":
        return parse_rma(v) == v
    if code.kind == "lpn":
        return luhn_mod36_valid(v)
    if code.kind == "order":
        return parse_order_number(v) == v
    if code.kind == "tracking":
        return any(m.valid and m.value == v for m in tracking.match_tracking(v))
    if code.kind == "serial_or_sku":
        return _SERIAL_RE.fullmatch(v) is not None
    return code.kind == "gs1"
