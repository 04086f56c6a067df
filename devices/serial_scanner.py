"""A serial (USB-CDC or RS-232) barcode scanner: frames over bytes, and a reader that survives
unplugs.

Two layers, as in the rest of ``devices/``:

* :class:`ScanFramer` is the wire protocol as a pure object over bytes: it splits a byte stream on
  the configured terminator and decides what is a scan, what is line noise and what is too long.
  No port, no thread, no clock.
* :class:`SerialScannerReader` owns the port. It reads on its own ``threading.Thread`` with a short
  pyserial timeout (so :meth:`~SerialScannerReader.stop` is prompt), hands every completed frame to
  ``on_scan`` exactly once, and when the scanner is unplugged reports it, keeps looking for the
  scanner with exponential backoff (through ``locate``, because the device may come back under a
  different ``/dev`` path) and carries on.

Callbacks run on the reader thread. A Qt caller wraps them in a signal (queued to the GUI thread);
nothing here touches Qt.

What Linux does on an unplug (observed on Linux 6.18 with a pty whose master is closed while
pyserial holds the slave; the cdc-acm driver also hangs its tty up on a USB disconnect, so a real
scanner should take the same path, though that was not tried with hardware): the device node
disappears, the open descriptor is hung up, ``poll`` reports ``POLLIN|POLLERR|POLLHUP``, ``read``
returns 0 bytes, and pyserial raises ``SerialException("device reports readiness to read but
returned no data ...")``. Bytes the kernel had buffered but the reader had not yet read are
discarded by the hang-up; every frame whose terminator the reader had read is delivered.
"""
from __future__ import annotations

import errno
import logging
import os
import random
import select
import termios
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import serial
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

log = logging.getLogger(__name__)

TERMINATORS: dict[str, bytes] = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}

# framing name -> (bytesize, parity, stopbits) for pyserial
FRAMINGS: dict[str, tuple[int, str, float]] = {
    "8N1": (serial.EIGHTBITS, serial.PARITY_NONE, serial.STOPBITS_ONE),
    "7E1": (serial.SEVENBITS, serial.PARITY_EVEN, serial.STOPBITS_ONE),
}

# Control characters a barcode may legitimately carry: TAB (some scanners' field separator), EOT,
# and FS/GS/RS (GS1 and ISO/IEC 15434 separators; GS = chr(29) is the GS1 FNC1 separator).
_ALLOWED_CONTROLS = frozenset(b"\t\x04\x1c\x1d\x1e")
_NOISE_BYTES = frozenset(b for b in range(0x20) if b not in _ALLOWED_CONTROLS) | {0x7F}
_STRIP_7BIT = bytes(b & 0x7F for b in range(256))

STATUS_CONNECTING = "connecting"
STATUS_CONNECTED = "connected"
STATUS_DISCONNECTED = "disconnected"
STATUS_ERROR = "error"

MSG_DISCONNECTED = "Scanner disconnected — plug it back in; the console keeps what was scanned"
MSG_NOT_FOUND = "Scanner not found — plug it in"


@dataclass(frozen=True)
class SerialScannerConfig:
    """How to find and talk to one scanner.

    ``port`` is the device path (``/dev/ttyACM0``); ``usb_vid``/``usb_serial`` let the default
    locator find the scanner again after an unplug, whatever path it comes back under.
    ``encoding`` defaults to latin-1, which maps every byte to one character, so nothing a scanner
    sends is ever replaced or lost (GS arrives as ``chr(29)``; ``code.encode("latin-1")`` gives
    the bytes back). Other encodings decode with ``errors="replace"``.
    """

    port: str | None = None
    baudrate: int = 9600
    framing: str = "8N1"
    terminator: str = "CR"
    usb_vid: int | None = None
    usb_serial: str | None = None
    encoding: str = "latin-1"
    max_scan_length: int = 4096

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {sorted(FRAMINGS)}, not {self.framing!r}")
        if self.terminator not in TERMINATORS:
            raise ValueError(
                f"terminator must be one of {sorted(TERMINATORS)}, not {self.terminator!r}"
            )
        if self.baudrate <= 0:
            raise ValueError(f"baudrate must be positive, not {self.baudrate}")
        if self.max_scan_length <= 0:
            raise ValueError(f"max_scan_length must be positive, not {self.max_scan_length}")
        "".encode(self.encoding)  # LookupError for an unknown codec, at configuration time

    @property
    def terminator_bytes(self) -> bytes:
        return TERMINATORS[self.terminator]

    @property
    def seven_bit(self) -> bool:
        return FRAMINGS[self.framing][0] == serial.SEVENBITS


