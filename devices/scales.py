"""Scale drivers: a serial port (pyserial) or a Linux ``/dev/hidraw*`` file, one object per scale.

The wire formats live in :mod:`devices.scale_protocols`; this module only moves bytes and turns
whatever goes wrong into a :class:`ScaleError` whose message tells the clerk what to do.

Drivers block (pyserial is blocking): run them on a worker thread, never on the GUI thread, and
pass a ``threading.Event`` as ``cancel`` to :meth:`ScaleDriver.read_stable` to stop a wait early.
A driver is not thread-safe; one worker owns it.

    with open_scale("mt-sics", "/dev/ttyUSB0", timeout_s=2.0) as scale:
        reading = scale.read_stable()        # WeightReading(grams=Decimal('1234.50'), ...)
"""
from __future__ import annotations

import errno
import os
import re
import select
import stat
import termios
import threading
import time
from collections.abc import Callable

import serial

from console.errors import first_line

from devices.scale_protocols import (
    ACK,
    CAS_DC1,
    CAS_ENQ,
    MTSICS_SEND_IMMEDIATE,
    NAK,
    NCI_WEIGH,
    TOLEDO_WEIGH,
    FrameError,
    Status,
    UnitError,
    WeightReading,
    cas_split,
    normalize_unit,
    mtsics_split,
    nci_split,
    parse_cas,
    parse_cas_handshake,
    parse_hid_report,
    parse_mtsics,
    parse_nci,
    parse_toledo,
    split_hid_reports,
    toledo_split,
)

__all__ = [
    "PROTOCOLS",
    "ScaleCancelled",
    "ScaleDisconnected",
    "ScaleDriver",
    "ScaleError",
    "ScaleFault",
    "ScaleFramingError",
    "ScaleNoAnswer",
    "ScaleOverload",
    "ScaleUnderload",
    "ScaleUnitError",
    "ScaleUnstable",
    "open_scale",
]

PROTOCOLS: tuple[str, ...] = ("mt-sics", "toledo-8213", "nci", "cas", "hid")
_ALIASES = {"toledo-8217": "toledo-8213", "mettler-toledo-8213": "toledo-8213",
            "mettler-toledo-8217": "toledo-8213", "scp-01": "nci", "hidraw": "hid"}

DEFAULT_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.05  # between two requests while the weight is settling
FRAME_GAP_S = 0.1  # silence after some bytes that ends a reply which never completed
_READ_SLICE_S = 0.02  # pyserial read timeout; the reply deadline is kept by the loop
_MAX_REPLY = 512


def _secs(seconds: float) -> str:
    return f"{seconds:.1f}" if round(seconds, 1) == seconds else f"{seconds:.2f}"


# --- errors ----------------------------------------------------------------------------------


