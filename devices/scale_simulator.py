"""Scale simulators: each speaks one protocol on a real pseudo-terminal, so a driver can open
``simulator.path`` with pyserial exactly as it opens ``/dev/ttyUSB0``.

    with ScaleSimulator("nci", grams=Decimal("559.73498458"), unit="lb", decimals=3) as sim:
        with open_scale("nci", sim.path) as scale:
            scale.read_stable(0.5).grams          # Decimal('559.73498458')

The simulator answers from a daemon thread that waits in ``select`` on the pty and on a wake-up
pipe, so :meth:`ScaleSimulator.stop` ends it at once and closes every descriptor it opened.

USB HID scales cannot be simulated as a real ``/dev/hidraw*`` node: creating one needs
``/dev/uhid`` and root (and ``/dev/uhid`` is absent in most containers and CI runners). The "hid"
simulator therefore writes the same 6-byte reports into a FIFO (``os.mkfifo`` in a temporary
folder) a few dozen times a second while a reader is attached; the HID driver opens and reads
that FIFO as it would a hidraw file (``os.open``, non-blocking, ``select``).
"""
from __future__ import annotations

import errno
import os
import select
import shutil
import tempfile
import threading
import time
import tty
from dataclasses import dataclass
from decimal import Decimal

from devices.scale_protocols import (
    ACK,
    DC1,
    ENQ,
    HID_MOTION,
    HID_OVER_WEIGHT,
    HID_STABLE,
    HID_UNDER_ZERO,
    HID_UNIT_CODES,
    HID_ZERO,
    encode_cas,
    encode_hid_report,
    encode_mtsics_status,
    encode_mtsics_weight,
    encode_nci,
    encode_toledo_status,
    encode_toledo_weight,
    grams_to_unit,
    nci_status_bytes,
    normalize_unit,
    with_wrong_parity,
)

__all__ = ["SIMULATED_PROTOCOLS", "ScaleSimulator"]

SIMULATED_PROTOCOLS = ("mt-sics", "toledo-8213", "nci", "cas", "hid")
_ALIASES = {"toledo-8217": "toledo-8213"}
# Display decimals per unit unless the caller chooses (lb with two decimals, as the 8217 sends).
DEFAULT_DECIMALS = {"mg": 0, "g": 1, "kg": 3, "lb": 2, "oz": 2, "ozt": 3, "dwt": 2, "gr": 0,
                    "ct": 2, "t": 6, "ton": 5}
HID_GARBAGE = b"\xff\x13\x37\x00\xaa\x55"  # 6 bytes, but no scale data report


@dataclass(frozen=True)
class _State:
    grams: Decimal
    motion: bool
    overload: bool
    underload: bool
    silent: bool
    garbage: bool


