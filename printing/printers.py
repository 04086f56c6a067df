"""Printer backends: where the bytes of a printed document go, and what went wrong on the way.

Every backend takes a :class:`PrintPayload` (bytes already drawn as PDF, ZPL or ESC/POS) and
either returns a short receipt of what happened or raises a :class:`PrinterError` whose
``message`` tells the clerk what to do and whose ``retryable`` tells the print queue whether to
keep the job waiting (offline, out of paper, head open, paused, timeout) or to give up on it
(a configuration error: unknown CUPS queue, a format the printer cannot take).

Backends block (sockets, subprocesses, serial ports), always with a timeout: run them on a
worker thread, never on the GUI thread.

    printer = make_printer({"name": "zebra-1", "backend": "tcp", "host": "10.0.0.5"})
    printer.send(PrintPayload(zpl, "zpl", "disposition-label-RC-LPN-000123"))
"""
from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import serial

__all__ = [
    "FORMATS",
    "CupsPrinter",
    "FolderPrinter",
    "HostStatus",
    "PrintPayload",
    "Printer",
    "PrinterError",
    "PrinterHeadOpen",
    "PrinterOffline",
    "PrinterOutOfPaper",
    "PrinterPaused",
    "PrinterRejected",
    "PrinterRibbonOut",
    "PrinterTimeout",
    "RawTcpPrinter",
    "SerialPrinter",
    "make_printer",
    "parse_host_status",
]

FORMATS: tuple[str, ...] = ("pdf", "zpl", "escpos")
_EXTENSIONS = {"pdf": "pdf", "zpl": "zpl", "escpos": "bin"}
_RAW_FORMATS = ("zpl", "escpos")  # sent to the device as they are, never through a driver


def _secs(seconds: float) -> str:
    return f"{seconds:.1f}" if round(seconds, 1) == seconds else f"{seconds:.2f}"


# --- the payload and the errors --------------------------------------------------------------


@dataclass(frozen=True)
class PrintPayload:
    data: bytes
    format: str  # "pdf" | "zpl" | "escpos"
    name: str  # e.g. "disposition-label-RC-LPN-000123": file names and CUPS job titles
    copies: int = 1

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if self.copies < 1:
            raise ValueError(f"copies must be 1 or more, not {self.copies!r}")


class PrinterError(Exception):
    """A printing problem the clerk can act on; ``message`` says what to do.

    ``retryable`` True: the job stays waiting and is tried again (the printer can recover);
    False: trying again cannot help until someone changes the configuration.
    """

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class PrinterOffline(PrinterError):
    """Not reachable: refused, unreachable, unplugged, scheduler down."""


class PrinterOutOfPaper(PrinterError):
    pass


class PrinterRibbonOut(PrinterError):
    """A thermal-transfer printer without ribbon (ZPL ~HS reports it beside paper out)."""


class PrinterHeadOpen(PrinterError):
    pass


class PrinterPaused(PrinterError):
    pass


class PrinterTimeout(PrinterError):
    """No answer, or no progress, within the timeout; nothing is known to have printed."""


class PrinterRejected(PrinterError):
    """A configuration problem: retrying the same job on the same printer cannot help."""

    retryable = False


@runtime_checkable
class Printer(Protocol):
    name: str
    formats: tuple[str, ...]

    def send(self, payload: PrintPayload) -> str: ...

    def status(self) -> str: ...


def _check_format(printer: Printer, payload: PrintPayload, what: str) -> None:
    if payload.format not in printer.formats:
        raise PrinterRejected(
            f"The printer {printer.name} ({what}) cannot print {payload.format.upper()} documents, "
            f"only {', '.join(f.upper() for f in printer.formats)}: choose another printer for "
            "this document in the printer settings"
        )


def _status_text(printer: Printer, check: Callable[[], str]) -> str:
    """Run ``check`` and turn whatever it raises into the status line: status() never raises."""
    try:
        return check()
    except PrinterError as exc:
        return exc.message
    except Exception as exc:  # noqa: BLE001 - a status line must say something, never raise
        return f"The printer {printer.name} cannot be checked: {type(exc).__name__}: {exc}"


