"""Scales: each wire protocol parsed as pure bytes, then each driver against its simulator on a
real pseudo-terminal (or, for USB HID, a FIFO standing in for /dev/hidraw)."""
from __future__ import annotations

import contextlib
import functools
import operator
import os
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from devices.scale_protocols import (
    FrameError,
    ProtocolError,
    Status,
    UnitError,
    WeightReading,
    encode_cas,
    encode_hid_report,
    encode_mtsics_weight,
    encode_nci,
    encode_toledo_weight,
    grams_to_unit,
    mtsics_split,
    nci_status_bytes,
    parse_cas,
    parse_cas_handshake,
    parse_hid_report,
    parse_mtsics,
    parse_nci,
    parse_toledo,
    split_hid_reports,
    to_grams,
    with_wrong_parity,
)
from devices.scale_simulator import ScaleSimulator
from devices.scales import (
    PROTOCOLS,
    ScaleCancelled,
    ScaleDisconnected,
    ScaleDriver,
    ScaleError,
    ScaleFault,
    ScaleFramingError,
    ScaleNoAnswer,
    ScaleOverload,
    ScaleUnderload,
    ScaleUnitError,
    ScaleUnstable,
    open_scale,
)

D = Decimal
LB = D("453.59237")  # exact, by definition; written out here, not taken from the module
OZ = D("28.349523125")


def _bcc(data: bytes) -> int:
    return functools.reduce(operator.xor, data, 0)


# =============================================================================================
# Units
# =============================================================================================


@pytest.mark.parametrize(
    ("value", "unit", "grams"),
    [
        ("1.234", "lb", "559.73298458"),  # 1.234 x 453.59237, every digit kept
        ("12.34", "LB", "5597.3298458"),
        ("1", "oz", "28.349523125"),
        ("16", "oz", "453.59237"),  # sixteen ounces are a pound, exactly
        ("1.5", "kg", "1500"),
        ("250", "mg", "0.25"),
        ("100.00", "g", "100"),
        ("-0.02", "g", "-0.02"),
    ],
)
def test_units_convert_to_grams_exactly(value: str, unit: str, grams: str) -> None:
    result = to_grams(D(value), unit)
    assert result == D(grams)
    assert isinstance(result, Decimal)


def test_unknown_unit_is_a_unit_error() -> None:
    with pytest.raises(UnitError, match="stone"):
        to_grams(D(1), "stone")


def test_grams_shown_in_a_unit_round_to_the_display() -> None:
    assert grams_to_unit(D("559.73298458"), "lb", 3) == D("1.234")
    assert grams_to_unit(D("1234.5"), "kg", 3) == D("1.234")  # half-even, as a display rounds


# =============================================================================================
# MT-SICS
# =============================================================================================


@pytest.mark.parametrize(
    ("frame", "status", "grams", "unit"),
    [
        (b"S S      100.00 g\r\n", Status.STABLE, "100.00", "g"),
        (b"S D      100.01 g\r\n", Status.MOTION, "100.01", "g"),
        (b"S S     1.23456 kg\r\n", Status.STABLE, "1234.56", "kg"),
        (b"S S       250.0 mg\r\n", Status.STABLE, "0.25", "mg"),
        (b"S S       1.234 lb\r\n", Status.STABLE, "559.73298458", "lb"),
        (b"S S        2.50 oz\r\n", Status.STABLE, "70.8738078125", "oz"),
        (b"S S       -0.02 g\r\n", Status.STABLE, "-0.02", "g"),
    ],
)
def test_mtsics_weights(frame: bytes, status: Status, grams: str, unit: str) -> None:
    reading = parse_mtsics(frame)
    assert reading.status is status
    assert reading.grams == D(grams)
    assert reading.raw_unit == unit


