"""Scale wire protocols as pure functions over bytes: no ports, no threads, no Qt.

Every protocol has a *split* function (find the end of one reply in a receive buffer), a *parse*
function (one reply -> :class:`WeightReading`, or :class:`FrameError`/:class:`UnitError`) and the
*encode* functions the simulators use to speak it. Weights are converted to grams exactly with
:class:`~decimal.Decimal`; nothing here ever rounds a weight.

Sources (kept beside each protocol below):

* MT-SICS: METTLER TOLEDO "Standard Interface Command Set, MT-SICS level 0/1" reference manual
  (https://paperzz.com/doc/7823012/reference-manual-standard-interface-command): ``S``/``SI``
  replies ``S S|D <value> <unit>``, ``S I``, ``S +``, ``S -``, errors ``ES``/``ET``/``EL``.
* Toledo 8213/8217 and NCI: METTLER TOLEDO DIVA service manual, ch. 6.1.3/6.1.4 (8213/8217) and the
  NCI section (https://www.manualshelf.com/manual/psc/magellan-8500/service-manual-english/page-51.html
  for the 8217 status byte, .../page-50.html for the 8217 ``W`` replies, .../page-41.html and
  http://psc.manymanuals.com/kitchen-scales/magellan-8500/service-manual-24858/43 for the NCI status
  bytes); Avery Weigh-Tronix 7821 manual, "NCI Communications Protocol"
  (https://www.easymanua.ls/avery-weigh-tronix/7821/manual?p=25), and Salter Brecknell 3700LP
  manual (https://www.manualsdir.com/manuals/634840/salter-brecknell-3700lp.html?page=11) for both.
* CAS ENQ/ACK/DC1: CAS SW-II manual, RS-232C protocol
  (https://www.easymanua.ls/cas/sw-ii-series/manual?p=15), the CAS-compatible "AP-1" description
  (http://docs4.chomikuj.pl/2375846315,PL,0,0,AP-1.doc: BCC = XOR of the data bytes) and the
  Ohaus Aviator 7000 service manual, which documents the same frame with sign ``F`` for overflow
  (https://manualshive.com/ru/manual/ohaus/aviator-7000-series/4154010?page=36).
* USB HID POS scale: USB HID Point of Sale Usage Tables, "Weighing Devices (0x8D)"
  (https://studylib.net/doc/25342725/hid-point-of-sale-weighing-devices-usage-tables), with the
  hidraw byte layout as described in
  https://gist.github.com/Techwizz-somboo/4b731878ee06ae2e270aa3a13383b4f2 and
  https://new.antradar.com/blog-dymo-usb-scale-interface-specs.
"""
from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

# --- control characters --------------------------------------------------------------------
SOH, STX, ETX, EOT, ENQ, ACK, LF, CR, DC1, NAK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0A, 0x0D, 0x11, 0x15

# --- readings --------------------------------------------------------------------------------


class Status(enum.Enum):
    """What a reply says about the weight. Only ``STABLE`` readings may be used for a parcel."""

    STABLE = "stable"
    MOTION = "motion"  # also "busy" / "no weight yet": worth asking again
    OVERLOAD = "overload"  # over capacity
    UNDERLOAD = "underload"  # under zero
    FAULT = "fault"  # the scale reports an error (RAM, calibration, needs re-zeroing, ...)


@dataclass(frozen=True)
class WeightReading:
    """One reply from a scale.

    ``grams`` is the exact weight in grams (``None`` when the reply carries no weight);
    ``raw_value``/``raw_unit`` are the number and unit as the scale sent them; ``division_g`` is
    the value of one step of the last digit sent, in grams (the scale's verified division is at
    least this), or ``None``.
    """

    grams: Decimal | None
    status: Status
    raw_value: Decimal | None = None
    raw_unit: str = ""
    division_g: Decimal | None = None
    detail: str = ""

    @property
    def is_stable_weight(self) -> bool:
        return self.status is Status.STABLE and self.grams is not None


class ProtocolError(ValueError):
    """A reply that cannot be used as it is."""


class FrameError(ProtocolError):
    """Garbled, incomplete or unexpected bytes: not a reply of this protocol."""


class UnitError(ProtocolError):
    """A well-formed reply in a unit that cannot be converted to grams exactly."""