# --- folder ----------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")
_MAX_STEM = 100
_MAX_SUFFIX = 9999


def safe_stem(name: str) -> str:
    """A file name stem that stays inside its folder: no separators, no "..", no leading dot
    (a hidden file, or a hot-folder watcher skipping it) or dash (read as an option)."""
    stem = _DOTS.sub(".", _UNSAFE.sub("_", name)).lstrip(".-_").rstrip(".")
    return stem[:_MAX_STEM] or "document"


class FolderPrinter:
    """Writes each job as ``<folder>/<name>.<ext>`` (pdf, zpl, bin for ESC/POS).

    The default on a fresh machine, and a hot folder for print servers that watch one. A name
    already taken gets ``-2``, ``-3`` … and nothing is ever overwritten. The bytes go to a
    hidden temporary file first, are fsynced, and only then get their name through ``os.link``,
    which fails instead of replacing an existing file (``os.replace`` would silently overwrite
    one that another station or thread wrote a moment earlier). On a file system without hard
    links (FAT on a USB stick, some SMB shares) the name is reserved with ``O_EXCL`` and the
    file moved onto it with ``os.replace``; there a reader may see an empty file for a moment.
    """

    formats: tuple[str, ...]

    def __init__(self, path: str | os.PathLike[str], *, name: str = "folder",
                 formats: tuple[str, ...] = FORMATS) -> None:
        self.name = name
        self.path = Path(path)
        self.formats = tuple(formats)

    def send(self, payload: PrintPayload) -> str:
        _check_format(self, payload, f"folder {self.path}")
        stem, ext = safe_stem(payload.name), _EXTENSIONS[payload.format]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            final = self._write_new(payload.data, stem, ext)
        except OSError as exc:
            raise self._error(exc) from exc
        copies = f" ({payload.copies} copies asked for: print them from the file)" if payload.copies > 1 else ""
        return f"written to {final}{copies}"

    def status(self) -> str:
        def check() -> str:
            if not self.path.is_dir():
                return f"The print folder {self.path} does not exist yet: it is made at the first print"
            if not os.access(self.path, os.W_OK | os.X_OK):
                raise PrinterRejected(f"The print folder {self.path} cannot be written: choose another folder")
            return f"Prints go to the folder {self.path}"

        return _status_text(self, check)

    def _write_new(self, data: bytes, stem: str, ext: str) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            final = self._claim_name(tmp, stem, ext)
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self._fsync_folder()
        return final

    def _claim_name(self, tmp: str, stem: str, ext: str) -> Path:
        for n in range(1, _MAX_SUFFIX + 1):
            candidate = self.path / (f"{stem}.{ext}" if n == 1 else f"{stem}-{n}.{ext}")
            try:
                os.link(tmp, candidate)
                return candidate
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
            # No hard links here: reserve the name, then move the finished file onto it.
            try:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                continue
            os.replace(tmp, candidate)
            return candidate
        raise PrinterRejected(
            f"The print folder {self.path} already holds {_MAX_SUFFIX} files named {stem}: "
            "move the old ones away"
        )

    def _fsync_folder(self) -> None:
        # The new name lives in the folder's entry list; fsync it so that a power cut after
        # "written to ..." cannot lose the file.
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some network file systems refuse fsync on a folder; the data itself is synced
        finally:
            os.close(fd)

    def _error(self, exc: OSError) -> PrinterError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return PrinterError(
                f"The disk holding the print folder {self.path} is full: free some space, then press Retry"
            )
        if isinstance(exc, (PermissionError, NotADirectoryError, FileExistsError)) or exc.errno == errno.EROFS:
            return PrinterRejected(
                f"The print folder {self.path} cannot be written ({exc.strerror}): choose another "
                "folder in the printer settings"
            )
        return PrinterOffline(
            f"The print folder {self.path} cannot be written ({exc.strerror}): check that its disk "
            "or network share is there, then press Retry"
        )


# --- raw TCP (port 9100) and the Zebra host status -------------------------------------------


@dataclass(frozen=True)
class HostStatus:
    """What a Zebra printer says about itself in reply to ``~HS``."""

    paper_out: bool
    paused: bool
    head_open: bool
    ribbon_out: bool
    buffer_full: bool
    formats_in_buffer: int
    labels_remaining: int