def test_mtsics_reading_keeps_the_raw_value_and_resolution() -> None:
    reading = parse_mtsics(b"S S       1.234 lb\r\n")
    assert reading == WeightReading(
        grams=D("559.73298458"),
        status=Status.STABLE,
        raw_value=D("1.234"),
        raw_unit="lb",
        division_g=D("0.45359237"),
    )
    assert reading.is_stable_weight


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        (b"S +\r\n", Status.OVERLOAD),
        (b"S -\r\n", Status.UNDERLOAD),
        (b"S I\r\n", Status.MOTION),
    ],
)
def test_mtsics_replies_without_weight(frame: bytes, status: Status) -> None:
    reading = parse_mtsics(frame)
    assert reading.status is status
    assert reading.grams is None
    assert not reading.is_stable_weight


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b"ES\r\n", "syntax error"),
        (b"ET\r\n", "transmission error"),
        (b"EL\r\n", "logical error"),
        (b"S S      100.00 g\n", "CR LF"),
        (b"S X      100.00 g\r\n", "not a weight reply"),
        (b"S S      1O0.00 g\r\n", "not a number"),
        (b"S S \xb1\xb0\xb0.00 g\r\n", "unexpected byte"),
        (b"\r\n", "not a weight reply"),
    ],
)
def test_mtsics_errors_and_garbage(frame: bytes, why: str) -> None:
    with pytest.raises(FrameError, match=why):
        parse_mtsics(frame)


def test_mtsics_unit_it_cannot_convert() -> None:
    with pytest.raises(UnitError):
        parse_mtsics(b"S S      100.00 tl\r\n")  # taels: several national definitions


def test_mtsics_split_waits_for_the_line_end() -> None:
    assert mtsics_split(b"S S  1.0") == (None, b"S S  1.0")
    assert mtsics_split(b"S S 1 g\r\nS D") == (b"S S 1 g\r\n", b"S D")


# =============================================================================================
# Mettler Toledo 8213 / 8217
# =============================================================================================


@pytest.mark.parametrize(
    ("frame", "options", "grams", "unit"),
    [
        (b"\x02012.34\r", {}, "5597.3298458", "lb"),  # two decimals: pounds (8217)
        (b"\x0201.234\r", {}, "1234", "kg"),  # three decimals: kilograms
        (b"\x02012.34\r", {"unit": "kg"}, "12340", "kg"),  # configured unit wins
        (b"\x0201234\r", {"unit": "lb", "implied_decimals": 2}, "5597.3298458", "lb"),
        (b"\x02001234\r", {"unit": "g"}, "1234", "g"),
        (b"\x02012.34N\r", {}, "5597.3298458", "lb"),  # net weight
    ],
)
def test_toledo_weights(frame: bytes, options: dict, grams: str, unit: str) -> None:
    reading = parse_toledo(frame, **options)
    assert reading.status is Status.STABLE
    assert reading.grams == D(grams)
    assert reading.raw_unit == unit


def test_toledo_net_weight_is_noted() -> None:
    assert parse_toledo(b"\x02012.34N\r").detail == "net weight"


@pytest.mark.parametrize(
    ("status_byte", "status"),
    [
        (0x41, Status.MOTION),  # "A": bit 0, motion
        (0xC1, Status.MOTION),  # the same with the even-parity bit 7 still on it
        (0x42, Status.OVERLOAD),  # "B": bit 1, over capacity
        (0x43, Status.OVERLOAD),  # over capacity and moving: over capacity wins
        (0x44, Status.UNDERLOAD),  # "D": bit 2, under zero
        (0x48, Status.FAULT),  # "H": bit 3, outside zero capture range
        (0x50, Status.MOTION),  # "P": center of zero only: no weight, ask again
    ],
)
def test_toledo_status_byte(status_byte: int, status: Status) -> None:
    reading = parse_toledo(bytes([0x02, ord("?"), status_byte, 0x0D]))
    assert reading.status is status
    assert reading.grams is None


@pytest.mark.parametrize(
    "frame",
    [
        b"012.34\r",  # no STX
        b"\x02012.34",  # no CR
        b"\x02?1\r",  # bit 6 of the status byte must be set
        b"\x02?AA\r",
        b"\x0201x.34\r",
        b"\x02\r",
        with_wrong_parity(b"\x02012.34\r"),  # a 7E1 scale read as 8N1
    ],
)
def test_toledo_garbage(frame: bytes) -> None:
    with pytest.raises(FrameError):
        parse_toledo(frame)


def test_toledo_needs_a_unit_when_the_frame_cannot_tell() -> None:
    with pytest.raises(UnitError, match="decimal point"):
        parse_toledo(b"\x0201234\r")
    with pytest.raises(UnitError, match="unit"):
        parse_toledo(b"\x020123.4\r")


# =============================================================================================
# NCI / SCP-01
# =============================================================================================