# --- units -----------------------------------------------------------------------------------
# Exact definitions: the international avoirdupois pound is 0.45359237 kg (1959), the ounce is
# 1/16 of it; the grain is 1/7000 lb; the pennyweight is 24 grains; the troy ounce 480 grains;
# the metric carat 0.2 g; the short (avoirdupois) ton 2000 lb.
GRAMS_PER_UNIT: dict[str, Decimal] = {
    "mg": Decimal("0.001"),
    "g": Decimal("1"),
    "kg": Decimal("1000"),
    "t": Decimal("1000000"),
    "lb": Decimal("453.59237"),
    "oz": Decimal("28.349523125"),
    "ozt": Decimal("31.1034768"),
    "dwt": Decimal("1.55517384"),
    "gr": Decimal("0.06479891"),
    "ct": Decimal("0.2"),
    "ton": Decimal("907184.74"),
}

_UNIT_ALIASES = {
    "lbs": "lb",
    "gn": "gr",  # MT-SICS writes grains as "GN"
    "oz t": "ozt",
    "ozt": "ozt",
}

# Enough digits that multiplying a 16-digit reading by an 11-digit factor is always exact.
_EXACT = Context(prec=60)


def normalize_unit(unit: str) -> str:
    """``"KG"`` -> ``"kg"``, ``"lbs"`` -> ``"lb"``; raises :class:`UnitError` for unknown units."""
    key = unit.strip().lower()
    key = _UNIT_ALIASES.get(key, key)
    if key not in GRAMS_PER_UNIT:
        raise UnitError(f"unit {unit.strip()!r} cannot be converted to grams")
    return key


def to_grams(value: Decimal, unit: str) -> Decimal:
    """Exact conversion: ``to_grams(Decimal("1.234"), "lb") == Decimal("559.73498458")``."""
    return _EXACT.multiply(value, GRAMS_PER_UNIT[normalize_unit(unit)])


def grams_to_unit(grams: Decimal, unit: str, decimals: int) -> Decimal:
    """``grams`` shown in ``unit`` with ``decimals`` decimals (rounded half-even, as a display)."""
    value = _EXACT.divide(grams, GRAMS_PER_UNIT[normalize_unit(unit)])
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN, context=_EXACT)