# --- the wire protocol, pure ---------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """A completed scan: the bytes between two terminators, CR/LF trimmed."""

    data: bytes


@dataclass(frozen=True)
class Rejected:
    """Bytes that ended (or would end) a frame but are not a scan."""

    reason: str  # "overlong" or "noise"
    length: int


class ScanFramer:
    """Splits a scanner's byte stream into frames. Pure: feed bytes, get frames back.

    * A frame is complete when its terminator arrives; the bytes after the last terminator wait
      for more input (:attr:`pending`), and :meth:`reset` drops them (a partial frame at unplug).
    * CR and LF at either end of a frame are trimmed and empty frames are ignored, so a scanner
      that sends CRLF still works when configured for CR (or LF).
    * A frame longer than ``max_length`` is dropped whole, up to its terminator, and reported once
      as ``Rejected("overlong")``: a cut-off barcode is a different barcode.
    * A frame with control characters no barcode carries (NUL, BEL, ESC, XON...) is line noise,
      reported as ``Rejected("noise")``.
    * ``seven_bit`` clears bit 7 of every byte first: 7E1 data read on a port that stays 8N1 has
      the parity bit there (and on a real 7-bit port the bit is already 0).
    """

    def __init__(self, terminator: bytes, max_length: int, *, seven_bit: bool = False) -> None:
        if not terminator:
            raise ValueError("terminator must not be empty")
        self._term = terminator
        self._max = max_length
        self._seven_bit = seven_bit
        self._buf = b""
        self._discarding = False  # inside an overlong frame, already reported

    @property
    def pending(self) -> bytes:
        return self._buf

    def reset(self) -> None:
        self._buf = b""
        self._discarding = False

    def feed(self, data: bytes) -> list[Frame | Rejected]:
        if self._seven_bit:
            data = data.translate(_STRIP_7BIT)
        parts = (self._buf + data).split(self._term)
        tail = parts.pop()
        out: list[Frame | Rejected] = []
        for part in parts:
            if self._discarding:
                self._discarding = False
                continue
            out.extend(self._judge(part))
        if len(tail) > self._max:
            if not self._discarding:
                out.append(Rejected("overlong", len(tail)))
                self._discarding = True
            # Keep just enough to see a terminator that straddles two reads (CRLF).
            tail = tail[len(tail) - (len(self._term) - 1):] if len(self._term) > 1 else b""
        self._buf = tail
        return out

    def _judge(self, part: bytes) -> list[Frame | Rejected]:
        part = part.strip(b"\r\n")
        if not part:
            return []
        if len(part) > self._max:
            return [Rejected("overlong", len(part))]
        if not _NOISE_BYTES.isdisjoint(part):
            return [Rejected("noise", len(part))]
        return [Frame(part)]


# --- finding the port ----------------------------------------------------------------------------


def find_port_by_usb(
    config: SerialScannerConfig, ports: Iterable[ListPortInfo] | None = None
) -> str | None:
    """The device path of the scanner described by ``config``, or None if it is not plugged in.

    Matches ``usb_vid`` (and ``usb_serial`` when set) against ``ports`` (default:
    ``serial.tools.list_ports.comports()``). With several matches, the configured ``port`` wins if
    it is among them, else the first by device name. Without a USB match, falls back to
    ``config.port`` if that path exists.
    """
    if config.usb_vid is not None:
        if ports is None:
            ports = serial.tools.list_ports.comports()
        matches = sorted(
            (
                p.device
                for p in ports
                if p.vid == config.usb_vid
                and (config.usb_serial is None or p.serial_number == config.usb_serial)
            )
        )
        if matches:
            return config.port if config.port in matches else matches[0]
    if config.port is not None and os.path.exists(config.port):
        return config.port
    return None