@pytest.mark.parametrize(
    ("frame", "status", "grams", "unit"),
    [
        (b"\n  1.234lb\r\nS00\r\x03", Status.STABLE, "559.73298458", "lb"),
        (b"\n  1.234lb\r\n00\r\x03", Status.STABLE, "559.73298458", "lb"),  # without "S"
        (b"\n  1.234LB\r\n00\r\x03", Status.STABLE, "559.73298458", "lb"),  # upper case unit
        (b"\n  1.234lb\r\nS10\r\x03", Status.MOTION, "559.73298458", "lb"),  # byte 1 bit 0
        (b"\n  0.000kg\r\nS20\r\x03", Status.STABLE, "0", "kg"),  # byte 1 bit 1: at zero
        (b"\n 1lb 2.5oz\r\nS00\r\x03", Status.STABLE, "524.4661778125", "oz"),
        (b"\n -0.010kg\r\nS00\r\x03", Status.STABLE, "-10", "kg"),
        (b"\n  1.234kg\r\nS0p4\r\x03", Status.STABLE, "1234", "kg"),  # 3 status bytes, net
    ],
)
def test_nci_weights(frame: bytes, status: Status, grams: str, unit: str) -> None:
    reading = parse_nci(frame)
    assert reading.status is status
    assert reading.grams == D(grams)
    assert reading.raw_unit == unit


@pytest.mark.parametrize(
    ("frame", "status", "detail"),
    [
        (b"\nS02\r\x03", Status.OVERLOAD, "over capacity"),  # byte 2 bit 1
        (b"\nS01\r\x03", Status.UNDERLOAD, "under capacity"),  # byte 2 bit 0
        (b"\n-------lb\r\nS02\r\x03", Status.OVERLOAD, "over capacity"),  # dashes, not a number
        (b"\nS10\r\x03", Status.MOTION, "in motion"),
        (b"\nS40\r\x03", Status.FAULT, "RAM error"),  # byte 1 bit 2
        (b"\nS08\r\x03", Status.FAULT, "faulty calibration"),  # byte 2 bit 3
        (b"\nS00\r\x03", Status.MOTION, "no weight"),  # status only: ask again
    ],
)
def test_nci_status_only_replies(frame: bytes, status: Status, detail: str) -> None:
    reading = parse_nci(frame)
    assert reading.status is status
    assert reading.grams is None
    assert detail in reading.detail


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b"\n?\r\x03", "did not recognise"),
        (b"\n  1.234lb\r\nSAB\r\x03", "status bytes"),  # bits 4 and 5 must be set
        (b"\n  1.234lb\r\nS0p\r\x03", "chain"),  # "another byte follows", but none does
        (b"\n  1.234lb\r\nS000\r\x03", "chain"),  # a third byte nobody announced
        (b"\n  1.2x4lb\r\nS00\r\x03", "not a weight"),
        (b"  1.234lb\r\nS00\r\x03", "<LF>"),
        (b"\n  1.234lb\r\nS00\x03", "<LF>"),
        (with_wrong_parity(b"\n  1.234lb\r\nS00\r\x03"), "<LF>"),
    ],
)
def test_nci_garbage(frame: bytes, why: str) -> None:
    with pytest.raises(FrameError, match=why):
        parse_nci(frame)


def test_nci_status_bytes_follow_the_spec_layout() -> None:
    assert nci_status_bytes() == b"00"
    assert nci_status_bytes(motion=True, at_zero=True) == b"30"
    assert nci_status_bytes(under=True) == b"01"
    assert nci_status_bytes(over=True) == b"02"


# =============================================================================================
# CAS ENQ/ACK/DC1
# =============================================================================================


def _cas(data: bytes, *, soh: int = 0x01) -> bytes:
    return bytes([soh, 0x02]) + data + bytes([_bcc(data), 0x03, 0x04])


@pytest.mark.parametrize(
    ("frame", "status", "grams", "unit"),
    [
        (_cas(b"S 01.234kg"), Status.STABLE, "1234", "kg"),
        (_cas(b"U 01.234kg"), Status.MOTION, "1234", "kg"),
        (_cas(b"S-00.010kg"), Status.STABLE, "-10", "kg"),
        (_cas(b"S 02.500lb"), Status.STABLE, "1133.980925", "lb"),
        (_cas(b"S 1234.5g "), Status.STABLE, "1234.5", "g"),
        (_cas(b"S 01.234kg", soh=0x81), Status.STABLE, "1234", "kg"),  # SOH with bit 7 set
    ],
)
def test_cas_weights(frame: bytes, status: Status, grams: str, unit: str) -> None:
    reading = parse_cas(frame)
    assert reading.status is status
    assert reading.grams == D(grams)
    assert reading.raw_unit == unit