class ScaleError(Exception):
    """A scale problem the clerk can act on; ``message`` says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ScaleNoAnswer(ScaleError):
    def __init__(self, port: str, timeout_s: float) -> None:
        super().__init__(
            f"Scale on {port} did not answer within {_secs(timeout_s)} s: check that it is "
            "switched on and that the cable and port are right"
        )


class ScaleUnstable(ScaleError):
    def __init__(self, port: str, timeout_s: float) -> None:
        super().__init__(
            f"The weight on the scale on {port} did not settle within {_secs(timeout_s)} s: keep "
            "the parcel still, make sure it touches nothing but the platter, and weigh again"
        )


class ScaleOverload(ScaleError):
    def __init__(self, port: str) -> None:
        super().__init__(
            f"The scale on {port} is over capacity: take the parcel off, check that nothing "
            "presses on the platter, and weigh it on a scale for heavier parcels"
        )


class ScaleUnderload(ScaleError):
    def __init__(self, port: str) -> None:
        super().__init__(
            f"The scale on {port} shows less than zero: empty the platter, press ZERO on the "
            "scale, then weigh the parcel again"
        )


class ScaleFault(ScaleError):
    def __init__(self, port: str, detail: str) -> None:
        super().__init__(
            f"The scale on {port} reports a problem ({detail}): switch it off and on again; if "
            "the message stays, call service"
        )


class ScaleFramingError(ScaleError):
    def __init__(self, port: str, detail: str, hint: str) -> None:
        super().__init__(f"The scale on {port} sent a reply the console cannot read ({detail}): {hint}")


class ScaleUnitError(ScaleError):
    def __init__(self, port: str, detail: str) -> None:
        super().__init__(
            f"The scale on {port} weighs in a unit the console cannot use ({detail}): set the "
            "scale to g, kg, lb or oz, or set its unit in the console's scale settings"
        )


class ScaleDisconnected(ScaleError):
    """The port cannot be opened, or went away (unplugged, closed)."""


class ScaleCancelled(ScaleError):
    def __init__(self, port: str) -> None:
        super().__init__(f"Weighing on {port} was cancelled")


class _NoReply(Exception):
    """Nothing arrived before the deadline (internal)."""


# --- the driver contract ---------------------------------------------------------------------


class ScaleDriver:
    """One scale on one port. Subclasses implement :meth:`_poll` (one request, one reply)."""

    protocol: str = ""

    def __init__(self, port: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s!r}")
        self.port = port
        self.timeout_s = timeout_s
        self._closed = False
        # Set during read_stable: a poll that can wait long (HID) looks at it between slices.
        self._cancel: threading.Event | None = None

    # public API ------------------------------------------------------------------------------
    def read_once(self, timeout_s: float | None = None) -> WeightReading:
        """One request and its reply, whatever the status (for a live display).

        Raises :class:`ScaleNoAnswer`, :class:`ScaleFramingError`, :class:`ScaleUnitError`
        or :class:`ScaleDisconnected`.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            return self._poll(time.monotonic() + timeout)
        except _NoReply:
            raise ScaleNoAnswer(self.port, timeout) from None

    def read_stable(
        self, timeout_s: float | None = None, *, cancel: threading.Event | None = None
    ) -> WeightReading:
        """Poll until the scale reports a stable weight of zero or more, and return it.

        Motion, silence and garbled replies are waited out until ``timeout_s`` (default: the
        driver's); then the last problem is raised (:class:`ScaleUnstable`,
        :class:`ScaleFramingError`, or :class:`ScaleNoAnswer` if nothing at all came back).
        Over capacity, under zero and scale faults need the clerk, so they are raised at once
        (:class:`ScaleOverload`, :class:`ScaleUnderload`, :class:`ScaleFault`), as are
        :class:`ScaleDisconnected`, :class:`ScaleUnitError` and :class:`ScaleCancelled`.
        """
        self._cancel = cancel
        try:
            return self._read_stable(self.timeout_s if timeout_s is None else timeout_s, cancel)
        finally:
            self._cancel = None

    def _read_stable(self, timeout: float, cancel: threading.Event | None) -> WeightReading:
        deadline = time.monotonic() + timeout
        last_problem: ScaleError | None = None
        while True:
            if cancel is not None and cancel.is_set():
                raise ScaleCancelled(self.port)
            try:
                reading = self._poll(deadline)
            except _NoReply:
                pass  # keep what the scale said before, if anything
            except ScaleFramingError as exc:
                last_problem = exc
            else:
                problem = self._judge(reading, timeout)
                if problem is None:
                    return reading
                last_problem = problem
            remaining = deadline - time.monotonic()
            if remaining < 0.005:
                break
            wait = min(POLL_INTERVAL_S, remaining)
            if cancel is not None:
                if cancel.wait(wait):
                    raise ScaleCancelled(self.port)
            else:
                time.sleep(wait)
        raise last_problem if last_problem is not None else ScaleNoAnswer(self.port, timeout)

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> ScaleDriver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.protocol} on {self.port} ({state})>"

    # for subclasses ----------------------------------------------------------------------------
    def _poll(self, deadline: float) -> WeightReading:
        raise NotImplementedError

    def _framing_hint(self) -> str:
        return f"check that the scale speaks {self.protocol}"

    def _judge(self, reading: WeightReading, timeout: float) -> ScaleError | None:
        """``None`` for a usable weight; the error to raise or remember otherwise."""
        if reading.status is Status.STABLE and reading.grams is not None:
            if reading.grams < 0:
                raise ScaleUnderload(self.port)
            return None
        if reading.status is Status.OVERLOAD:
            raise ScaleOverload(self.port)
        if reading.status is Status.UNDERLOAD:
            raise ScaleUnderload(self.port)
        if reading.status is Status.FAULT:
            raise ScaleFault(self.port, reading.detail or "fault")
        return ScaleUnstable(self.port, timeout)

    def _parse(self, parse: Callable[[bytes], WeightReading], frame: bytes) -> WeightReading:
        try:
            return parse(frame)
        except UnitError as exc:
            raise ScaleUnitError(self.port, str(exc)) from None
        except FrameError as exc:
            raise ScaleFramingError(self.port, str(exc), self._framing_hint()) from None

    def _check_open(self) -> None:
        if self._closed:
            raise ScaleDisconnected(f"The scale on {self.port} was closed: open it again to weigh")