HS_QUERY = b"~HS"
_HS_FRAME = re.compile(rb"\x02([^\x02\x03]*)\x03\r\n")


def parse_host_status(reply: bytes) -> HostStatus:
    """Parse the three ``<STX>…<ETX><CR><LF>`` strings a Zebra sends back for ``~HS``.

    ZPL II Programming Guide, ``~HS``: string 1 is ``aaa,b,c,dddd,eee,f,g,h,iii,j,k,l`` with
    b = paper out, c = pause, eee = formats in the receive buffer, f = buffer full; string 2 is
    ``mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www`` with o = head up (open), p = ribbon out,
    uuuuuuuu = labels remaining in the batch; string 3 is ``xxxx,y`` (password, static RAM).
    Raises ValueError for anything else.
    """
    frames = _HS_FRAME.findall(reply)
    if len(frames) < 3:
        raise ValueError(f"expected 3 framed strings, got {len(frames)}")
    line1 = frames[0].decode("ascii", "replace").split(",")
    line2 = frames[1].decode("ascii", "replace").split(",")
    if len(line1) < 6 or len(line2) < 9:
        raise ValueError(f"expected 12 and 11 fields, got {len(line1)} and {len(line2)}")

    def flag(fields: list[str], i: int) -> bool:
        value = fields[i].strip()
        if value not in ("0", "1"):
            raise ValueError(f"flag {i + 1} is {value!r}, not 0 or 1")
        return value == "1"

    def number(fields: list[str], i: int) -> int:
        value = fields[i].strip()
        if not value.isdigit():
            raise ValueError(f"field {i + 1} is {value!r}, not a number")
        return int(value)

    return HostStatus(
        paper_out=flag(line1, 1),
        paused=flag(line1, 2),
        head_open=flag(line2, 2),
        ribbon_out=flag(line2, 3),
        buffer_full=flag(line1, 5),
        formats_in_buffer=number(line1, 4),
        labels_remaining=number(line2, 8),
    )