# --- the reader ----------------------------------------------------------------------------------


def _framing_of(port: serial.Serial) -> str | None:
    """The framing a tty is set to ("8N1", "7E1", ...), read back from the driver."""
    try:
        cflag = termios.tcgetattr(port.fileno())[2]
    except (termios.error, OSError, ValueError):
        return None
    bits = {termios.CS5: 5, termios.CS6: 6, termios.CS7: 7, termios.CS8: 8}[cflag & termios.CSIZE]
    parity = "N" if not cflag & termios.PARENB else "O" if cflag & termios.PARODD else "E"
    return f"{bits}{parity}{2 if cflag & termios.CSTOPB else 1}"


class _Gone(Exception):
    """The open port went away (unplugged)."""


class SerialScannerReader:
    """Reads scans from a serial scanner on a thread of its own, and reconnects after an unplug.

    ``on_scan(code, received_at_ns)``: ``received_at_ns`` is ``time.perf_counter_ns()`` (a
    monotonic clock, not wall time) when the terminator was read. ``on_status(status, message)``
    with status ``"connecting"``, ``"connected"``, ``"disconnected"`` or ``"error"`` and a message a
    clerk can act on. Both run on the reader thread; an exception they raise is logged and the
    reader carries on.
    """

    def __init__(
        self,
        config: SerialScannerConfig,
        on_scan: Callable[[str, int], object],
        on_status: Callable[[str, str], object] = lambda status, message: None,
        locate: Callable[[SerialScannerConfig], str | None] | None = None,
        *,
        read_timeout_s: float = 0.05,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        jitter: float = 0.1,
        seed: int | None = None,
    ) -> None:
        if read_timeout_s <= 0 or backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError("timeouts must be positive and backoff_max_s >= backoff_initial_s")
        self.config = config
        self._on_scan = on_scan
        self._on_status = on_status
        self._locate = locate if locate is not None else find_port_by_usb
        self._read_timeout = read_timeout_s
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._jitter = jitter
        self._rng = random.Random(seed)
        self._framer = ScanFramer(
            config.terminator_bytes, config.max_scan_length, seven_bit=config.seven_bit
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._port_path: str | None = None
        self._framing_in_effect: str | None = None
        self._last_problem: str | None = None

    # -- public API --

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    @property
    def port_path(self) -> str | None:
        """The device path currently open, or None."""
        return self._port_path

    @property
    def framing_in_effect(self) -> str | None:
        """The framing the open port is set to, read back from the driver: the configured one, or
        "8N1" where the driver keeps 8 bits (a Linux pty refuses or ignores 7E1); with a 7-bit
        framing configured the reader clears the parity bit (bit 7) itself either way."""
        return self._framing_in_effect

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a SerialScannerReader can be started once")
        self._thread = threading.Thread(
            target=self._run, name=f"scanner-reader({self.config.port or 'usb'})", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop reading, close the port and join the thread. True if the thread has ended."""
        self._stop.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return thread is None
        thread.join(timeout)
        return not thread.is_alive()

    def __enter__(self) -> SerialScannerReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the thread --

    def _run(self) -> None:
        backoff = self._backoff_initial
        self._status(STATUS_CONNECTING, "Looking for the scanner…")
        while not self._stop.is_set():
            port = self._open()
            if port is None:
                delay = backoff * (1.0 + self._rng.uniform(-self._jitter, self._jitter))
                backoff = min(backoff * 2.0, self._backoff_max)
                self._stop.wait(delay)
                continue
            backoff = self._backoff_initial
            self._last_problem = None
            try:
                self._connected.set()
                self._status(STATUS_CONNECTED, f"Scanner connected on {self._port_path}")
                self._read(port)
            except _Gone:
                pass
            finally:
                self._connected.clear()
                port.close()
                self._port_path = None
                # A frame without its terminator was never completed; the scanner resends it.
                self._framer.reset()
            if not self._stop.is_set():
                self._status(STATUS_DISCONNECTED, MSG_DISCONNECTED)
                self._last_problem = MSG_NOT_FOUND  # already said, in other words

    def _open(self) -> serial.Serial | None:
        try:
            path = self._locate(self.config)
        except Exception as exc:  # a locator is outside code; keep looking
            log.exception("scanner locator failed")
            self._problem(STATUS_ERROR, f"Could not look for the scanner: {exc}")
            return None
        if path is None:
            self._problem(STATUS_DISCONNECTED, MSG_NOT_FOUND)
            return None
        try:
            port = self._open_path(path, self.config.framing)
        except termios.error:
            if self.config.framing == "8N1":
                self._problem(STATUS_ERROR, f"{path} is not a serial port")
                return None
            # The driver refused the 7-bit framing (Linux ptys keep CS8 and no parity). 7E1 and 8N1
            # frames are both 10 bits long, so 7E1 data read as 8N1 arrives with the parity bit
            # in bit 7, which ScanFramer(seven_bit=True) clears.
            try:
                port = self._open_path(path, "8N1")
            except (serial.SerialException, OSError, termios.error) as exc:
                return self._open_failed(path, exc)
        except (serial.SerialException, OSError, ValueError) as exc:
            return self._open_failed(path, exc)
        # What the driver actually took: a pty may also ignore CS7/PARENB without an error
        # (tcsetattr succeeds when any part of a change applies).
        self._framing_in_effect = _framing_of(port) or self.config.framing
        if self._framing_in_effect != self.config.framing:
            log.info(
                "%s runs %s, not the configured %s",
                path, self._framing_in_effect, self.config.framing,
            )
        self._port_path = path
        return port

    def _open_path(self, path: str, framing: str) -> serial.Serial:
        bytesize, parity, stopbits = FRAMINGS[framing]
        return serial.Serial(
            path,
            baudrate=self.config.baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout=self._read_timeout,
            exclusive=True,
        )

    def _open_failed(self, path: str, exc: BaseException) -> None:
        code = getattr(exc, "errno", None)
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EIO):
            self._problem(STATUS_DISCONNECTED, MSG_NOT_FOUND)
        elif code == errno.EACCES:
            self._problem(
                STATUS_ERROR,
                f"No permission to open the scanner on {path} — add this user to the "
                "'dialout' group and sign in again",
            )
        elif code in (errno.EBUSY, errno.EAGAIN):
            self._problem(
                STATUS_ERROR, f"The scanner on {path} is in use by another program — close it"
            )
        else:
            self._problem(STATUS_ERROR, f"Could not open the scanner on {path}: {exc}")
        return None

    def _read(self, port: serial.Serial) -> None:
        path = self._port_path
        assert path is not None
        poller = select.poll()
        poller.register(port.fileno(), select.POLLHUP | select.POLLERR | select.POLLNVAL)
        while not self._stop.is_set():
            try:
                data = port.read(1)  # blocks up to read_timeout_s
                if data:
                    waiting = port.in_waiting
                    if waiting:
                        data += port.read(waiting)
            except (serial.SerialException, OSError) as exc:
                log.info("scanner on %s gone: %s", path, exc)
                raise _Gone from exc
            if not data:
                # Nothing within the timeout: a quiet scanner, or a port that went away without
                # an error (a hung-up tty, a vanished device node).
                if poller.poll(0) or not os.path.exists(path):
                    raise _Gone
                continue
            received_at_ns = time.perf_counter_ns()
            for item in self._framer.feed(data):
                if isinstance(item, Frame):
                    code = item.data.decode(self.config.encoding, errors="replace")
                    self._call(self._on_scan, code, received_at_ns)
                elif item.reason == "overlong":
                    self._status(
                        STATUS_ERROR,
                        f"A scan longer than {self.config.max_scan_length} characters was "
                        f"ignored — check that the scanner ends each scan with "
                        f"{self.config.terminator}",
                    )
                else:
                    self._status(
                        STATUS_ERROR, "Unreadable scan ignored (noise on the line) — scan again"
                    )

    # -- reporting --

    def _problem(self, status: str, message: str) -> None:
        """Report a connection problem once, not on every retry."""
        if message != self._last_problem:
            self._last_problem = message
            self._status(status, message)

    def _status(self, status: str, message: str) -> None:
        self._call(self._on_status, status, message)

    @staticmethod
    def _call(callback: Callable[..., object], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("scanner callback %r failed", callback)