def _step_grams(value: Decimal, unit: str) -> Decimal:
    """Grams per step of the last digit of ``value`` (``Decimal("1.234")`` lb -> 0.001 lb)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return to_grams(Decimal(1).scaleb(exponent), unit)


def _reading(value: Decimal, unit: str, status: Status, detail: str = "") -> WeightReading:
    unit = normalize_unit(unit)
    return WeightReading(
        grams=to_grams(value, unit),
        status=status,
        raw_value=value,
        raw_unit=unit,
        division_g=_step_grams(value, unit),
        detail=detail,
    )


def _ascii(frame: bytes, what: str) -> str:
    if any(b > 0x7E or (b < 0x20 and b not in (CR, LF)) for b in frame):
        raise FrameError(f"{what}: unexpected byte(s) in {frame!r}")
    return frame.decode("ascii")


_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")


def _decimal(text: str, what: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise FrameError(f"{what}: {text!r} is not a number")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already guarantees a number
        raise FrameError(f"{what}: {text!r} is not a number") from exc


def _split_at(buffer: bytes, terminator: bytes) -> tuple[bytes | None, bytes]:
    end = buffer.find(terminator)
    if end < 0:
        return None, buffer
    end += len(terminator)
    return buffer[:end], buffer[end:]


def with_wrong_parity(data: bytes) -> bytes:
    """How 7E1 bytes look to a host set to 8N1: the even-parity bit lands in bit 7.

    The simulators use it for their "garbage" mode, because it is the most common garbled
    reply in practice (a scale and a console that disagree about framing).
    """
    return bytes(b | 0x80 if bin(b & 0x7F).count("1") % 2 else b & 0x7F for b in data)


# =============================================================================================
# MT-SICS (level 0/1): host sends "S\r\n" (stable weight) or "SI\r\n" (weight immediately).
#   S S <value> <unit>\r\n   stable weight        S D <value> <unit>\r\n   dynamic (SI only)
#   S I\r\n   not executable now (busy, or still in motion when S timed out)
#   S +\r\n   overload          S -\r\n   underload
#   ES\r\n syntax error   ET\r\n transmission error (parity/framing)   EL\r\n logical error
# The value field is 10 characters, right-aligned.
# =============================================================================================
MTSICS_SEND_STABLE = b"S\r\n"
MTSICS_SEND_IMMEDIATE = b"SI\r\n"
_MTSICS_ERRORS = {
    "ES": "the scale did not understand the command (ES, syntax error)",
    "ET": "the scale received a garbled command (ET, transmission error)",
    "EL": "the scale could not execute the command (EL, logical error)",
}


def mtsics_split(buffer: bytes) -> tuple[bytes | None, bytes]:
    """One reply (up to and including LF) and the rest, or ``(None, buffer)``."""
    return _split_at(buffer, b"\n")


def parse_mtsics(frame: bytes) -> WeightReading:
    text = _ascii(frame, "MT-SICS")
    if not text.endswith("\r\n") or "\r" in text[:-2] or "\n" in text[:-2]:
        raise FrameError(f"MT-SICS: reply does not end in CR LF: {frame!r}")
    fields = text[:-2].split()
    if len(fields) == 1 and fields[0] in _MTSICS_ERRORS:
        raise FrameError(f"MT-SICS: {_MTSICS_ERRORS[fields[0]]}")
    if not fields or fields[0] != "S":
        raise FrameError(f"MT-SICS: not a weight reply: {frame!r}")
    if fields[1:] == ["I"]:
        return WeightReading(None, Status.MOTION, detail="balance busy or still in motion (S I)")
    if fields[1:] == ["+"]:
        return WeightReading(None, Status.OVERLOAD, detail="overload (S +)")
    if fields[1:] == ["-"]:
        return WeightReading(None, Status.UNDERLOAD, detail="underload (S -)")
    if len(fields) == 4 and fields[1] in ("S", "D"):
        value = _decimal(fields[2], "MT-SICS")
        status = Status.STABLE if fields[1] == "S" else Status.MOTION
        return _reading(value, fields[3], status)
    raise FrameError(f"MT-SICS: not a weight reply: {frame!r}")


def encode_mtsics_weight(value: Decimal, unit: str, *, stable: bool) -> bytes:
    return f"S {'S' if stable else 'D'} {value:>10} {unit}\r\n".encode("ascii")


def encode_mtsics_status(code: str) -> bytes:
    """``"I"``, ``"+"`` or ``"-"`` -> ``b"S I\\r\\n"``...; ``"ES"``/``"ET"``/``"EL"`` as they are."""
    return (code if code in _MTSICS_ERRORS else f"S {code}").encode("ascii") + b"\r\n"


# =============================================================================================
# Mettler Toledo 8213 / 8217 ("Toledo" POS protocol). Host sends "W" (some hosts "W\r").
#   <STX>0WW.WW<CR>  lb  (8217: five digits, two decimals)   <STX>WW.WWW<CR>  kg
#   a trailing "N" marks a net weight; some models send 5/6 digits with an implied decimal point
#   <STX>?<status><CR>  no weight: in motion, under zero or over capacity.
# Status byte (DIVA service manual 6.1.4.3, "Scale Status Byte Bit Definitions"):
#   bit 0 motion, bit 1 over capacity, bit 2 under zero, bit 3 outside zero capture range,
#   bit 4 center of zero, bit 5 net weight, bit 6 always 1, bit 7 even parity.
# The frame carries no unit: lb or kg (and the implied decimals) are scale configuration.
# =============================================================================================
TOLEDO_WEIGH = b"W"
TOLEDO_MOTION, TOLEDO_OVER, TOLEDO_UNDER, TOLEDO_OUTSIDE_ZERO = 0x01, 0x02, 0x04, 0x08
TOLEDO_CENTER_ZERO, TOLEDO_NET, TOLEDO_ALWAYS = 0x10, 0x20, 0x40
_TOLEDO_WEIGHT = re.compile(r" *(\d+(?:\.\d+)?)(N?)")


def toledo_split(buffer: bytes) -> tuple[bytes | None, bytes]:
    return _split_at(buffer, bytes([CR]))


def parse_toledo(
    frame: bytes, *, unit: str | None = None, implied_decimals: int | None = None
) -> WeightReading:
    """Parse one 8213/8217 reply.

    ``unit`` is what the scale is set to (``"lb"``, ``"kg"``, ``"g"``, ``"oz"``); when ``None`` it is
    inferred the way the 8217 formats weights: two decimals -> lb, three decimals -> kg.
    ``implied_decimals`` is needed only for models that send digits without a decimal point.
    """
    if len(frame) < 3 or frame[0] != STX or frame[-1] != CR:
        raise FrameError(f"Toledo: reply is not <STX>...<CR>: {frame!r}")
    body = frame[1:-1]
    if body[:1] == b"?":
        if len(body) != 2:
            raise FrameError(f"Toledo: status reply is not <STX>?<status><CR>: {frame!r}")
        return _toledo_status(body[1] & 0x7F, frame)
    match = _TOLEDO_WEIGHT.fullmatch(_ascii(body, "Toledo"))
    if not match or len(match.group(1)) > 8:
        raise FrameError(f"Toledo: not a weight: {frame!r}")
    digits, net = match.groups()
    detail = "net weight" if net else ""
    if "." in digits:
        value = Decimal(digits)
        decimals = len(digits) - digits.index(".") - 1
        if unit is None:
            inferred = {2: "lb", 3: "kg"}.get(decimals)
            if inferred is None:
                raise UnitError(
                    f"Toledo: cannot tell the unit of {digits!r}: set the scale's unit (lb or kg)"
                )
            unit = inferred
    else:
        if implied_decimals is None:
            if unit is None or normalize_unit(unit) != "g":
                raise UnitError(
                    f"Toledo: {digits!r} has no decimal point: set the scale's unit and its "
                    "implied decimals"
                )
            implied_decimals = 0
        if unit is None:
            raise UnitError(f"Toledo: cannot tell the unit of {digits!r}: set the scale's unit")
        value = Decimal(int(digits)).scaleb(-implied_decimals)
    return _reading(value, unit, Status.STABLE, detail)


def _toledo_status(status: int, frame: bytes) -> WeightReading:
    if not status & TOLEDO_ALWAYS or status & 0x80:
        raise FrameError(f"Toledo: {frame!r} has no valid status byte (bit 6 must be set)")
    if status & TOLEDO_OVER:
        return WeightReading(None, Status.OVERLOAD, detail="over capacity")
    if status & TOLEDO_UNDER:
        return WeightReading(None, Status.UNDERLOAD, detail="under zero")
    if status & TOLEDO_MOTION:
        return WeightReading(None, Status.MOTION, detail="in motion")
    if status & TOLEDO_OUTSIDE_ZERO:
        return WeightReading(
            None, Status.FAULT, detail="outside the zero capture range: empty the platter and press ZERO"
        )
    return WeightReading(None, Status.MOTION, detail=f"no weight in reply (status 0x{status:02X})")


def encode_toledo_weight(value: Decimal, decimals: int, *, net: bool = False) -> bytes:
    """``Decimal("12.34"), 2`` -> ``b"\\x02012.34\\r"`` (six characters, leading zeroes)."""
    text = f"{value:06.{decimals}f}"
    return bytes([STX]) + text.encode("ascii") + (b"N" if net else b"") + bytes([CR])


def encode_toledo_status(
    *, motion: bool = False, over: bool = False, under: bool = False, outside_zero: bool = False
) -> bytes:
    status = TOLEDO_ALWAYS
    status |= TOLEDO_MOTION if motion else 0
    status |= TOLEDO_OVER if over else 0
    status |= TOLEDO_UNDER if under else 0
    status |= TOLEDO_OUTSIDE_ZERO if outside_zero else 0
    return bytes([STX, ord("?"), status, CR])


# =============================================================================================
# NCI / Weigh-Tronix SCP-01 ("NCI standard"). Host sends "W\r".
#   <LF>xxxx.xxuu<CR><LF>hh...<CR><ETX>   weight, unit and two or more status bytes
#   <LF>hh...<CR><ETX>                     status only (motion, under zero, over capacity...)
#   <LF>?<CR><ETX>                         command not recognised
# Some scales put an "S" before the status bytes (<LF>Shh<CR><ETX>); both are accepted.
# Weights may also come as pounds and ounces: "1lb 2.5oz".
# Status bytes (bit 7 parity, bits 4 and 5 always 1; bit 6 of byte 2+ "another byte follows"):
#   byte 1: bit 0 motion, bit 1 at zero, bit 2 RAM error, bit 3 EEPROM error, bit 6 always 0
#   byte 2: bit 0 under capacity, bit 1 over capacity, bit 2 ROM error, bit 3 faulty calibration
#   byte 3: bits 0-1 range, bit 2 net weight, bit 3 initial zero error
# =============================================================================================
NCI_WEIGH = b"W\r"
NCI_STATUS = b"S\r"


def nci_split(buffer: bytes) -> tuple[bytes | None, bytes]:
    return _split_at(buffer, bytes([ETX]))


def nci_status_bytes(
    *,
    motion: bool = False,
    at_zero: bool = False,
    under: bool = False,
    over: bool = False,
    ram_error: bool = False,
    eeprom_error: bool = False,
    rom_error: bool = False,
    calibration_error: bool = False,
) -> bytes:
    first = 0x30 | motion | at_zero << 1 | ram_error << 2 | eeprom_error << 3
    second = 0x30 | under | over << 1 | rom_error << 2 | calibration_error << 3
    return bytes([first, second])


def encode_nci(weight_text: str | None, status: bytes, *, status_prefix: bytes = b"S") -> bytes:
    """``"  1.234lb"`` and two status bytes -> a ``W`` reply; ``None`` -> a status-only reply."""
    status_part = b"\n" + status_prefix + status + b"\r\x03"
    if weight_text is None:
        return status_part
    return b"\n" + weight_text.encode("ascii") + b"\r" + status_part


_NCI_WEIGHT = re.compile(r" *(-?) *(\d+(?:\.\d*)?|\.\d+) *([A-Za-z]{1,3}) *")
_NCI_LB_OZ = re.compile(r" *(-?) *(\d+) *lb +(\d+(?:\.\d*)?|\.\d+) *oz *", re.IGNORECASE)


def parse_nci(frame: bytes) -> WeightReading:
    if len(frame) < 4 or frame[0] != LF or not frame.endswith(b"\r\x03"):
        raise FrameError(f"NCI: reply is not <LF>...<CR><ETX>: {frame!r}")
    content = frame[1:-2]
    if content == b"?":
        raise FrameError("NCI: the scale did not recognise the command (<LF>?<CR><ETX>)")
    parts = content.split(b"\r\n")
    if len(parts) > 2:
        raise FrameError(f"NCI: too many lines in {frame!r}")
    flags = _nci_flags(parts[-1], frame)
    weight_line = parts[0] if len(parts) == 2 else None

    status, detail = _nci_status(flags)
    value: Decimal | None = None
    if weight_line is not None:
        try:
            value, unit = _nci_weight(weight_line)
        except FrameError:
            # Over/under capacity displays (dashes, "^^^^") are not numbers; the status says it.
            if status in (Status.OVERLOAD, Status.UNDERLOAD, Status.FAULT):
                return WeightReading(None, status, detail=detail)
            raise
    if value is None:
        if status is Status.STABLE:
            return WeightReading(None, Status.MOTION, detail="status only, no weight in reply")
        return WeightReading(None, status, detail=detail)
    if unit == "lb+oz":
        grams = _EXACT.add(to_grams(value[0], "lb"), to_grams(value[1], "oz"))
        step = _step_grams(value[1], "oz")
        total_oz = _EXACT.add(_EXACT.multiply(value[0], Decimal(16)), value[1])
        return WeightReading(grams, status, total_oz, "oz", step, detail)
    return _reading(value, unit, status, detail)


def _nci_flags(line: bytes, frame: bytes) -> dict[str, bool]:
    if line[:1] == b"S":
        line = line[1:]
    status = [b & 0x7F for b in line]
    if len(status) < 2 or any(b & 0x30 != 0x30 for b in status) or status[0] & 0x40:
        raise FrameError(f"NCI: no valid status bytes in {frame!r}")
    expected = 2  # byte 2 onwards: bit 6 set means another status byte follows
    while expected <= len(status) and status[expected - 1] & 0x40:
        expected += 1
    if expected != len(status):
        raise FrameError(f"NCI: status bytes do not chain in {frame!r}")
    first, second = status[0], status[1]
    third = status[2] if len(status) > 2 else 0x30
    return {
        "motion": bool(first & 1),
        "at_zero": bool(first & 2),
        "ram_error": bool(first & 4),
        "eeprom_error": bool(first & 8),
        "under": bool(second & 1),
        "over": bool(second & 2),
        "rom_error": bool(second & 4),
        "calibration_error": bool(second & 8),
        "net": bool(third & 4),
        "initial_zero_error": bool(third & 8),
    }


def _nci_status(flags: dict[str, bool]) -> tuple[Status, str]:
    faults = [
        text
        for key, text in (
            ("ram_error", "RAM error"),
            ("eeprom_error", "EEPROM error"),
            ("rom_error", "ROM error"),
            ("calibration_error", "faulty calibration"),
            ("initial_zero_error", "initial zero error: empty the platter and switch the scale off and on"),
        )
        if flags[key]
    ]
    if faults:
        return Status.FAULT, ", ".join(faults)
    if flags["over"]:
        return Status.OVERLOAD, "over capacity"
    if flags["under"]:
        return Status.UNDERLOAD, "under capacity"
    if flags["motion"]:
        return Status.MOTION, "in motion"
    return Status.STABLE, "net weight" if flags["net"] else ""


def _nci_weight(line: bytes) -> tuple:
    text = _ascii(line, "NCI")
    lb_oz = _NCI_LB_OZ.fullmatch(text)
    if lb_oz:
        sign, pounds, ounces = lb_oz.groups()
        factor = Decimal(-1) if sign else Decimal(1)
        return (factor * Decimal(pounds), factor * Decimal(ounces)), "lb+oz"
    match = _NCI_WEIGHT.fullmatch(text)
    if not match:
        raise FrameError(f"NCI: not a weight: {line!r}")
    sign, digits, unit = match.groups()
    return _decimal(sign + digits, "NCI"), normalize_unit(unit)


# =============================================================================================
# CAS ENQ/ACK/DC1 (CAS "ECR" protocol of PD-II/ER/SW-II POS scales, also spoken by Ohaus and
# others). Host sends ENQ; scale answers ACK (ready) or NAK (not ready); host sends DC1; scale:
#   SOH STX STA SIGN W5..W0 UN1 UN2 BCC ETX EOT
#   STA "S" stable / "U" unstable; SIGN " " or "-" ("F" overflow on some models);
#   W5..W0 six characters including the decimal point ("01.234"); UN1 UN2 "kg"/"lb"/"g ";
#   BCC = XOR of STA through UN2.
# =============================================================================================
CAS_ENQ = bytes([ENQ])
CAS_DC1 = bytes([DC1])


def cas_bcc(data: bytes) -> int:
    bcc = 0
    for b in data:
        bcc ^= b
    return bcc


def parse_cas_handshake(reply: bytes) -> bool:
    """The answer to ENQ: ``True`` for ACK (ready), ``False`` for NAK (busy)."""
    if reply == bytes([ACK]):
        return True
    if reply == bytes([NAK]):
        return False
    raise FrameError(f"CAS: expected ACK or NAK after ENQ, got {reply!r}")


def cas_split(buffer: bytes) -> tuple[bytes | None, bytes]:
    return _split_at(buffer, bytes([EOT]))


_CAS_WEIGHT = re.compile(r" *(\d+(?:\.\d+)?) *([A-Za-z]{1,2}) *")


def parse_cas(frame: bytes) -> WeightReading:
    # Some scales set bit 7 of SOH (0x81), as r_keeper's CAS driver notes; accept both.
    if len(frame) < 9 or frame[0] not in (SOH, SOH | 0x80) or frame[1] != STX:
        raise FrameError(f"CAS: reply does not start with SOH STX: {frame!r}")
    if frame[-2:] != bytes([ETX, EOT]):
        raise FrameError(f"CAS: reply does not end with ETX EOT: {frame!r}")
    data, bcc = frame[2:-3], frame[-3]
    if cas_bcc(data) != bcc:
        raise FrameError(f"CAS: checksum mismatch in {frame!r}")
    sta, sign = chr(data[0]), chr(data[1])
    if sta not in "SU" or sign not in " -F":
        raise FrameError(f"CAS: bad status {sta!r}/{sign!r} in {frame!r}")
    if sign == "F":
        return WeightReading(None, Status.OVERLOAD, detail="overflow")
    match = _CAS_WEIGHT.fullmatch(_ascii(data[2:], "CAS"))
    if not match:
        raise FrameError(f"CAS: not a weight: {frame!r}")
    digits, unit = match.groups()
    value = Decimal(("-" if sign == "-" else "") + digits)
    return _reading(value, unit, Status.STABLE if sta == "S" else Status.MOTION)


def encode_cas(*, stable: bool, sign: str, weight_text: str, unit: str) -> bytes:
    data = (("S" if stable else "U") + sign + weight_text + f"{unit:<2}").encode("ascii")
    return bytes([SOH, STX]) + data + bytes([cas_bcc(data), ETX, EOT])


# =============================================================================================
# USB HID POS scale, as read from /dev/hidraw*: 6 bytes
#   0 report id (3 = Scale Data Report), 1 status, 2 unit, 3 exponent (int8, power of ten),
#   4-5 weight, little endian, unsigned.
# Status: 1 fault, 2 stable at center of zero, 3 in motion, 4 weight stable, 5 under zero,
#   6 over weight limit, 7 requires calibration, 8 requires re-zeroing.
# Unit: 1 mg, 2 g, 3 kg, 4 carats, 5 taels, 6 grains, 7 pennyweights, 8 metric tons,
#   9 avoirdupois tons, 10 troy ounces, 11 ounces, 12 pounds.
# =============================================================================================
HID_REPORT_ID = 3
HID_REPORT_SIZE = 6
HID_UNITS: dict[int, str] = {
    1: "mg", 2: "g", 3: "kg", 4: "ct", 5: "taels", 6: "gr", 7: "dwt",
    8: "t", 9: "ton", 10: "ozt", 11: "oz", 12: "lb",
}
HID_UNIT_CODES = {name: code for code, name in HID_UNITS.items()}
HID_FAULT, HID_ZERO, HID_MOTION, HID_STABLE = 1, 2, 3, 4
HID_UNDER_ZERO, HID_OVER_WEIGHT, HID_NEEDS_CALIBRATION, HID_NEEDS_REZERO = 5, 6, 7, 8
_HID_STATUS = {
    HID_FAULT: (Status.FAULT, "scale fault"),
    HID_ZERO: (Status.STABLE, "stable at zero"),
    HID_MOTION: (Status.MOTION, "in motion"),
    HID_STABLE: (Status.STABLE, ""),
    HID_UNDER_ZERO: (Status.UNDERLOAD, "under zero"),
    HID_OVER_WEIGHT: (Status.OVERLOAD, "over weight limit"),
    HID_NEEDS_CALIBRATION: (Status.FAULT, "the scale needs calibration"),
    HID_NEEDS_REZERO: (Status.FAULT, "the scale needs re-zeroing: empty the platter and press ZERO"),
}


def parse_hid_report(report: bytes) -> WeightReading:
    if len(report) != HID_REPORT_SIZE or report[0] != HID_REPORT_ID:
        raise FrameError(f"HID: not a scale data report (id 3, 6 bytes): {report!r}")
    _, status_code, unit_code, exponent, raw = struct.unpack("<BBBbH", report)
    if status_code not in _HID_STATUS:
        raise FrameError(f"HID: unknown scale status {status_code} in {report!r}")
    status, detail = _HID_STATUS[status_code]
    if status not in (Status.STABLE, Status.MOTION):
        return WeightReading(None, status, detail=detail)
    unit = HID_UNITS.get(unit_code)
    if unit is None:
        raise FrameError(f"HID: unknown weight unit {unit_code} in {report!r}")
    value = Decimal(raw).scaleb(exponent)
    return _reading(value, unit, status, detail)


def split_hid_reports(data: bytes) -> list[bytes]:
    """Reports read from a pipe that may hold several; a hidraw read returns exactly one."""
    if not data or len(data) % HID_REPORT_SIZE:
        raise FrameError(f"HID: {len(data)} bytes is not a whole number of 6-byte reports")
    return [data[i : i + HID_REPORT_SIZE] for i in range(0, len(data), HID_REPORT_SIZE)]


def encode_hid_report(status: int, unit: str, exponent: int, raw: int) -> bytes:
    return struct.pack("<BBBbH", HID_REPORT_ID, status, HID_UNIT_CODES[unit], exponent, raw)