class RawTcpPrinter:
    """A network printer that prints what arrives on a TCP port (9100: "raw", JetDirect).

    For ZPL (and ``query_status``) it first sends ``~HS`` on the same connection and sends the
    job only when the printer says it can print: a job sent to a paused or empty printer would
    sit in its buffer and come out later, perhaps on the next parcel's bench. No answer to
    ``~HS`` within ``timeout_s`` is a :class:`PrinterTimeout` and the job is not sent (Zebra
    documents that some printers do not answer ``~HS`` at all while out of media or with the
    head open, so the message says to look at the printer).

    ``timeout_s`` bounds the connect, the status reply and the whole ``sendall`` each, so a
    printer that accepts the connection but never reads cannot hang the worker.
    """

    def __init__(self, host: str, port: int = 9100, *, name: str | None = None,
                 timeout_s: float = 5.0, formats: tuple[str, ...] = ("zpl",),
                 query_status: bool = True) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s!r}")
        self.host = host
        self.port = port
        self.name = name or f"{host}:{port}"
        self.timeout_s = timeout_s
        self.formats = tuple(formats)
        self.query_status = query_status

    @property
    def _where(self) -> str:
        kind = "label printer" if "zpl" in self.formats else "printer"
        return f"The {kind} at {self.host}:{self.port}"

    def _dropped(self, exc: OSError) -> PrinterOffline:
        return PrinterOffline(
            f"{self._where} dropped the connection ({exc.strerror or exc}): check that it is "
            "switched on and ready, then press Retry"
        )

    def send(self, payload: PrintPayload) -> str:
        _check_format(self, payload, f"raw TCP {self.host}:{self.port}")
        data = payload.data * payload.copies
        with self._connect() as sock:
            if payload.format == "zpl" and self.query_status:
                problem = self._problem(self._host_status(sock))
                if problem is not None:
                    raise problem
            try:
                sock.sendall(data)
                # End of job: print servers that spool per connection (JetDirect) print on EOF.
                sock.shutdown(socket.SHUT_WR)
            except TimeoutError:
                raise PrinterTimeout(
                    f"{self._where} stopped taking data for {_secs(self.timeout_s)} s: check its "
                    "display for an error, then press Retry (the label may print twice)"
                ) from None
            except OSError as exc:
                raise self._dropped(exc) from exc
        return f"sent {len(data):,} bytes to {self.host}:{self.port}"

    def status(self) -> str:
        def check() -> str:
            with self._connect() as sock:
                if "zpl" in self.formats and self.query_status:
                    status = self._host_status(sock)
                    problem = self._problem(status)
                    if problem is not None:
                        return problem.message
                    waiting = status.formats_in_buffer
                    return f"{self._where} is ready" + (f" ({waiting} label formats in its buffer)" if waiting else "")
            return f"{self._where} accepts connections"

        return _status_text(self, check)

    # internals -------------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except ConnectionRefusedError:
            raise PrinterOffline(
                f"{self._where} refuses connections: check that it is switched on and that its "
                "network cable is in, then press Retry"
            ) from None
        except TimeoutError:
            raise PrinterOffline(
                f"{self._where} did not answer within {_secs(self.timeout_s)} s: check that it is "
                "switched on and connected to the network, then press Retry"
            ) from None
        except socket.gaierror:
            raise PrinterOffline(
                f"The printer name {self.host} cannot be found on the network: check the "
                "printer's address in the printer settings, then press Retry"
            ) from None
        except OSError as exc:
            raise PrinterOffline(
                f"{self._where} cannot be reached ({exc.strerror or exc}): check that it is "
                "switched on and connected to the network, then press Retry"
            ) from exc
        sock.settimeout(self.timeout_s)
        return sock

    def _host_status(self, sock: socket.socket) -> HostStatus:
        deadline = time.monotonic() + self.timeout_s
        reply = b""
        try:
            sock.sendall(HS_QUERY)
            while reply.count(b"\x03\r\n") < 3:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = sock.recv(1024)
                if not chunk:
                    raise PrinterOffline(
                        f"{self._where} closed the connection instead of answering a status query: "
                        "check that it is ready, then press Retry"
                    )
                reply += chunk
                if len(reply) > 4096:
                    break  # not a Zebra: let the parser say so
        except TimeoutError:
            raise PrinterTimeout(
                f"{self._where} did not answer a status query within {_secs(self.timeout_s)} s: "
                "check its display (out of labels, head open, an error), then press Retry"
            ) from None
        except OSError as exc:
            raise self._dropped(exc) from exc
        finally:
            sock.settimeout(self.timeout_s)
        try:
            return parse_host_status(reply)
        except ValueError as exc:
            raise PrinterRejected(
                f"{self._where} answered the status query in a way the console cannot read ({exc}): "
                "check that it is a ZPL label printer, or turn off status queries in its settings"
            ) from None

    def _problem(self, status: HostStatus) -> PrinterError | None:
        # A printer pauses itself on most faults, so the fault goes first: "paused" alone
        # would send the clerk to the PAUSE button while the lid is still open.
        if status.head_open:
            return PrinterHeadOpen(
                f"{self._where} has its print head open: close the head until it clicks, then press Retry"
            )
        if status.paper_out:
            return PrinterOutOfPaper(f"{self._where} is out of paper: load labels, then press Retry")
        if status.ribbon_out:
            return PrinterRibbonOut(f"{self._where} is out of ribbon: load a new ribbon, then press Retry")
        if status.paused:
            return PrinterPaused(
                f"{self._where} is paused: press PAUSE on the printer to resume, then press Retry"
            )
        return None


# --- CUPS ------------------------------------------------------------------------------------

_UNKNOWN_QUEUE = ("does not exist", "unknown destination", "invalid destination", "not found",
                  "no such destination")
_NOT_ACCEPTING = ("not accepting jobs",)
_NO_SCHEDULER = ("scheduler", "connection refused", "no such file or directory", "bad file descriptor",
                 "unable to connect", "service-unavailable", "server-error-service-unavailable")


