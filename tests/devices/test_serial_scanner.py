"""The serial scanner reader against a scanner simulated on a real pty: framings, terminators,
line noise, unplug and replug under a new path, the USB locator, stopping, latency."""
from __future__ import annotations

import logging
import os
import statistics
import termios
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from devices.scanner_simulator import ScannerSimulator, ScannerUnplugged, measure_scan_latency
from devices.serial_scanner import (
    MSG_DISCONNECTED,
    Frame,
    Rejected,
    ScanFramer,
    SerialScannerConfig,
    SerialScannerReader,
    find_port_by_usb,
)

GS = chr(29)
ASCII_CODES = [
    "RMA-2024-000123",
    "04012345678901",  # a GTIN-14
    f"0104012345678901" f"21SN-77A{GS}10LOT42{GS}17270131",  # GS1: GTIN, serial, lot, expiry
    "1Z999AA10123456784",
    "7",
]
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05}


class Collector:
    """Thread-safe record of what a reader reported; tests wait on it, never sleep."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.codes: list[str] = []
        self.received_at_ns: list[int] = []
        self.statuses: list[tuple[str, str]] = []

    def on_scan(self, code: str, received_at_ns: int) -> None:
        with self._cond:
            self.codes.append(code)
            self.received_at_ns.append(received_at_ns)
            self._cond.notify_all()

    def on_status(self, status: str, message: str) -> None:
        with self._cond:
            self.statuses.append((status, message))
            self._cond.notify_all()

    def status_names(self) -> list[str]:
        with self._cond:
            return [s for s, _ in self.statuses]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
        with self._cond:
            ok = self._cond.wait_for(predicate, timeout)
        assert ok, f"timed out; codes={self.codes!r} statuses={self.statuses!r}"

    def wait_codes(self, n: int) -> None:
        self.wait_for(lambda: len(self.codes) >= n)

    def wait_status(self, status: str, count: int = 1) -> None:
        self.wait_for(lambda: [s for s, _ in self.statuses].count(status) >= count)


def scanner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("scanner-")]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@contextmanager
def running(reader: SerialScannerReader) -> Iterator[SerialScannerReader]:
    reader.start()
    try:
        yield reader
    finally:
        assert reader.stop(timeout=2.0), "reader thread did not stop"
        assert not reader.is_connected


def reader_for(
    sim: ScannerSimulator, collector: Collector, **config: object
) -> SerialScannerReader:
    return SerialScannerReader(
        SerialScannerConfig(port=sim.path, **config),  # type: ignore[arg-type]
        collector.on_scan,
        collector.on_status,
        **FAST,
    )


def pty_takes_7e1() -> bool:
    """Whether this kernel lets a pty be set to 7 data bits with parity (Linux 6.x: no; it keeps
    CS8 and no parity, and glibc's tcsetattr reports EINVAL)."""
    master, slave = os.openpty()
    try:
        attrs = termios.tcgetattr(slave)
        attrs[2] = (attrs[2] & ~termios.CSIZE) | termios.CS7 | termios.PARENB
        try:
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
        except termios.error:
            return False
        cflag = termios.tcgetattr(slave)[2]
        return cflag & termios.CSIZE == termios.CS7 and bool(cflag & termios.PARENB)
    finally:
        os.close(master)
        os.close(slave)


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    fds = open_fds()
    yield
    assert scanner_threads() == []
    assert open_fds() - fds == set(), "file descriptors leaked"


# --- reading through a real pty ------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["8N1", "7E1"])
@pytest.mark.parametrize("terminator", ["CR", "LF", "CRLF"])
def test_reads_every_code_exactly(terminator: str, framing: str) -> None:
    codes = ASCII_CODES + (["Crème brûlée ÿ"] if framing == "8N1" else [])
    collector = Collector()
    # Byte by byte with jitter, so frames and terminators (CR then LF) straddle reads.
    with ScannerSimulator(
        terminator=terminator, framing=framing, inter_char_s=0.0002, jitter_s=0.0003, seed=7
    ) as sim:
        with running(reader_for(sim, collector, terminator=terminator, framing=framing)) as reader:
            collector.wait_status("connected")
            for code in codes:
                sim.send(code)
            collector.wait_codes(len(codes))
            assert reader.port_path == sim.path
            if framing == "7E1":
                # The simulator puts the even-parity bit in bit 7, as 7E1 looks on an 8N1 line;
                # a pty refuses 7 bits, so the reader reads 8N1 and clears bit 7 itself.
                assert reader.framing_in_effect == ("7E1" if pty_takes_7e1() else "8N1")
            else:
                assert reader.framing_in_effect == "8N1"
    assert collector.codes == codes == sim.sent
    assert GS in collector.codes[2]
    assert collector.status_names() == ["connecting", "connected"]
    assert collector.received_at_ns == sorted(collector.received_at_ns)


def test_crlf_scanner_on_a_cr_or_lf_reader_gives_no_stray_characters() -> None:
    for configured in ("CR", "LF"):
        collector = Collector()
        with ScannerSimulator(terminator="CRLF") as sim:
            with running(reader_for(sim, collector, terminator=configured)):
                collector.wait_status("connected")
                for code in ASCII_CODES:
                    sim.send(code)
                collector.wait_codes(len(ASCII_CODES))
        assert collector.codes == ASCII_CODES, configured
        assert "error" not in collector.status_names()


def test_line_noise_between_codes_is_reported_and_the_codes_around_it_arrive() -> None:
    collector = Collector()
    noise = b"\x00\x00\xff\x13\x11\x1b[2J\x07\r"  # NUL, XOFF/XON, an escape sequence, BEL
    with ScannerSimulator(["A-1", "B-2", "C-3"], garbage=noise) as sim:
        with running(reader_for(sim, collector)) as reader:
            collector.wait_status("connected")
            sim.play()
            assert sim.wait_played()
            sim.send_garbage(b"\r\r\n\n\r")  # empty frames: ignored, not reported
            sim.send_garbage(b"\xfe\x00junk\r")
            sim.send("D-4")
            collector.wait_codes(4)
            collector.wait_status("error", 3)
            assert reader.is_connected
    assert collector.codes == ["A-1", "B-2", "C-3", "D-4"]
    errors = [m for s, m in collector.statuses if s == "error"]
    assert len(errors) == 3
    assert all("noise" in m for m in errors)


def test_overlong_frames_are_dropped_whole_and_reported() -> None:
    collector = Collector()
    with ScannerSimulator() as sim:
        with running(reader_for(sim, collector, max_scan_length=64)):
            collector.wait_status("connected")
            sim.send("OK-1")
            sim.send("X" * 65)
            # A scanner set to the wrong terminator: thousands of bytes, no CR, then one.
            for _ in range(40):
                sim.send_garbage(b"Z" * 100)
            sim.send("")  # its CR
            sim.send("Y" * 64)
            sim.send("OK-2")
            collector.wait_codes(3)
            collector.wait_status("error", 2)
    assert collector.codes == ["OK-1", "Y" * 64, "OK-2"]
    errors = [m for s, m in collector.statuses if s == "error"]
    assert len(errors) == 2
    assert all("longer than 64" in m and "CR" in m for m in errors)


def test_framer_is_pure_over_bytes() -> None:
    framer = ScanFramer(b"\r\n", 8)
    assert framer.feed(b"AB\r") == []
    assert framer.feed(b"\nCD") == [Frame(b"AB")]  # CRLF split across two reads
    assert framer.pending == b"CD"
    framer.reset()  # unplugged mid-frame: the half frame is gone
    assert framer.feed(b"EF\r\n") == [Frame(b"EF")]
    assert framer.feed(b"123456789") == [Rejected("overlong", 9)]
    assert framer.feed(b"0123456789\r") == []  # still the same overlong frame, reported once
    assert framer.feed(b"\nGH\r\n") == [Frame(b"GH")]
    seven = ScanFramer(b"\r", 16, seven_bit=True)
    # "A" with its even-parity bit set, "B" without, and CR with its parity bit
    assert seven.feed(bytes([0xC1, 0x42, 0x8D])) == [Frame(b"AB")]
    with pytest.raises(ValueError):
        SerialScannerConfig(port="/dev/ttyACM0", framing="9N1")
    with pytest.raises(ValueError):
        SerialScannerConfig(port="/dev/ttyACM0", terminator="ETX")


# --- unplug and replug ---------------------------------------------------------------------------


def follow_link(sim: ScannerSimulator, seen: list[str | None]) -> Callable[..., str | None]:
    # A pty is not a USB device: it has no sysfs entry, so no vid or serial number, and
    # find_port_by_usb cannot see it. This is the one stand-in: a locator that follows the
    # simulator's by-id-like symlink to wherever the scanner is now (None while unplugged).
    def locate(config: SerialScannerConfig) -> str | None:
        try:
            path: str | None = os.path.realpath(sim.link_path, strict=True)
        except OSError:
            path = None
        seen.append(path)
        return path

    return locate


def test_unplug_mid_stream_and_replug_under_a_new_path_delivers_each_code_once() -> None:
    codes = [f"RMA-{i:06d}" for i in range(50)]
    collector = Collector()
    located: list[str | None] = []
    with ScannerSimulator() as sim:
        reader = SerialScannerReader(
            SerialScannerConfig(port=None, terminator="CR"),
            collector.on_scan,
            collector.on_status,
            locate=follow_link(sim, located),
            **FAST,
        )
        with running(reader):
            collector.wait_status("connected")
            first_path = sim.path
            assert reader.port_path == first_path
            for code in codes[:25]:
                sim.send(code)
            sim.send_garbage(b"RMA-0000")  # the cable comes out in the middle of a scan
            assert sim.wait_drained()  # ... after the reader has read that half scan
            collector.wait_codes(25)
            sim.unplug()
            collector.wait_status("disconnected")
            assert not reader.is_connected
            assert not os.path.exists(first_path)
            with pytest.raises(ScannerUnplugged):
                sim.send("lost")  # a trigger while unplugged reaches nobody
            time.sleep(0.2)  # the scanner stays unplugged for a while: the scenario, not a wait
            new_path = sim.replug()
            assert new_path != first_path
            collector.wait_status("connected", 2)
            assert reader.port_path == new_path
            for code in codes[25:]:
                sim.send(code)
            collector.wait_codes(50)
    assert collector.codes == codes == sim.sent  # the half scan "RMA-0000" never merged in
    assert sim.interrupted == ["lost"]
    assert collector.status_names() == ["connecting", "connected", "disconnected", "connected"]
    assert ("disconnected", MSG_DISCONNECTED) in collector.statuses
    assert None in located  # looked while unplugged, and kept looking with backoff
    assert located[-1] == new_path


def test_unplug_right_after_a_burst_loses_only_an_unread_tail_never_duplicates() -> None:
    # On Linux the hang-up discards bytes the reader had not read yet, as on a real USB unplug;
    # what was read is delivered once and in order, and the stream resumes after the replug.
    before = [f"B-{i:03d}" for i in range(30)]
    after = [f"A-{i:03d}" for i in range(10)]
    collector = Collector()
    with ScannerSimulator() as sim:
        reader = SerialScannerReader(
            SerialScannerConfig(), collector.on_scan, collector.on_status,
            locate=follow_link(sim, []), **FAST,
        )
        with running(reader):
            collector.wait_status("connected")
            for code in before:
                sim.send(code)
            sim.unplug()
            collector.wait_status("disconnected")
            sim.replug()
            collector.wait_status("connected", 2)
            for code in after:
                sim.send(code)
            collector.wait_for(lambda: collector.codes[-1:] == after[-1:])
    got = collector.codes
    k = len(got) - len(after)
    assert 0 <= k <= len(before)
    assert got == before[:k] + after


def test_reader_waits_for_a_scanner_plugged_in_after_it_started() -> None:
    collector = Collector()
    located: list[str | None] = []
    sim = ScannerSimulator()
    reader = SerialScannerReader(
        SerialScannerConfig(), collector.on_scan, collector.on_status,
        locate=lambda config: follow_link(sim, located)(config) if sim.plugged_in else None,
        **FAST,
    )
    with running(reader):
        collector.wait_status("disconnected")
        with sim:
            collector.wait_status("connected")
            sim.send("HELLO")
            collector.wait_codes(1)
    assert collector.codes == ["HELLO"]
    assert collector.statuses[:2] == [
        ("connecting", "Looking for the scanner…"),
        ("disconnected", "Scanner not found — plug it in"),
    ]


@pytest.mark.logs_errors
def test_a_failing_callback_is_logged_and_reading_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    collector = Collector()

    def on_scan(code: str, at_ns: int) -> None:
        if code == "BOOM":
            raise RuntimeError("bug in the console")
        collector.on_scan(code, at_ns)

    with ScannerSimulator() as sim:
        reader = SerialScannerReader(
            SerialScannerConfig(port=sim.path), on_scan, collector.on_status, **FAST
        )
        with caplog.at_level(logging.ERROR, logger="devices.serial_scanner"), running(reader):
            collector.wait_status("connected")
            for code in ("ONE", "BOOM", "TWO"):
                sim.send(code)
            collector.wait_codes(2)
    assert collector.codes == ["ONE", "TWO"]
    assert "bug in the console" in caplog.text


# --- finding the scanner -------------------------------------------------------------------------


def usb_port(
    device: str, vid: int | None, pid: int | None, serial_number: str | None
) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial_number
    return info


def test_find_port_by_usb_matches_vendor_and_serial_number(tmp_path: Path) -> None:
    honeywell = 0x0C2E
    ports = [
        usb_port("/dev/ttyUSB0", 0x0403, 0x6001, "FT1"),
        usb_port("/dev/ttyACM1", honeywell, 0x0B61, "B2"),
        usb_port("/dev/ttyACM0", honeywell, 0x0B61, "A1"),
        usb_port("/dev/ttyS0", None, None, None),
    ]

    def find(**config: object) -> str | None:
        return find_port_by_usb(SerialScannerConfig(**config), ports)  # type: ignore[arg-type]

    assert find(usb_vid=honeywell, usb_serial="B2") == "/dev/ttyACM1"
    # Configured as ttyACM7, back as ttyACM0: found by its serial number.
    assert find(usb_vid=honeywell, usb_serial="A1", port="/dev/ttyACM7") == "/dev/ttyACM0"
    assert find(usb_vid=honeywell) == "/dev/ttyACM0"  # two of them, no serial: first by name
    assert find(usb_vid=honeywell, port="/dev/ttyACM1") == "/dev/ttyACM1"  # or the configured one
    assert find(usb_vid=0x0403) == "/dev/ttyUSB0"
    assert find(usb_vid=honeywell, usb_serial="ZZ") is None
    assert find(usb_vid=0x05E0) is None
    assert find_port_by_usb(SerialScannerConfig(usb_vid=honeywell), []) is None
    present = tmp_path / "ttyACM9"
    present.touch()
    assert find(usb_vid=0x05E0, port=str(present)) == str(present)  # falls back to the path
    assert find(usb_vid=0x05E0, port=str(tmp_path / "gone")) is None
    # The default list is this machine's real ports; no such scanner here.
    assert find_port_by_usb(SerialScannerConfig(usb_vid=0xFFFE, usb_serial="no-such")) is None


# --- stopping ------------------------------------------------------------------------------------


def test_stop_is_prompt_while_reading_and_while_waiting_to_retry() -> None:
    collector = Collector()
    with ScannerSimulator() as sim:
        reader = reader_for(sim, collector)
        reader.start()
        collector.wait_status("connected")
        assert scanner_threads()
        started = time.monotonic()
        assert reader.stop(timeout=1.0)
        assert time.monotonic() - started < 1.0
        assert not reader.is_connected and reader.port_path is None
        assert scanner_threads() == []

    waiting = SerialScannerReader(
        SerialScannerConfig(port="/dev/no-such-scanner"), collector.on_scan, collector.on_status,
        backoff_initial_s=30.0, backoff_max_s=30.0,
    )
    waiting.start()
    collector.wait_status("disconnected")
    started = time.monotonic()
    assert waiting.stop(timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert scanner_threads() == []


# --- latency -------------------------------------------------------------------------------------


def test_measure_scan_latency_gives_one_positive_figure_per_scan() -> None:
    latencies = measure_scan_latency(30)
    assert len(latencies) == 30
    assert all(0.0 < ms < 1000.0 for ms in latencies)
    assert statistics.median(latencies) < 50.0