# --- serial drivers --------------------------------------------------------------------------

_FRAMINGS = {"7": serial.SEVENBITS, "8": serial.EIGHTBITS}
_PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}
_STOPBITS = {"1": serial.STOPBITS_ONE, "2": serial.STOPBITS_TWO}


def _parse_framing(framing: str) -> tuple[int, str, float]:
    text = framing.strip().upper()
    if len(text) != 3 or text[0] not in _FRAMINGS or text[1] not in _PARITIES or text[2] not in _STOPBITS:
        raise ValueError(f"framing must look like '8N1' or '7E1', not {framing!r}")
    return _FRAMINGS[text[0]], _PARITIES[text[1]], _STOPBITS[text[2]]


class SerialScale(ScaleDriver):
    """A scale on an RS-232 port (or a USB-serial adapter, or a pty)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        framing: str = "8N1",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(port, timeout_s=timeout_s)
        bytesize, parity, stopbits = _parse_framing(framing)
        self.baudrate = baudrate
        self.framing = framing.strip().upper()
        try:
            self._serial = serial.Serial(
                port,
                baudrate=baudrate,
                bytesize=bytesize,
                parity=parity,
                stopbits=stopbits,
                timeout=_READ_SLICE_S,
                write_timeout=1.0,
                exclusive=True,
            )
        except (serial.SerialException, OSError) as exc:
            self._closed = True
            raise ScaleDisconnected(
                f"Could not open the scale port {port} ({_reason(exc)}): check that the scale is "
                "plugged in and that the port in the console's scale settings is right"
            ) from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._serial.close()
            except (serial.SerialException, OSError, termios.error):
                pass  # the port is gone already; nothing left to release

    def _framing_hint(self) -> str:
        return (
            "check baud rate and framing (8N1/7E1) and the protocol set on the scale against the "
            f"console's scale settings ({self.baudrate} baud {self.framing}, {self.protocol})"
        )

    def _gone(self, exc: BaseException) -> ScaleDisconnected:
        return ScaleDisconnected(
            f"The scale on {self.port} was disconnected ({_reason(exc)}): check the cable, plug "
            "it back in and weigh again"
        )

    def _send(self, command: bytes) -> None:
        """Drop anything stale (a late reply to an earlier request), then send ``command``."""
        self._check_open()
        try:
            self._serial.reset_input_buffer()
            self._serial.write(command)
            self._serial.flush()
        except (serial.SerialException, OSError, termios.error) as exc:
            raise self._gone(exc) from None

    def _receive(
        self, split: Callable[[bytes], tuple[bytes | None, bytes]], deadline: float
    ) -> bytes:
        """Bytes until ``split`` finds one whole reply.

        Raises :class:`_NoReply` if nothing came before ``deadline``, and
        :class:`ScaleFramingError` if bytes came but no whole reply (noise, a wrong baud rate,
        an unplugged cable mid-reply): the reply is considered over after :data:`FRAME_GAP_S`
        of silence.
        """
        buffer = b""
        last_byte_at = 0.0
        while True:
            now = time.monotonic()
            if buffer:
                frame, _rest = split(buffer)
                if frame is not None:
                    return frame
                if len(buffer) > _MAX_REPLY or now - last_byte_at >= FRAME_GAP_S or now >= deadline:
                    raise ScaleFramingError(
                        self.port, f"incomplete or garbled reply {buffer[:40]!r}", self._framing_hint()
                    )
            elif now >= deadline:
                raise _NoReply
            try:
                chunk = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError, termios.error) as exc:
                raise self._gone(exc) from None
            if chunk:
                buffer += chunk
                last_byte_at = time.monotonic()


class MtSicsScale(SerialScale):
    """MT-SICS level 0: polls ``SI`` (weight immediately) so the console, not the balance,
    decides how long to wait for stability; ``S I`` (busy) counts as motion."""

    protocol = "mt-sics"

    def _poll(self, deadline: float) -> WeightReading:
        self._send(MTSICS_SEND_IMMEDIATE)
        return self._parse(parse_mtsics, self._receive(mtsics_split, deadline))


class Toledo8213Scale(SerialScale):
    """Mettler Toledo 8213/8217. The reply has no unit: pass ``unit`` (lb, kg, g, oz) unless the
    scale uses the 8217 formats (two decimals: lb, three: kg), and ``implied_decimals`` for
    models that send digits without a decimal point."""

    protocol = "toledo-8213"

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        framing: str = "8N1",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        unit: str | None = None,
        implied_decimals: int | None = None,
    ) -> None:
        if unit is not None:
            normalize_unit(unit)  # a UnitError (a ValueError) before the port is opened
        if implied_decimals is not None and not 0 <= implied_decimals <= 6:
            raise ValueError(f"implied_decimals must be 0 to 6, not {implied_decimals!r}")
        super().__init__(port, baudrate=baudrate, framing=framing, timeout_s=timeout_s)
        self.unit = unit
        self.implied_decimals = implied_decimals

    def _poll(self, deadline: float) -> WeightReading:
        self._send(TOLEDO_WEIGH)
        frame = self._receive(toledo_split, deadline)
        return self._parse(
            lambda f: parse_toledo(f, unit=self.unit, implied_decimals=self.implied_decimals), frame
        )


class NciScale(SerialScale):
    protocol = "nci"

    def _poll(self, deadline: float) -> WeightReading:
        self._send(NCI_WEIGH)
        return self._parse(parse_nci, self._receive(nci_split, deadline))


class CasScale(SerialScale):
    """CAS ENQ/ACK/DC1: a NAK to ENQ (scale busy) counts as motion."""

    protocol = "cas"

    def _poll(self, deadline: float) -> WeightReading:
        self._send(CAS_ENQ)
        handshake = self._receive(lambda buf: (buf[:1], buf[1:]), deadline)
        try:
            ready = parse_cas_handshake(handshake)
        except FrameError as exc:
            raise ScaleFramingError(self.port, str(exc), self._framing_hint()) from None
        if not ready:
            return WeightReading(None, Status.MOTION, detail="scale busy (NAK)")
        self._send(CAS_DC1)
        # A poll that gave up before its ACK came leaves that ACK behind: it is then read as this
        # poll's handshake, and this poll's own ACK arrives just ahead of the frame. Not part of it.
        frame = self._receive(cas_split, deadline).lstrip(bytes([ACK, NAK]))
        return self._parse(parse_cas, frame)


# --- USB HID (hidraw) ------------------------------------------------------------------------


class HidScale(ScaleDriver):
    """A USB HID POS scale read from ``/dev/hidraw*`` (or, in tests, a FIFO).

    HID scales push reports on their own; each poll takes every report that has arrived and
    keeps the newest, waiting (``select``) for one if none is queued. A read from hidraw
    returns exactly one report; a read from a pipe may return several, which are split.
    """

    protocol = "hid"

    def __init__(self, port: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(port, timeout_s=timeout_s)
        try:
            self._fd = os.open(port, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            self._closed = True
            hint = (
                "give the console's user read access to it (a udev rule for the scale's USB id)"
                if exc.errno in (errno.EACCES, errno.EPERM)
                else "check that the scale is plugged in and that the device in the console's "
                "scale settings is right"
            )
            raise ScaleDisconnected(f"Could not open the scale {port} ({_reason(exc)}): {hint}") from None
        try:
            self._is_pipe = stat.S_ISFIFO(os.fstat(self._fd).st_mode)
        except OSError:  # pragma: no cover - fstat on an fd we just opened
            self._is_pipe = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)

    def _framing_hint(self) -> str:
        return "check that the device is a USB HID point-of-sale scale and not another HID device"

    def _gone(self, exc: BaseException) -> ScaleDisconnected:
        return ScaleDisconnected(
            f"The scale {self.port} was disconnected ({_reason(exc)}): plug it back in and "
            "weigh again"
        )

    def _poll(self, deadline: float) -> WeightReading:
        self._check_open()
        outcome: WeightReading | ScaleError | None = None
        while True:
            if self._cancel is not None and self._cancel.is_set():
                raise ScaleCancelled(self.port)
            wait = 0.0 if outcome is not None else max(0.0, deadline - time.monotonic())
            if self._cancel is not None:
                wait = min(wait, POLL_INTERVAL_S)  # look at the cancel event now and then
            try:
                ready, _, _ = select.select([self._fd], [], [], wait)
                data = os.read(self._fd, 4080) if ready else None
            except BlockingIOError:
                data = None
            except OSError as exc:  # ENODEV/EIO when a hidraw device is unplugged
                raise self._gone(exc) from None
            if data is None:
                if outcome is not None:
                    break
                if time.monotonic() >= deadline:
                    raise _NoReply
                continue
            if data == b"":
                # A pipe whose writer has gone (hidraw never returns 0 bytes). If the node itself
                # has gone, the device was unplugged; otherwise wait, without spinning on EOF.
                if not os.path.exists(self.port):
                    raise self._gone(FileNotFoundError(errno.ENOENT, "device removed"))
                if outcome is not None:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _NoReply
                time.sleep(min(0.02, remaining))
                continue
            outcome = self._outcome(data)
        if isinstance(outcome, ScaleError):
            raise outcome
        return outcome

    def _outcome(self, data: bytes) -> WeightReading | ScaleError:
        try:
            reports = split_hid_reports(data) if self._is_pipe else [data]
            return parse_hid_report(reports[-1])
        except UnitError as exc:
            return ScaleUnitError(self.port, str(exc))
        except FrameError as exc:
            return ScaleFramingError(self.port, str(exc), self._framing_hint())


# --- factory ---------------------------------------------------------------------------------

_SERIAL_DRIVERS: dict[str, type[SerialScale]] = {
    "mt-sics": MtSicsScale,
    "toledo-8213": Toledo8213Scale,
    "nci": NciScale,
    "cas": CasScale,
}


def open_scale(
    protocol: str,
    port: str,
    *,
    baudrate: int = 9600,
    framing: str = "8N1",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    unit: str | None = None,
    implied_decimals: int | None = None,
) -> ScaleDriver:
    """Open the scale on ``port`` speaking ``protocol`` (one of :data:`PROTOCOLS`).

    ``baudrate`` and ``framing`` ("8N1", "7E1", ...) apply to serial scales, ``unit`` and
    ``implied_decimals`` to Toledo 8213/8217 scales only. For ``"hid"`` the port is a
    ``/dev/hidraw*`` path. Raises :class:`ScaleDisconnected` if the port cannot be opened and
    ``ValueError`` for settings that make no sense.
    """
    name = protocol.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in PROTOCOLS:
        raise ValueError(f"unknown scale protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if name != "toledo-8213" and (unit is not None or implied_decimals is not None):
        raise ValueError("unit and implied_decimals apply to toledo-8213 scales only")
    if name == "hid":
        return HidScale(port, timeout_s=timeout_s)
    _parse_framing(framing)
    if name == "toledo-8213":
        return Toledo8213Scale(
            port, baudrate=baudrate, framing=framing, timeout_s=timeout_s,
            unit=unit, implied_decimals=implied_decimals,
        )
    return _SERIAL_DRIVERS[name](port, baudrate=baudrate, framing=framing, timeout_s=timeout_s)


_ERRNO_IN_TEXT = re.compile(r"\[Errno (\d+)\]")


def _reason(exc: BaseException) -> str:
    """A short cause for a message: "Input/output error", not "(5, 'Input/output error')"."""
    code = getattr(exc, "errno", None)
    if not isinstance(code, int) and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]  # termios.error(5, 'Input/output error')
    if not isinstance(code, int):
        found = _ERRNO_IN_TEXT.search(str(exc))  # SerialException('read failed: [Errno 5] ...')
        code = int(found.group(1)) if found else None
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return first_line(exc)