class CupsPrinter:
    """A CUPS queue, through the ``lp`` command (``cups-client``).

    ``lp`` runs with ``LC_ALL=C``: its answer ("request id is zebra-12 (1 file(s))") and its
    errors are translated otherwise, and they are what this class reads. ZPL and ESC/POS go with
    ``-o raw`` so that no CUPS filter touches them.
    """

    def __init__(self, queue: str, *, name: str | None = None, timeout_s: float = 15.0,
                 formats: tuple[str, ...] = FORMATS, lp: str = "lp", lpstat: str = "lpstat") -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s!r}")
        self.queue = queue
        self.name = name or queue
        self.timeout_s = timeout_s
        self.formats = tuple(formats)
        self.lp = lp
        self.lpstat = lpstat

    def send(self, payload: PrintPayload) -> str:
        _check_format(self, payload, f"CUPS queue {self.queue}")
        args = [self.lp, "-d", self.queue, "-n", str(payload.copies), "-t", payload.name]
        if payload.format in _RAW_FORMATS:
            args += ["-o", "raw"]
        result = self._run(args, payload.data)
        output = f"{result.stdout}\n{result.stderr}"
        if result.returncode != 0:
            raise self._error(result.stderr.strip() or result.stdout.strip() or f"exit status {result.returncode}")
        found = re.search(rf"\b{re.escape(self.queue)}-(\d+)\b", output)
        if found is None:
            return f"CUPS took the job for {self.queue}"
        return f"CUPS job {found.group(0)}"

    def status(self) -> str:
        def check() -> str:
            result = self._run([self.lpstat, "-p", self.queue], b"")
            text = (result.stdout.strip() or result.stderr.strip()).splitlines()
            if result.returncode != 0:
                return self._error(text[0] if text else f"exit status {result.returncode}").message
            return text[0] if text else f"CUPS queue {self.queue}"

        return _status_text(self, check)

    def _run(self, args: list[str], data: bytes) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        try:
            done = subprocess.run(args, input=data, capture_output=True, timeout=self.timeout_s,
                                  env=env, check=False)
        except FileNotFoundError:
            raise PrinterRejected(
                f"CUPS is not installed on this station (the {args[0]} command is missing): install "
                "cups-client, or choose another printer backend in the printer settings"
            ) from None
        except PermissionError:
            raise PrinterRejected(
                f"The CUPS command {args[0]} cannot be run here: check the CUPS installation"
            ) from None
        except subprocess.TimeoutExpired:
            raise PrinterTimeout(
                f"CUPS did not take the job for {self.queue} within {_secs(self.timeout_s)} s: check "
                "that the print service is running, then press Retry"
            ) from None
        return subprocess.CompletedProcess(
            done.args, done.returncode,
            done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"),
        )

    def _scheduler_running(self) -> bool:
        try:
            result = self._run([self.lpstat, "-r"], b"")
        except PrinterError:
            return False
        return "scheduler is running" in result.stdout

    def _error(self, said: str) -> PrinterError:
        low = said.lower()
        # lp says "The printer or class does not exist" also when no scheduler answers at all;
        # only a running scheduler makes that a wrong queue name rather than a service down.
        if any(s in low for s in _UNKNOWN_QUEUE) and self._scheduler_running():
            return PrinterRejected(
                f"CUPS has no printer queue named {self.queue} ({said}): check the queue name in "
                "the printer settings (lpstat -p lists them)"
            )
        if any(s in low for s in _NOT_ACCEPTING):
            return PrinterPaused(
                f"The CUPS queue {self.queue} is not accepting jobs ({said}): ask an admin to "
                "enable it (cupsaccept), then press Retry"
            )
        if any(s in low for s in _NO_SCHEDULER + _UNKNOWN_QUEUE):
            return PrinterOffline(
                f"The CUPS print service is not running ({said}): start it (systemctl start cups), "
                "then press Retry"
            )
        return PrinterError(f"CUPS could not print on {self.queue} ({said}): check the queue, then press Retry")


# --- serial ----------------------------------------------------------------------------------

_GONE = (errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EIO)
_POLL_S = 0.01