def test_cas_frame_layout_and_checksum() -> None:
    frame = encode_cas(stable=True, sign=" ", weight_text="01.234", unit="kg")
    assert frame == b"\x01\x02S 01.234kg\x65\x03\x04"


def test_cas_overflow() -> None:
    reading = parse_cas(_cas(b"SF------kg"))
    assert reading.status is Status.OVERLOAD
    assert reading.grams is None


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (_cas(b"S 01.234kg")[:-3] + b"\x00\x03\x04", "checksum"),
        (_cas(b"S 01.234kg")[:-1], "ETX EOT"),
        (_cas(b"X 01.234kg"), "bad status"),
        (_cas(b"S 01.2x4kg"), "not a weight"),
        (b"\x02S 01.234kg\x65\x03\x04", "SOH STX"),
        (with_wrong_parity(_cas(b"S 01.234kg")), "SOH STX"),
    ],
)
def test_cas_garbage(frame: bytes, why: str) -> None:
    with pytest.raises(FrameError, match=why):
        parse_cas(frame)


def test_cas_handshake() -> None:
    assert parse_cas_handshake(b"\x06") is True
    assert parse_cas_handshake(b"\x15") is False
    with pytest.raises(FrameError, match="ACK or NAK"):
        parse_cas_handshake(b"\x86")


# =============================================================================================
# USB HID POS scale
# =============================================================================================


@pytest.mark.parametrize(
    ("report", "status", "grams", "unit"),
    [
        (b"\x03\x04\x0c\xfe\xd2\x04", Status.STABLE, "5597.3298458", "lb"),  # 1234 x 10^-2 lb
        (b"\x03\x04\x0b\xff\x34\x19", Status.STABLE, "18291.11232025", "oz"),  # Dymo: 645.2 oz
        (b"\x03\x04\x02\x00\x14\x00", Status.STABLE, "20", "g"),
        (b"\x03\x04\x03\xfd\xd2\x04", Status.STABLE, "1234", "kg"),
        (b"\x03\x02\x02\x00\x00\x00", Status.STABLE, "0", "g"),  # stable at zero
        (b"\x03\x03\x02\x00\x14\x00", Status.MOTION, "20", "g"),
    ],
)
def test_hid_reports(report: bytes, status: Status, grams: str, unit: str) -> None:
    reading = parse_hid_report(report)
    assert reading.status is status
    assert reading.grams == D(grams)
    assert reading.raw_unit == unit


@pytest.mark.parametrize(
    ("status_code", "status"),
    [
        (1, Status.FAULT),
        (5, Status.UNDERLOAD),
        (6, Status.OVERLOAD),
        (7, Status.FAULT),
        (8, Status.FAULT),
    ],
)
def test_hid_statuses_without_weight(status_code: int, status: Status) -> None:
    reading = parse_hid_report(bytes([3, status_code, 2, 0, 0, 0]))
    assert reading.status is status
    assert reading.grams is None


@pytest.mark.parametrize(
    "report",
    [
        b"\x03\x04\x02\x00\x14",  # five bytes
        b"\x03\x04\x02\x00\x14\x00\x00",  # seven
        b"\x02\x04\x02\x00\x14\x00",  # another report id
        b"\x03\x09\x02\x00\x14\x00",  # no such status
        b"\x03\x04\x00\x00\x14\x00",  # no such unit
        b"",
    ],
)
def test_hid_garbage(report: bytes) -> None:
    with pytest.raises(FrameError):
        parse_hid_report(report)


def test_hid_taels_cannot_be_converted() -> None:
    with pytest.raises(UnitError):
        parse_hid_report(b"\x03\x04\x05\x00\x14\x00")


def test_hid_reports_from_a_pipe_are_split() -> None:
    one = encode_hid_report(4, "g", 0, 20)
    assert one == b"\x03\x04\x02\x00\x14\x00"
    assert split_hid_reports(one * 3) == [one, one, one]
    with pytest.raises(FrameError):
        split_hid_reports(one + b"\x03")


# =============================================================================================
# Every parser, every byte string: a reading or a ProtocolError, never anything else
# =============================================================================================

