"""A serial barcode scanner simulated on a real pseudo-terminal, and a scan latency benchmark.

The simulator owns the master side of a pty; :class:`~devices.serial_scanner.SerialScannerReader`
opens the slave (``.path``) with pyserial as it would ``/dev/ttyACM0``. :meth:`unplug` closes the
pty pair, which on Linux hangs up the reader's descriptor and removes the device node, as a USB
unplug does; :meth:`replug` opens a new pty under a new path. ``.link_path`` is a symlink in a
temporary folder that always points at the current slave (and is gone while unplugged), like
``/dev/serial/by-id/...``, so a locator can follow the scanner.
"""
from __future__ import annotations

import fcntl
import os
import queue
import random
import shutil
import sys
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Iterable

from devices.serial_scanner import (
    STATUS_CONNECTED,
    TERMINATORS,
    SerialScannerConfig,
    SerialScannerReader,
)


class ScannerUnplugged(Exception):
    """The simulated scanner is unplugged (or stopped): nothing reaches the host."""


def _with_even_parity(data: bytes) -> bytes:
    """7E1 bytes as an 8N1 receiver sees them: 7 data bits, the even-parity bit in bit 7."""
    if any(b > 0x7F for b in data):
        raise ValueError("7E1 carries 7-bit (ASCII) data only")
    return bytes(b | ((b.bit_count() & 1) << 7) for b in data)