class SerialPrinter:
    """A printer on a serial or USB-CDC port (ZPL label printers, ESC/POS receipt printers).

    ``timeout_s`` is a stall timeout: the job fails when no byte has gone out for that long
    (flow control held by a printer out of paper, a cable pulled), not when a long job at 9600
    baud simply takes a while. The job is written in chunks that each fit well inside it.
    """

    def __init__(self, port: str, *, name: str | None = None, baudrate: int = 9600,
                 timeout_s: float = 5.0, formats: tuple[str, ...] = _RAW_FORMATS,
                 rtscts: bool = False, xonxoff: bool = False) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s!r}")
        if baudrate <= 0:
            raise ValueError(f"baudrate must be positive, not {baudrate!r}")
        self.port = port
        self.name = name or port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.formats = tuple(formats)
        self.rtscts = rtscts
        self.xonxoff = xonxoff
        # Half the timeout's worth of bytes at the line speed (10 bits a byte on the wire).
        self._chunk = max(64, min(4096, int(baudrate / 10 * timeout_s / 2)))

    @property
    def _where(self) -> str:
        return f"The printer on {self.port}"

    def send(self, payload: PrintPayload) -> str:
        _check_format(self, payload, f"serial {self.port}")
        data = payload.data * payload.copies
        port = self._open()
        try:
            for start in range(0, len(data), self._chunk):
                try:
                    port.write(data[start:start + self._chunk])
                except serial.SerialTimeoutException:
                    self._stalled(port)
                except serial.SerialException as exc:
                    raise PrinterOffline(
                        f"{self._where} went away while printing ({exc}): check its cable, then press Retry"
                    ) from exc
            self._drain(port)
        finally:
            port.close()
        return f"sent {len(data):,} bytes to {self.port}"

    def status(self) -> str:
        def check() -> str:
            self._open().close()
            return f"{self._where} is connected"

        return _status_text(self, check)

    def _open(self) -> serial.Serial:
        try:
            return serial.Serial(port=self.port, baudrate=self.baudrate, timeout=0,
                                 write_timeout=self.timeout_s, rtscts=self.rtscts,
                                 xonxoff=self.xonxoff, exclusive=True)
        except ValueError as exc:
            raise PrinterRejected(f"{self._where} cannot be set up ({exc}): check its serial settings") from exc
        except serial.SerialException as exc:
            code = exc.errno
            if code in (errno.EACCES, errno.EPERM):
                raise PrinterRejected(
                    f"The console may not open {self.port}: add this user to the dialout group "
                    "(then sign out and in), or choose another port"
                ) from exc
            if code in (errno.EAGAIN, errno.EBUSY) or "lock" in str(exc).lower():
                raise PrinterOffline(
                    f"{self._where} is in use by another program: close it, then press Retry"
                ) from exc
            if code in _GONE or code is None:
                raise PrinterOffline(
                    f"{self._where} is not connected: check its cable and that it is switched on, "
                    "then press Retry"
                ) from exc
            raise PrinterOffline(f"{self._where} cannot be opened ({exc}): check its cable, then press Retry") from exc

    def _drain(self, port: serial.Serial) -> None:
        """Wait until the kernel has put every byte on the wire, with the same stall timeout:
        closing a port with bytes still queued can block for the driver's closing wait."""
        last, since = -1, time.monotonic()
        while True:
            try:
                left = port.out_waiting
            except (OSError, serial.SerialException):
                return  # a port without an output-queue ioctl: nothing to wait for
            if left == 0:
                return
            now = time.monotonic()
            if left != last:
                last, since = left, now
            elif now - since >= self.timeout_s:
                self._stalled(port)
            time.sleep(_POLL_S)

    def _stalled(self, port: serial.Serial) -> None:
        try:
            port.reset_output_buffer()  # so that close() does not wait for bytes that never go
        except (OSError, serial.SerialException):
            pass
        raise PrinterTimeout(
            f"{self._where} took no data for {_secs(self.timeout_s)} s: check its display (paper, "
            "lid, error light) and its cable, then press Retry (the job may print twice)"
        )


# --- from settings ---------------------------------------------------------------------------