PARSERS = [parse_mtsics, parse_toledo, parse_nci, parse_cas, parse_hid_report, parse_cas_handshake]


@pytest.mark.parametrize("parse", PARSERS, ids=lambda p: p.__name__)
@given(data=st.binary(max_size=40))
def test_parsers_never_crash_on_noise(parse, data: bytes) -> None:
    try:
        result = parse(data)
    except ProtocolError:
        return
    assert isinstance(result, (WeightReading, bool))


_amounts = st.tuples(st.integers(min_value=0, max_value=99999), st.integers(min_value=0, max_value=3))


@given(amount=_amounts, stable=st.booleans(), unit=st.sampled_from(["g", "kg", "lb", "oz"]))
def test_mtsics_round_trip(amount: tuple[int, int], stable: bool, unit: str) -> None:
    value = D(amount[0]).scaleb(-amount[1])
    reading = parse_mtsics(encode_mtsics_weight(value, unit, stable=stable))
    assert reading.raw_value == value
    assert reading.grams == value * {"g": 1, "kg": 1000, "lb": LB, "oz": OZ}[unit]
    assert reading.status is (Status.STABLE if stable else Status.MOTION)


@given(amount=_amounts.filter(lambda a: a[1] in (2, 3)))
def test_toledo_round_trip(amount: tuple[int, int]) -> None:
    value = D(amount[0]).scaleb(-amount[1])
    reading = parse_toledo(encode_toledo_weight(value, amount[1]))
    assert reading.raw_value == value
    assert reading.raw_unit == ("lb" if amount[1] == 2 else "kg")


@given(amount=_amounts, motion=st.booleans())
def test_nci_round_trip(amount: tuple[int, int], motion: bool) -> None:
    value = D(amount[0]).scaleb(-amount[1])
    frame = encode_nci(f"{value:>7}kg", nci_status_bytes(motion=motion))
    reading = parse_nci(frame)
    assert reading.grams == value * 1000
    assert reading.status is (Status.MOTION if motion else Status.STABLE)


@given(amount=_amounts.filter(lambda a: a[1] > 0), stable=st.booleans())
def test_cas_round_trip(amount: tuple[int, int], stable: bool) -> None:
    value = D(amount[0]).scaleb(-amount[1])
    reading = parse_cas(encode_cas(stable=stable, sign=" ", weight_text=f"{value:06}", unit="kg"))
    assert reading.grams == value * 1000


@given(raw=st.integers(min_value=0, max_value=0xFFFF), exponent=st.integers(min_value=-4, max_value=2))
def test_hid_round_trip(raw: int, exponent: int) -> None:
    reading = parse_hid_report(encode_hid_report(4, "lb", exponent, raw))
    assert reading.grams == D(raw).scaleb(exponent) * LB


# =============================================================================================
# Drivers against simulators
# =============================================================================================

# What each simulated scale shows, and a weight it can show exactly.
CASES = {
    "mt-sics": {"unit": "g", "decimals": 2, "grams": D("1234.56")},
    "toledo-8213": {"unit": "lb", "decimals": 2, "grams": D("12.34") * LB},
    "nci": {"unit": "lb", "decimals": 3, "grams": D("1.234") * LB},
    "cas": {"unit": "kg", "decimals": 3, "grams": D("1234")},
    "hid": {"unit": "oz", "decimals": 1, "grams": D("35.2") * OZ},
}
SHORT = 0.2  # seconds: every "waits until the timeout" test below takes about this long


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