class ScannerSimulator:
    """A barcode scanner on a pty.

    ``send(code)`` writes the code and then the terminator (byte by byte, ``inter_char_s`` plus up
    to ``jitter_s`` apart, when either is set) and records it in :attr:`sent`, with the
    ``time.perf_counter_ns()`` taken just before the (first) ``os.write`` of the terminator in
    :attr:`sent_at_ns`. A frame cut off by
    :meth:`unplug` is not in :attr:`sent` but in :attr:`interrupted`. ``framing="7E1"`` sends each
    byte with its even-parity bit in bit 7, which is what a 7E1 scanner looks like on a pty (a
    Linux pty cannot be switched to 7 bits).
    """

    def __init__(
        self,
        codes: Iterable[str] = (),
        *,
        terminator: str = "CR",
        inter_char_s: float = 0.0,
        jitter_s: float = 0.0,
        seed: int | None = None,
        garbage: bytes | None = None,
        encoding: str = "latin-1",
        framing: str = "8N1",
    ) -> None:
        if terminator not in TERMINATORS:
            raise ValueError(f"terminator must be one of {sorted(TERMINATORS)}")
        if framing not in ("8N1", "7E1"):
            raise ValueError("framing must be 8N1 or 7E1")
        self.codes = list(codes)
        self.terminator = terminator
        self.inter_char_s = inter_char_s
        self.jitter_s = jitter_s
        self.garbage = garbage
        self.encoding = encoding
        self.framing = framing
        self.sent: list[str] = []
        self.sent_at_ns: list[int] = []
        self.interrupted: list[str] = []
        self.paths: list[str] = []  # every slave path this simulator has had, in order
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._generation = 0
        self._dir: str | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle --

    def start(self) -> ScannerSimulator:
        with self._lock:
            if self._dir is not None:
                raise RuntimeError("simulator already started")
            self._dir = tempfile.mkdtemp(prefix="scanner-sim-")
            self._plug()
        return self

    def stop(self) -> None:
        """Close the pty, end the play threads and remove the temporary folder. Idempotent."""
        self._stopped.set()
        for thread in self._threads:
            thread.join(5.0)
        self._threads = [t for t in self._threads if t.is_alive()]
        with self._lock:
            self._unplug()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
        if self._threads:
            raise RuntimeError(f"simulator threads did not end: {self._threads}")

    def __enter__(self) -> ScannerSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def path(self) -> str:
        """The current slave device path (what a reader opens)."""
        if self._path is None:
            raise RuntimeError("the simulated scanner is not plugged in")
        return self._path

    @property
    def link_path(self) -> str:
        """A stable symlink to the current slave; absent while unplugged."""
        if self._dir is None:
            raise RuntimeError("simulator not started")
        return os.path.join(self._dir, "scanner")

    def current_path(self) -> str | None:
        return self._path

    @property
    def plugged_in(self) -> bool:
        return self._master is not None

    def unplug(self) -> None:
        """Close the pty pair, as pulling the USB cable does."""
        with self._lock:
            self._unplug()

    def replug(self) -> str:
        """Plug in again under a new pty (a new path); returns it."""
        with self._lock:
            if self._stopped.is_set() or self._dir is None:
                raise RuntimeError("simulator stopped or not started")
            self._unplug()
            self._plug()
            assert self._path is not None
            return self._path

    # -- sending --

    def send(self, code: str) -> None:
        """Scan one code. Raises ScannerUnplugged when unplugged (mid-frame: the frame is cut)."""
        data = code.encode(self.encoding)
        term = TERMINATORS[self.terminator]
        if self.framing == "7E1":
            data, term = _with_even_parity(data), _with_even_parity(term)
        generation = self._generation
        try:
            if self.inter_char_s or self.jitter_s:
                for i in range(len(data)):
                    self._write(data[i : i + 1], generation)
                    self._pause()
                sent_at_ns = self._write(term[:1], generation, stamp=True)
                for i in range(1, len(term)):
                    self._pause()
                    self._write(term[i : i + 1], generation)
            else:
                if data:
                    self._write(data, generation)
                sent_at_ns = self._write(term, generation, stamp=True)
        except ScannerUnplugged:
            self.interrupted.append(code)
            raise
        self.sent.append(code)
        self.sent_at_ns.append(sent_at_ns)

    def send_garbage(self, data: bytes) -> None:
        """Write raw bytes as they are (line noise, a half frame)."""
        self._write(data, self._generation)

    def play(self, codes: Iterable[str] | None = None, *, gap_s: float = 0.0) -> threading.Thread:
        """Send ``codes`` (default: the constructor's), with ``garbage`` between them, on a thread.

        The thread stops at an unplug or at :meth:`stop`; join it or call :meth:`wait_played`.
        """
        todo = list(self.codes if codes is None else codes)

        def run() -> None:
            for i, code in enumerate(todo):
                if self._stopped.is_set():
                    return
                try:
                    if i and self.garbage:
                        self.send_garbage(self.garbage)
                    self.send(code)
                except ScannerUnplugged:
                    return
                if gap_s and self._stopped.wait(gap_s):
                    return

        thread = threading.Thread(target=run, name="scanner-simulator-play", daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def wait_played(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def wait_drained(self, timeout: float = 2.0, settle_s: float = 0.01) -> bool:
        """Wait until the host has read everything written so far: the pty's input queue is
        empty and stays empty for ``settle_s`` (a master write reaches that queue through the
        kernel's flip buffer a moment later, so one empty look is not enough)."""
        deadline = time.monotonic() + timeout
        empty_since: float | None = None
        while time.monotonic() < deadline:
            with self._lock:
                if self._slave is None:
                    return False
                queued = int.from_bytes(
                    fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder
                )
            now = time.monotonic()
            if queued:
                empty_since = None
            elif empty_since is None:
                empty_since = now
            elif now - empty_since >= settle_s:
                return True
            time.sleep(0.001)
        return False

    # -- internals --

    def _pause(self) -> None:
        delay = self.inter_char_s + (self._rng.uniform(0, self.jitter_s) if self.jitter_s else 0.0)
        if delay and self._stopped.wait(delay):
            raise ScannerUnplugged("simulator stopped")

    def _write(self, data: bytes, generation: int, *, stamp: bool = False) -> int:
        """Write all of ``data`` to the master of pty ``generation``; the master is non-blocking,
        so a full buffer never holds the lock and unplug() can always get in."""
        stamp_ns = 0
        first = True
        while data:
            with self._lock:
                if self._master is None or generation != self._generation:
                    raise ScannerUnplugged("scanner unplugged")
                if stamp and first:
                    stamp_ns = time.perf_counter_ns()
                first = False
                try:
                    written = os.write(self._master, data)
                except BlockingIOError:
                    written = 0
            data = data[written:]
            if data and self._stopped.wait(0.002):
                raise ScannerUnplugged("simulator stopped")
        return stamp_ns

    def _plug(self) -> None:
        # Linux gives a new pty the lowest free number, which may be the one just unplugged. A
        # replugged scanner gets a new path here, so hold on to pairs until one is new.
        held: list[tuple[int, int]] = []
        try:
            for _ in range(16):
                master, slave = os.openpty()
                path = os.ttyname(slave)
                if path not in self.paths[-1:]:
                    break
                held.append((master, slave))
            else:
                raise RuntimeError("could not get a new pty path")
        finally:
            for fds in held:
                for fd in fds:
                    os.close(fd)
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave, self._path = master, slave, path
        self._generation += 1
        self.paths.append(path)
        assert self._dir is not None
        tmp = self.link_path + ".new"
        os.symlink(path, tmp)
        os.replace(tmp, self.link_path)

    def _unplug(self) -> None:
        if self._master is None:
            return
        try:
            os.unlink(self.link_path)
        except FileNotFoundError:
            pass
        master, slave = self._master, self._slave
        self._master = self._slave = self._path = None
        self._generation += 1
        os.close(master)
        if slave is not None:
            os.close(slave)


def measure_scan_latency(n: int, *, timeout_s: float = 5.0) -> list[float]:
    """Per-scan latency in milliseconds, for ``n`` scans one after another: from the simulator's
    write of the terminator (``perf_counter_ns`` just before ``os.write``) to the reader's
    ``on_scan`` callback, through a real pty, pyserial and the reader thread."""
    if n <= 0:
        raise ValueError("n must be positive")
    arrived: queue.Queue[tuple[str, int]] = queue.Queue()
    statuses: queue.Queue[str] = queue.Queue()
    latencies: list[float] = []
    with ScannerSimulator(terminator="CR") as sim:
        reader = SerialScannerReader(
            SerialScannerConfig(port=sim.path, terminator="CR"),
            on_scan=lambda code, _at: arrived.put((code, time.perf_counter_ns())),
            on_status=lambda status, _msg: statuses.put(status),
        )
        reader.start()
        try:
            deadline = time.monotonic() + timeout_s
            while statuses.get(timeout=max(0.0, deadline - time.monotonic())) != STATUS_CONNECTED:
                pass
            for i in range(n):
                code = f"0104012345{i:06d}"
                sim.send(code)
                got, at_ns = arrived.get(timeout=timeout_s)
                if got != code:
                    raise RuntimeError(f"scanned {code!r}, reader got {got!r}")
                latencies.append((at_ns - sim.sent_at_ns[-1]) / 1e6)
        finally:
            reader.stop()
    return latencies