BACKENDS: tuple[str, ...] = ("folder", "tcp", "cups", "serial")
_COMMON = ("name", "backend", "formats")
_BACKEND_KEYS: dict[str, tuple[str, ...]] = {
    "folder": ("path",),
    "tcp": ("host", "port", "timeout_s", "query_status"),
    "cups": ("queue", "timeout_s"),
    "serial": ("port", "baudrate", "timeout_s", "rtscts", "xonxoff"),
}
_CUPS_NAME = re.compile(r"[^\s/\\#'\"]+")


def make_printer(settings: Mapping[str, Any]) -> Printer:
    """Build a printer from its settings (a ``devices.toml`` table, the printers page).

        {"name": "zebra-1", "backend": "tcp", "host": "10.0.0.5", "port": 9100}
        {"backend": "folder", "path": "/home/aiko/Printouts"}
        {"backend": "cups", "queue": "zebra"}
        {"backend": "serial", "port": "/dev/ttyUSB0", "baudrate": 9600}

    Optional everywhere: ``name`` (default: the backend) and ``formats`` (a list, default: what
    the backend takes). Raises ValueError naming the printer and the setting that is wrong.
    """
    if not isinstance(settings, Mapping):
        raise ValueError(f"printer settings must be a table of keys and values, not {type(settings).__name__}")
    backend = settings.get("backend")
    name = settings.get("name", backend)
    label = f"printer {name!r}" if isinstance(name, str) and name else "printer"
    if backend not in BACKENDS:
        raise ValueError(f"{label}: backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{label}: name must be a non-empty text, not {name!r}")
    allowed = _COMMON + _BACKEND_KEYS[backend]
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(
            f"{label}: unknown setting {', '.join(map(repr, unknown))} ({backend} printers take "
            f"{', '.join(_BACKEND_KEYS[backend])})"
        )

    def text(key: str) -> str:
        value = settings.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{label}: {key} must be a non-empty text, not {value!r}")
        return value.strip()

    def integer(key: str, default: int, low: int, high: int) -> int:
        value = settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{label}: {key} must be a whole number from {low} to {high}, not {value!r}")
        return value

    def seconds(default: float) -> float:
        value = settings.get("timeout_s", default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 600:
            raise ValueError(f"{label}: timeout_s must be a number of seconds above 0 and up to 600, not {value!r}")
        return float(value)

    def switch(key: str, default: bool) -> bool:
        value = settings.get(key, default)
        if not isinstance(value, bool):
            raise ValueError(f"{label}: {key} must be true or false, not {value!r}")
        return value

    def formats(default: tuple[str, ...]) -> tuple[str, ...]:
        value = settings.get("formats", default)
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{label}: formats must be a list of {', '.join(FORMATS)}, not {value!r}")
        bad = [f for f in value if f not in FORMATS]
        if bad:
            raise ValueError(f"{label}: formats must be a list of {', '.join(FORMATS)}; {bad!r} is not")
        if backend in ("tcp", "serial") and "pdf" in value:
            raise ValueError(f"{label}: a {backend} printer takes zpl or escpos, not pdf (use cups for PDF)")
        return tuple(dict.fromkeys(value))

    name = name.strip()
    if backend == "folder":
        return FolderPrinter(Path(text("path")).expanduser(), name=name, formats=formats(FORMATS))
    if backend == "tcp":
        host = text("host")
        if any(c.isspace() for c in host) or "/" in host:
            raise ValueError(f"{label}: host must be a host name or IP address, not {host!r}")
        return RawTcpPrinter(host, integer("port", 9100, 1, 65535), name=name, timeout_s=seconds(5.0),
                             formats=formats(("zpl",)), query_status=switch("query_status", True))
    if backend == "cups":
        queue = text("queue")
        if not _CUPS_NAME.fullmatch(queue):
            raise ValueError(f"{label}: queue {queue!r} is not a CUPS queue name (no spaces, /, \\, # or quotes)")
        return CupsPrinter(queue, name=name, timeout_s=seconds(15.0), formats=formats(FORMATS))
    return SerialPrinter(text("port"), name=name, baudrate=integer("baudrate", 9600, 50, 4_000_000),
                         timeout_s=seconds(5.0), formats=formats(_RAW_FORMATS),
                         rtscts=switch("rtscts", False), xonxoff=switch("xonxoff", False))