class Bench:
    """Starts simulators and opens drivers, and closes all of them afterwards."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack

    def simulator(self, protocol: str, **overrides) -> ScaleSimulator:
        case = {**CASES[protocol], **overrides}
        sim = ScaleSimulator(protocol, case["grams"], case["unit"], decimals=case["decimals"])
        self._stack.enter_context(sim)
        return sim

    def driver(self, protocol: str, path: str, **options) -> ScaleDriver:
        return self._stack.enter_context(open_scale(protocol, path, timeout_s=SHORT, **options))

    def pair(self, protocol: str, **overrides) -> tuple[ScaleSimulator, ScaleDriver]:
        sim = self.simulator(protocol, **overrides)
        return sim, self.driver(protocol, sim.path)


@pytest.fixture
def bench() -> Iterator[Bench]:
    """…and checks that no thread or file descriptor outlives the test."""
    threads, fds = set(threading.enumerate()), _open_fds()
    with contextlib.ExitStack() as stack:
        yield Bench(stack)
    assert set(threading.enumerate()) == threads
    assert _open_fds() == fds


all_protocols = pytest.mark.parametrize("protocol", PROTOCOLS)


@contextlib.contextmanager
def _takes(at_least: float, at_most: float) -> Iterator[None]:
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert at_least <= elapsed < at_most, f"took {elapsed:.3f} s"


@all_protocols
def test_reads_the_stable_weight_that_was_set(bench: Bench, protocol: str) -> None:
    sim, scale = bench.pair(protocol)
    reading = scale.read_stable(SHORT)
    assert reading.status is Status.STABLE
    assert reading.grams == CASES[protocol]["grams"]
    assert reading.raw_unit == CASES[protocol]["unit"]

    sim.set_weight(D(2) * CASES[protocol]["grams"])
    assert scale.read_stable(SHORT).grams == D(2) * CASES[protocol]["grams"]


@all_protocols
def test_motion_for_too_long_is_unstable(bench: Bench, protocol: str) -> None:
    sim, scale = bench.pair(protocol)
    sim.set_motion(True)
    with _takes(SHORT - 0.05, SHORT + 0.25), pytest.raises(ScaleUnstable) as raised:
        scale.read_stable(SHORT)
    assert "keep the parcel still" in raised.value.message
    assert scale.read_once().status is Status.MOTION


@all_protocols
def test_motion_that_settles_gives_the_stable_weight(bench: Bench, protocol: str) -> None:
    sim, scale = bench.pair(protocol)
    sim.set_motion(True, settle_after_s=0.2)
    with _takes(0.15, 1.0):
        reading = scale.read_stable(1.0)
    assert reading.status is Status.STABLE
    assert reading.grams == CASES[protocol]["grams"]


@all_protocols
def test_overload(bench: Bench, protocol: str) -> None:
    sim, scale = bench.pair(protocol)
    sim.set_overload()
    with _takes(0, SHORT), pytest.raises(ScaleOverload, match="over capacity"):
        scale.read_stable(SHORT)  # no point waiting: the clerk must act
    sim.set_overload(False)
    assert scale.read_stable(SHORT).grams == CASES[protocol]["grams"]


@all_protocols
def test_underload(bench: Bench, protocol: str) -> None:
    sim, scale = bench.pair(protocol)
    sim.set_underload()
    with pytest.raises(ScaleUnderload, match="press ZERO"):
        scale.read_stable(SHORT)


@all_protocols
def test_silent_scale_does_not_answer_within_the_timeout(bench: Bench, protocol: str) -> None:
    sim, scale = bench.pair(protocol)
    sim.set_silent()
    with _takes(SHORT - 0.05, SHORT + 0.2), pytest.raises(ScaleNoAnswer) as raised:
        scale.read_stable(SHORT)
    assert raised.value.message == (
        f"Scale on {sim.path} did not answer within 0.2 s: check that it is switched on and "
        "that the cable and port are right"
    )


@all_protocols
def test_garbage_is_a_framing_error(bench: Bench, protocol: str) -> None:
    sim, scale = bench.pair(protocol)
    sim.set_garbage()
    with _takes(0, SHORT + 0.25), pytest.raises(ScaleFramingError) as raised:
        scale.read_stable(SHORT)
    assert "cannot read" in raised.value.message
    if protocol != "hid":
        assert "check baud rate and framing (8N1/7E1)" in raised.value.message
    sim.set_garbage(False)
    assert scale.read_stable(SHORT).grams == CASES[protocol]["grams"]


@all_protocols
def test_unplugged_scale_is_disconnected(bench: Bench, protocol: str) -> None:
    sim, scale = bench.pair(protocol)
    assert scale.read_stable(SHORT).is_stable_weight
    sim.stop()
    with pytest.raises(ScaleDisconnected, match="disconnected"):
        scale.read_stable(SHORT)


@all_protocols
def test_missing_port_cannot_be_opened(bench: Bench, protocol: str) -> None:
    with pytest.raises(ScaleDisconnected, match="Could not open .*/dev/no-such-scale"):
        open_scale(protocol, "/dev/no-such-scale")


@all_protocols
def test_closed_driver_refuses_to_weigh(bench: Bench, protocol: str) -> None:
    _, scale = bench.pair(protocol)
    scale.close()
    scale.close()  # twice is fine
    assert scale.closed
    with pytest.raises(ScaleDisconnected, match="closed"):
        scale.read_stable(SHORT)


def test_cancel_ends_the_wait(bench: Bench) -> None:
    sim, scale = bench.pair("mt-sics")
    sim.set_motion(True)
    cancel = threading.Event()
    timer = threading.Timer(0.1, cancel.set)
    timer.start()
    try:
        with _takes(0.05, 0.5), pytest.raises(ScaleCancelled):
            scale.read_stable(5.0, cancel=cancel)
    finally:
        timer.join()


def test_seven_bit_even_parity_framing(bench: Bench) -> None:
    sim = bench.simulator("toledo-8213")
    scale = bench.driver("toledo-8213", sim.path, framing="7E1", baudrate=2400)
    assert scale.read_stable(SHORT).grams == CASES["toledo-8213"]["grams"]


def test_toledo_in_grams_needs_the_unit_set(bench: Bench) -> None:
    sim = bench.simulator("toledo-8213", unit="g", decimals=0, grams=D(1234))
    with bench.driver("toledo-8217", sim.path) as unset:
        with pytest.raises(ScaleUnitError, match="set the scale to g, kg, lb or oz"):
            unset.read_stable(SHORT)
    scale = bench.driver("toledo-8217", sim.path, unit="g")
    assert scale.read_stable(SHORT).grams == D(1234)


def test_mtsics_simulator_answers_s_si_and_unknown_commands(bench: Bench) -> None:
    sim = bench.simulator("mt-sics", grams=D("100"))
    with serial.Serial(sim.path, timeout=0.5) as port:
        port.write(b"S\r\n")
        assert port.read_until(b"\n") == b"S S     100.00 g\r\n"
        sim.set_motion(True)
        port.write(b"S\r\n")
        assert port.read_until(b"\n") == b"S I\r\n"
        port.write(b"SI\r\n")
        assert port.read_until(b"\n").startswith(b"S D ")
        port.write(b"XYZ\r\n")
        assert port.read_until(b"\n") == b"ES\r\n"
    assert sim.received == [b"S", b"S", b"SI", b"XYZ"]


def test_nci_simulator_rejects_unknown_commands(bench: Bench) -> None:
    sim = bench.simulator("nci")
    with serial.Serial(sim.path, timeout=0.5) as port:
        port.write(b"Q\r")
        assert port.read_until(b"\x03") == b"\n?\r\x03"


def test_simulator_stop_is_clean_even_when_never_used(bench: Bench) -> None:
    for protocol in PROTOCOLS:
        sim = ScaleSimulator(protocol, D(1), CASES[protocol]["unit"]).start()
        assert sim.running
        sim.stop()
        assert not sim.running


def test_protocol_names_and_bad_settings() -> None:
    assert PROTOCOLS == ("mt-sics", "toledo-8213", "nci", "cas", "hid")
    with pytest.raises(ValueError, match="unknown scale protocol"):
        open_scale("sartorius", "/dev/ttyS0")
    with pytest.raises(ValueError, match="framing"):
        open_scale("nci", "/dev/ttyS0", framing="9X1")
    with pytest.raises(ValueError, match="toledo"):
        open_scale("nci", "/dev/ttyS0", unit="kg")


@pytest.mark.parametrize(
    "error",
    [
        ScaleNoAnswer("/dev/ttyS0", 2.0),
        ScaleUnstable("/dev/ttyS0", 2.0),
        ScaleOverload("/dev/ttyS0"),
        ScaleUnderload("/dev/ttyS0"),
        ScaleFault("/dev/ttyS0", "RAM error"),
        ScaleFramingError("/dev/ttyS0", "noise", "check baud rate and framing (8N1/7E1)"),
        ScaleUnitError("/dev/ttyS0", "taels"),
        ScaleDisconnected("The scale on /dev/ttyS0 was disconnected"),
        ScaleCancelled("/dev/ttyS0"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_carry_a_message_for_the_clerk(error: ScaleError) -> None:
    assert isinstance(error, ScaleError)
    assert error.message == str(error)
    assert "/dev/ttyS0" in error.message


def test_no_answer_message_names_port_and_timeout() -> None:
    assert ScaleNoAnswer("/dev/ttyX", 2.0).message == (
        "Scale on /dev/ttyX did not answer within 2.0 s: check that it is switched on and that "
        "the cable and port are right"
    )