class ScaleSimulator:
    """A simulated scale. ``grams`` is the load; ``unit`` and ``decimals`` are what it displays.

    Set conditions at any time from the test thread: :meth:`set_weight`, :meth:`set_motion`
    (optionally settling after a delay), :meth:`set_overload`, :meth:`set_underload`,
    :meth:`set_silent` (never answers) and :meth:`set_garbage` (answers with bytes as a host with
    the wrong framing would see them).
    """

    def __init__(
        self,
        protocol: str,
        grams: Decimal | int | str = Decimal(0),
        unit: str = "g",
        *,
        decimals: int | None = None,
        report_interval_s: float = 0.03,
    ) -> None:
        name = protocol.strip().lower()
        self.protocol = _ALIASES.get(name, name)
        if self.protocol not in SIMULATED_PROTOCOLS:
            raise ValueError(f"no simulator for protocol {protocol!r}")
        self.unit = normalize_unit(unit)
        if self.protocol == "hid" and self.unit not in HID_UNIT_CODES:
            raise ValueError(f"a HID scale cannot report in {unit!r}")
        self.decimals = DEFAULT_DECIMALS.get(self.unit, 2) if decimals is None else decimals
        self.report_interval_s = report_interval_s
        self._lock = threading.Lock()
        self._grams = Decimal(grams)
        self._motion = False
        self._settle_at: float | None = None
        self._overload = False
        self._underload = False
        self._silent = False
        self._garbage = False
        self._received: list[bytes] = []
        self._jitter = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._fds: list[int] = []
        self._path: str | None = None
        self._tmpdir: str | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The device a driver opens: a pty slave, or for "hid" a FIFO."""
        if self._path is None:
            raise RuntimeError("the simulator is not started")
        return self._path

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ScaleSimulator:
        if self._thread is not None:
            raise RuntimeError("the simulator is already started")
        try:
            if self.protocol == "hid":
                self._tmpdir = tempfile.mkdtemp(prefix="scale-sim-")
                self._path = os.path.join(self._tmpdir, "hidraw-sim")
                os.mkfifo(self._path, 0o600)
                target = self._serve_hid
            else:
                master, slave = os.openpty()
                self._fds += [master, slave]
                # Raw: no echo, no CR/LF translation, no line editing; the driver sets its own
                # modes when it opens the slave, but bytes must pass untouched until then too.
                tty.setraw(slave)
                os.set_blocking(master, False)
                self._master = master
                self._path = os.ttyname(slave)
                wake_r, wake_w = os.pipe()
                self._fds += [wake_r, wake_w]
                self._wake_r, self._wake_w = wake_r, wake_w
                target = self._serve_serial
            self._thread = threading.Thread(
                target=target, name=f"scale-simulator-{self.protocol}", daemon=True
            )
            self._thread.start()
        except BaseException:
            self._release()
            raise
        return self

    def stop(self) -> None:
        """End the thread and close everything; a driver still open sees the port vanish.
        Stopping twice is harmless."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self.protocol != "hid" and self._thread is not None:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():  # pragma: no cover - would be a simulator bug
                raise RuntimeError("the scale simulator thread did not stop")
        self._release()

    def _release(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> ScaleSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- conditions ----------------------------------------------------------------------------
    def set_weight(self, grams: Decimal | int | str) -> None:
        with self._lock:
            self._grams = Decimal(grams)

    def set_motion(self, on: bool = True, *, settle_after_s: float | None = None) -> None:
        """In motion; with ``settle_after_s``, stable again that long from now (a timer that
        needs no thread of its own: the deadline is checked on every answer)."""
        with self._lock:
            self._motion = on
            self._settle_at = time.monotonic() + settle_after_s if on and settle_after_s else None

    def set_overload(self, on: bool = True) -> None:
        with self._lock:
            self._overload = on

    def set_underload(self, on: bool = True) -> None:
        with self._lock:
            self._underload = on

    def set_silent(self, on: bool = True) -> None:
        with self._lock:
            self._silent = on

    def set_garbage(self, on: bool = True) -> None:
        with self._lock:
            self._garbage = on

    @property
    def received(self) -> list[bytes]:
        """Commands received from the host so far (for the hid simulator: none)."""
        with self._lock:
            return list(self._received)

    def _state(self) -> _State:
        with self._lock:
            motion = self._motion and (self._settle_at is None or time.monotonic() < self._settle_at)
            return _State(self._grams, motion, self._overload, self._underload,
                          self._silent, self._garbage)

    def _display(self, state: _State) -> Decimal:
        """The weight in the display unit; in motion it wobbles by one digit."""
        value = grams_to_unit(state.grams, self.unit, self.decimals)
        if state.motion:
            self._jitter = not self._jitter
            if self._jitter:
                value += Decimal(1).scaleb(-self.decimals)
        return value

    # --- serial protocols ----------------------------------------------------------------------
    def _serve_serial(self) -> None:
        pending = b""
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], 1.0)
            except (OSError, ValueError):
                return
            if self._stopping.is_set():
                return
            if self._master not in ready:
                continue
            try:
                data = os.read(self._master, 1024)
            except BlockingIOError:
                continue
            except OSError:
                return  # EIO: the pty is gone
            if not data:
                return
            commands, pending = self._split_commands(pending + data)
            for command in commands:
                with self._lock:
                    self._received.append(command)
                reply = self._answer(command)
                if reply:
                    try:
                        os.write(self._master, reply)
                    except BlockingIOError:
                        pass  # the host is not reading; a real scale would drop it too
                    except OSError:
                        return

    def _split_commands(self, data: bytes) -> tuple[list[bytes], bytes]:
        if self.protocol in ("toledo-8213", "cas"):
            # One-byte commands ("W", ENQ, DC1); a CR or LF after "W" is allowed and ignored.
            return [bytes([b]) for b in data if b not in b"\r\n"], b""
        separators = b"\r\n" if self.protocol == "mt-sics" else b"\r"
        commands: list[bytes] = []
        start = 0
        for index, byte in enumerate(data):
            if byte in separators:
                line = data[start:index].strip(b"\r\n")
                if line:
                    commands.append(line)
                start = index + 1
        return commands, data[start:]

    def _answer(self, command: bytes) -> bytes | None:
        state = self._state()
        if state.silent:
            return None
        reply = {
            "mt-sics": self._answer_mtsics,
            "toledo-8213": self._answer_toledo,
            "nci": self._answer_nci,
            "cas": self._answer_cas,
        }[self.protocol](command, state)
        if reply and state.garbage:
            return with_wrong_parity(reply)
        return reply

    def _answer_mtsics(self, command: bytes, state: _State) -> bytes | None:
        if command not in (b"S", b"SI"):
            return encode_mtsics_status("ES")
        if state.overload:
            return encode_mtsics_status("+")
        if state.underload:
            return encode_mtsics_status("-")
        if state.motion and command == b"S":
            return encode_mtsics_status("I")
        return encode_mtsics_weight(self._display(state), self.unit, stable=not state.motion)

    def _answer_toledo(self, command: bytes, state: _State) -> bytes | None:
        if command == b"Z":
            return encode_toledo_status(motion=state.motion)
        if command != b"W":
            return None
        if state.overload or state.underload or state.motion:
            return encode_toledo_status(
                motion=state.motion, over=state.overload, under=state.underload
            )
        return encode_toledo_weight(self._display(state), self.decimals)

    def _answer_nci(self, command: bytes, state: _State) -> bytes | None:
        if command not in (b"W", b"S", b"Z"):
            return b"\n?\r\x03"
        value = self._display(state)
        status = nci_status_bytes(
            motion=state.motion, at_zero=value == 0, over=state.overload, under=state.underload
        )
        if command != b"W" or state.overload or state.underload:
            return encode_nci(None, status)
        return encode_nci(f"{value:>7.{self.decimals}f}{self.unit}", status)

    def _answer_cas(self, command: bytes, state: _State) -> bytes | None:
        if command == bytes([ENQ]):
            return bytes([ACK])
        if command != bytes([DC1]):
            return None
        unit = self.unit if len(self.unit) <= 2 else self.unit[:2]
        if state.overload:
            return encode_cas(stable=True, sign="F", weight_text="------", unit=unit)
        value = self._display(state)
        sign = " "
        if state.underload:
            sign, value = "-", max(abs(value), Decimal(1).scaleb(-self.decimals))
        return encode_cas(
            stable=not state.motion, sign=sign, weight_text=f"{value:06.{self.decimals}f}", unit=unit
        )

    # --- USB HID ---------------------------------------------------------------------------------
    def _serve_hid(self) -> None:
        writer: int | None = None
        try:
            while not self._stopping.wait(self.report_interval_s):
                state = self._state()
                if state.silent:
                    continue
                if writer is None:
                    try:
                        writer = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                    except OSError as exc:
                        if exc.errno in (errno.ENXIO, errno.ENOENT):
                            continue  # no driver reading (yet): a report nobody receives
                        raise
                try:
                    os.write(writer, self._hid_report(state))
                except BlockingIOError:
                    pass  # the driver is not reading and the pipe is full
                except BrokenPipeError:
                    os.close(writer)  # the driver closed; wait for the next one
                    writer = None
        finally:
            if writer is not None:
                os.close(writer)

    def _hid_report(self, state: _State) -> bytes:
        if state.garbage:
            return HID_GARBAGE
        if state.overload:
            return encode_hid_report(HID_OVER_WEIGHT, self.unit, -self.decimals, 0)
        if state.underload:
            return encode_hid_report(HID_UNDER_ZERO, self.unit, -self.decimals, 0)
        raw = int(self._display(state).scaleb(self.decimals))
        if raw > 0xFFFF:
            return encode_hid_report(HID_OVER_WEIGHT, self.unit, -self.decimals, 0)
        status = HID_MOTION if state.motion else HID_ZERO if raw == 0 else HID_STABLE
        return encode_hid_report(status, self.unit, -self.decimals, raw)
