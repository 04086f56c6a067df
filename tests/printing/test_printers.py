"""Printer backends against real things: files in tmp_path, the fake Zebra on a real TCP socket,
stand-in ``lp`` executables (a real CUPS scheduler is in test_cups.py), a real pty for the serial port. No mocks."""
from __future__ import annotations

import os
import re
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from printing.fake_printer import STATES, FakeLabelPrinter, host_status_reply
from printing.printers import (
    CupsPrinter,
    FolderPrinter,
    HostStatus,
    Printer,
    PrinterError,
    PrinterHeadOpen,
    PrinterOffline,
    PrinterOutOfPaper,
    PrinterPaused,
    PrinterRejected,
    PrinterTimeout,
    PrintPayload,
    RawTcpPrinter,
    SerialPrinter,
    make_printer,
    parse_host_status,
)

ZPL = b"^XA^FO50,50^A0N,40,40^FDRC-LPN-000123^FS^BY3^FO50,120^BCN,100,Y,N,N^FDRC-LPN-000123^FS^XZ"
FAST = 0.3  # seconds: the timeout the failure tests configure
QUICK = 3.0  # generous bound for "returned fast"


def zpl(name: str = "disposition-label-RC-LPN-000123", copies: int = 1) -> PrintPayload:
    return PrintPayload(ZPL, "zpl", name, copies)


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def fake() -> Iterator[FakeLabelPrinter]:
    with FakeLabelPrinter() as printer:
        yield printer


# --- payload ---------------------------------------------------------------------------------


def test_payload_checks_its_format_and_copies() -> None:
    with pytest.raises(ValueError, match="format"):
        PrintPayload(b"x", "png", "x")
    with pytest.raises(ValueError, match="copies"):
        PrintPayload(b"x", "pdf", "x", copies=0)


# --- folder ----------------------------------------------------------------------------------


def test_folder_writes_exact_bytes_and_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "printouts"  # does not exist yet
    printer = FolderPrinter(folder)
    receipts = [printer.send(PrintPayload(f"%PDF-{i}".encode(), "pdf", "exchange-slip-RMA-1")) for i in range(3)]

    names = ["exchange-slip-RMA-1.pdf", "exchange-slip-RMA-1-2.pdf", "exchange-slip-RMA-1-3.pdf"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    for i, name in enumerate(names):
        assert (folder / name).read_bytes() == f"%PDF-{i}".encode()
        assert receipts[i] == f"written to {folder / name}"
    assert printer.send(PrintPayload(ZPL, "zpl", "label")).endswith("label.zpl")
    assert printer.send(PrintPayload(b"\x1b@", "escpos", "receipt")).endswith("receipt.bin")


@pytest.mark.parametrize("name", ["../../escaped", "../../../etc/passwd", "a/b/c", "/abs/olute", "..", ".", "",
                                  ".hidden", "-rf", "名前/../x", "a\x00b", "x" * 500])
def test_folder_names_cannot_escape_the_folder(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "out"
    receipt = FolderPrinter(folder).send(PrintPayload(b"data", "pdf", name))

    written = Path(receipt.removeprefix("written to "))
    assert written.parent == folder
    assert written.read_bytes() == b"data"
    assert not written.name.startswith((".", "-"))
    assert len(written.name) <= 110
    everything = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert everything == [written]  # nothing outside the folder, no temporary file left


def test_folder_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    printer = FolderPrinter(tmp_path)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for i in range(5):
                printer.send(PrintPayload(f"writer {writer} job {i}".encode(), "zpl", "same-name"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    contents = sorted(p.read_bytes() for p in tmp_path.iterdir())
    assert contents == sorted(f"writer {w} job {i}".encode() for w in range(8) for i in range(5))


def test_folder_a_watcher_never_sees_a_partial_file(tmp_path: Path) -> None:
    """A hot-folder watcher lists the folder while big jobs are written: every file it can see
    under its final name is already complete."""
    size = 4 * 1024 * 1024
    printer = FolderPrinter(tmp_path)
    done = threading.Event()
    seen: dict[str, set[int]] = {}

    def watch() -> None:
        while not done.is_set():
            for entry in os.scandir(tmp_path):
                if not entry.name.startswith("."):
                    try:
                        seen.setdefault(entry.name, set()).add(entry.stat().st_size)
                    except FileNotFoundError:
                        pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(8):
            printer.send(PrintPayload(bytes([i]) * size, "pdf", "claim-packet"))
    finally:
        done.set()
        watcher.join(10)
    assert len(seen) >= 1
    assert all(sizes == {size} for sizes in seen.values()), seen
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_folder_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    printer = FolderPrinter(blocker)
    with pytest.raises(PrinterRejected) as caught:
        printer.send(PrintPayload(b"x", "pdf", "x"))
    assert caught.value.retryable is False
    assert str(blocker) in caught.value.message
    assert isinstance(printer.status(), str)


def test_folder_takes_only_its_formats(tmp_path: Path) -> None:
    printer = FolderPrinter(tmp_path, name="pdf-only", formats=("pdf",))
    with pytest.raises(PrinterRejected, match="cannot print ZPL") as caught:
        printer.send(zpl())
    assert caught.value.retryable is False
    assert list(tmp_path.iterdir()) == []


def test_folder_status(tmp_path: Path) -> None:
    assert "made at the first print" in FolderPrinter(tmp_path / "new").status()
    assert str(tmp_path) in FolderPrinter(tmp_path).status()


# --- the fake printer itself -----------------------------------------------------------------


def test_fake_answers_hs_in_the_zebra_format(fake: FakeLabelPrinter) -> None:
    with socket.create_connection((fake.host, fake.port), timeout=2) as sock:
        sock.sendall(b"~H")
        time.sleep(0.05)  # a query split across two TCP segments is still one query
        sock.sendall(b"S")
        reply = b""
        while reply.count(b"\x03\r\n") < 3:
            chunk = sock.recv(1024)
            assert chunk, "fake closed before answering"
            reply += chunk
    frames = re.fullmatch(rb"(\x02[^\x02\x03]*\x03\r\n){3}", reply)
    assert frames is not None, reply
    lines = [f.split(b",") for f in re.findall(rb"\x02([^\x03]*)\x03", reply)]
    assert [len(fields) for fields in lines] == [12, 11, 2]
    assert fake.status_queries == 1
    assert fake.wait_received(1)
    assert fake.jobs == []  # a connection that only asked for status prints nothing


def test_fake_offline_refuses_and_ok_listens_on_the_same_port(fake: FakeLabelPrinter) -> None:
    port = fake.port
    fake.set_state("offline")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((fake.host, port), timeout=2).close()
    fake.set_state("ok")
    assert fake.port == port
    socket.create_connection((fake.host, port), timeout=2).close()
    with pytest.raises(ValueError):
        fake.set_state("on fire")


def test_fake_stops_cleanly_leaving_no_thread_or_socket() -> None:
    threads_before, fds_before = set(threading.enumerate()), _fds()
    fake = FakeLabelPrinter().start()
    clients: list[socket.socket] = []
    try:
        for state in (*STATES, "silent", "ok", "offline", "paused"):  # a connection left open in each
            fake.set_state(state)
            try:
                clients.append(socket.create_connection((fake.host, fake.port), timeout=1))
            except ConnectionRefusedError:
                assert state == "offline"
            else:
                assert state != "offline"
    finally:
        fake.stop()
        fake.stop()  # idempotent
        for client in clients:
            client.close()
    assert set(threading.enumerate()) == threads_before
    assert _fds() == fds_before


# --- raw TCP against the fake ----------------------------------------------------------------


def test_tcp_zpl_job_arrives_byte_exact_after_a_status_query(fake: FakeLabelPrinter) -> None:
    printer = RawTcpPrinter(fake.host, fake.port, name="zebra-1", timeout_s=2)
    receipt = printer.send(zpl(copies=2))

    assert fake.wait_jobs(1)
    assert fake.jobs == [ZPL + ZPL]
    assert fake.received == [b"~HS" + ZPL + ZPL]  # the query first, on the same connection
    assert receipt == f"sent {2 * len(ZPL):,} bytes to {fake.host}:{fake.port}"


def test_tcp_without_status_query_sends_only_the_job(fake: FakeLabelPrinter) -> None:
    RawTcpPrinter(fake.host, fake.port, timeout_s=2, query_status=False).send(zpl())
    assert fake.wait_jobs(1)
    assert fake.received == [ZPL]
    assert fake.status_queries == 0


def test_tcp_escpos_printer_is_never_sent_a_zpl_query(fake: FakeLabelPrinter) -> None:
    receipt = b"\x1b@hello\n\x1dVB\x00"
    RawTcpPrinter(fake.host, fake.port, timeout_s=2, formats=("escpos",)).send(PrintPayload(receipt, "escpos", "r"))
    assert fake.wait_jobs(1)
    assert fake.received == [receipt]


@pytest.mark.parametrize(
    ("state", "error", "words"),
    [
        ("paper_out", PrinterOutOfPaper, "out of paper: load labels"),
        ("head_open", PrinterHeadOpen, "head open"),
        ("paused", PrinterPaused, "paused: press PAUSE"),
    ],
)
def test_tcp_printer_fault_stops_the_job_before_it_is_sent(
    fake: FakeLabelPrinter, state: str, error: type[PrinterError], words: str
) -> None:
    fake.set_state(state)
    printer = RawTcpPrinter(fake.host, fake.port, timeout_s=2)
    with pytest.raises(error) as caught:
        printer.send(zpl())
    assert caught.value.retryable is True
    assert words in caught.value.message
    assert f"{fake.host}:{fake.port}" in caught.value.message
    assert fake.wait_received(1)
    assert fake.jobs == []  # nothing printed
    assert fake.received == [b"~HS"]
    assert words in printer.status()


def test_tcp_silent_printer_times_out_fast_and_nothing_is_sent(fake: FakeLabelPrinter) -> None:
    fake.set_state("silent")
    printer = RawTcpPrinter(fake.host, fake.port, timeout_s=FAST)
    started = time.monotonic()
    with pytest.raises(PrinterTimeout) as caught:
        printer.send(zpl())
    elapsed = time.monotonic() - started
    assert FAST * 0.8 <= elapsed < QUICK
    assert caught.value.retryable is True
    assert "did not answer a status query within 0.3 s" in caught.value.message
    assert fake.jobs == [] and fake.status_queries == 0

    started = time.monotonic()
    assert "did not answer" in printer.status()
    assert time.monotonic() - started < QUICK


def test_tcp_printer_that_never_reads_cannot_hang_a_big_job(fake: FakeLabelPrinter) -> None:
    fake.set_state("silent")
    big = PrintPayload(b"^XA" + b"^FDx^FS" * (32 * 1024 * 1024 // 7) + b"^XZ", "zpl", "big")
    started = time.monotonic()
    with pytest.raises(PrinterTimeout) as caught:
        RawTcpPrinter(fake.host, fake.port, timeout_s=FAST, query_status=False).send(big)
    assert time.monotonic() - started < QUICK
    assert "stopped taking data" in caught.value.message


def test_tcp_offline_then_back_ok(fake: FakeLabelPrinter) -> None:
    printer = RawTcpPrinter(fake.host, fake.port, timeout_s=FAST)
    fake.set_state("offline")
    started = time.monotonic()
    with pytest.raises(PrinterOffline) as caught:
        printer.send(zpl())
    assert time.monotonic() - started < QUICK
    assert caught.value.retryable is True
    assert "refuses connections" in caught.value.message
    assert "refuses connections" in printer.status()

    fake.set_state("ok")
    printer.send(zpl())
    assert fake.wait_jobs(1)
    assert fake.jobs == [ZPL]
    assert "is ready" in printer.status()


def test_tcp_unknown_host_name_is_offline() -> None:
    with pytest.raises(PrinterOffline, match="cannot be found on the network"):
        RawTcpPrinter("label-printer.invalid", timeout_s=FAST).send(zpl())


def test_tcp_refuses_a_pdf_without_connecting(fake: FakeLabelPrinter) -> None:
    with pytest.raises(PrinterRejected, match="cannot print PDF") as caught:
        RawTcpPrinter(fake.host, fake.port, name="zebra-1").send(PrintPayload(b"%PDF-1.7", "pdf", "slip"))
    assert caught.value.retryable is False
    assert fake.connections == 0


def test_tcp_leaves_no_socket_open(fake: FakeLabelPrinter) -> None:
    printer = RawTcpPrinter(fake.host, fake.port, timeout_s=FAST)
    fds_before = _fds()
    printer.send(zpl())
    for state in ("paper_out", "silent", "offline"):
        fake.set_state(state)
        with pytest.raises(PrinterError):
            printer.send(zpl())
        printer.status()
    assert _fds() - fds_before == set()  # (the fake's own listener went away when offline)


# --- the ~HS parser --------------------------------------------------------------------------

# As the ZPL II guide lays it out: <STX>aaa,b,c,dddd,eee,f,g,h,iii,j,k,l<ETX><CR><LF>,
# <STX>mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www<ETX><CR><LF>, <STX>xxxx,y<ETX><CR><LF>.
MANUAL_STYLE = (b"\x02030,1,1,1218,002,0,0,0,000,0,0,0\x03\r\n"
                b"\x02001,0,1,0,1,2,6,0,00000005,1,000\x03\r\n"
                b"\x021234,0\x03\r\n")


def test_parse_host_status_reads_the_documented_fields() -> None:
    assert parse_host_status(MANUAL_STYLE) == HostStatus(
        paper_out=True, paused=True, head_open=True, ribbon_out=False, buffer_full=False,
        formats_in_buffer=2, labels_remaining=5,
    )
    idle = parse_host_status(host_status_reply())
    assert not (idle.paper_out or idle.paused or idle.head_open or idle.ribbon_out)
    assert parse_host_status(host_status_reply(ribbon_out=True)).ribbon_out


@pytest.mark.parametrize("reply", [b"", b"OK\r\n", b"\x02030,0,0\x03\r\n" * 3, MANUAL_STYLE[:-30],
                                   MANUAL_STYLE.replace(b"030,1,1", b"030,x,1")])
def test_parse_host_status_rejects_anything_else(reply: bytes) -> None:
    with pytest.raises(ValueError):
        parse_host_status(reply)


# --- CUPS ------------------------------------------------------------------------------------


def test_cups_without_lp_says_cups_is_not_installed(tmp_path: Path) -> None:
    printer = CupsPrinter("zebra", lp=str(tmp_path / "lp"), lpstat=str(tmp_path / "lpstat"))
    with pytest.raises(PrinterRejected) as caught:
        printer.send(zpl())
    assert caught.value.retryable is False
    assert "CUPS is not installed" in caught.value.message
    assert "cups-client" in caught.value.message
    assert "CUPS is not installed" in printer.status()


def _stand_in_lp(tmp_path: Path, script: str) -> str:
    """An executable that answers as CUPS's lp does (its stdout/stderr strings are lp.c's),
    recording its arguments and standard input: the subprocess, pipes and timeout are real."""
    path = tmp_path / "lp"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_cups_sends_raw_zpl_through_lp_and_reads_the_job_id(tmp_path: Path) -> None:
    lp = _stand_in_lp(tmp_path, f'''
printf '%s\\n' "$@" > {tmp_path}/args
cat > {tmp_path}/stdin
echo "request id is zebra-1-12 (1 file(s))"
''')
    receipt = CupsPrinter("zebra-1", lp=lp).send(zpl("disposition-label-RC-LPN-000123", copies=2))

    assert receipt == "CUPS job zebra-1-12"
    assert (tmp_path / "stdin").read_bytes() == ZPL  # copies are lp's -n, not repeated bytes
    assert (tmp_path / "args").read_text().splitlines() == [
        "-d", "zebra-1", "-n", "2", "-t", "disposition-label-RC-LPN-000123", "-o", "raw"]


def test_cups_sends_pdf_through_the_filters(tmp_path: Path) -> None:
    lp = _stand_in_lp(tmp_path, f'printf "%s\\n" "$@" > {tmp_path}/args\ncat >/dev/null\n'
                                'echo "request id is office-3 (1 file(s))"\n')
    assert CupsPrinter("office", lp=lp).send(PrintPayload(b"%PDF-1.7", "pdf", "claim")) == "CUPS job office-3"
    assert "raw" not in (tmp_path / "args").read_text().splitlines()


@pytest.mark.parametrize(
    ("said", "scheduler", "error", "retryable"),
    [
        ("lp: The printer or class does not exist.", "scheduler is running", PrinterRejected, False),
        # lp says the same when nothing answers: then the service is down, not the name wrong
        ("lp: The printer or class does not exist.", "scheduler is not running", PrinterOffline, True),
        ("lp: Error - Scheduler Not Responding.", "scheduler is not running", PrinterOffline, True),
        ("lp: No such file or directory", "scheduler is not running", PrinterOffline, True),
        ('lp: Destination "zebra" is not accepting jobs.', "scheduler is running", PrinterPaused, True),
    ],
)
def test_cups_errors_from_lp(tmp_path: Path, said: str, scheduler: str, error: type[PrinterError],
                             retryable: bool) -> None:
    lp = _stand_in_lp(tmp_path, f"cat >/dev/null\necho '{said}' >&2\nexit 1\n")
    lpstat = tmp_path / "lpstat"
    lpstat.write_text(f"#!/bin/sh\necho '{scheduler}'\n")
    lpstat.chmod(0o755)
    with pytest.raises(error) as caught:
        CupsPrinter("zebra", lp=lp, lpstat=str(lpstat)).send(zpl())
    assert caught.value.retryable is retryable
    assert said in caught.value.message


def test_cups_lp_that_hangs_times_out(tmp_path: Path) -> None:
    lp = _stand_in_lp(tmp_path, "exec sleep 30\n")
    started = time.monotonic()
    with pytest.raises(PrinterTimeout):
        CupsPrinter("zebra", lp=lp, timeout_s=FAST).send(zpl())
    assert time.monotonic() - started < QUICK


# --- serial, over a real pty -----------------------------------------------------------------


@pytest.fixture
def pty_port() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    try:
        yield master, os.ttyname(slave)  # the slave stays open so the master never reads EIO
    finally:
        os.close(master)
        os.close(slave)


def _read_master(master: int, size: int, timeout: float = 5.0) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + timeout
    os.set_blocking(master, False)
    while len(got) < size and time.monotonic() < deadline:
        try:
            got += os.read(master, 65536)
        except BlockingIOError:
            time.sleep(0.005)
    return bytes(got)


def test_serial_bytes_arrive_exact(pty_port: tuple[int, str]) -> None:
    master, path = pty_port
    # Every byte value: a port left in cooked mode would turn \n into \r\n or eat XON/XOFF.
    data = bytes(range(256)) * 40
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(_read_master(master, len(data))))
    reader.start()
    receipt = SerialPrinter(path, baudrate=115200).send(PrintPayload(data, "escpos", "receipt"))
    reader.join(10)
    assert result == [data]
    assert receipt == f"sent {len(data):,} bytes to {path}"


def test_serial_missing_port_is_offline(tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyUSB9")
    printer = SerialPrinter(missing)
    with pytest.raises(PrinterOffline) as caught:
        printer.send(zpl())
    assert caught.value.retryable is True
    assert missing in caught.value.message and "not connected" in caught.value.message
    assert "not connected" in printer.status()


def test_serial_printer_that_takes_nothing_times_out(pty_port: tuple[int, str]) -> None:
    _master, path = pty_port  # nobody reads the master: the pty fills up and writes stall
    started = time.monotonic()
    with pytest.raises(PrinterTimeout) as caught:
        SerialPrinter(path, baudrate=115200, timeout_s=FAST).send(PrintPayload(b"Z" * (1 << 20), "zpl", "big"))
    assert time.monotonic() - started < QUICK
    assert caught.value.retryable is True


def test_serial_port_in_use_is_offline(pty_port: tuple[int, str]) -> None:
    _master, path = pty_port
    with serial.Serial(path, exclusive=True):
        with pytest.raises(PrinterOffline, match="in use by another program"):
            SerialPrinter(path).send(zpl())


def test_serial_refuses_pdf() -> None:
    with pytest.raises(PrinterRejected):
        SerialPrinter("/dev/null").send(PrintPayload(b"%PDF", "pdf", "x"))


# --- make_printer ----------------------------------------------------------------------------


def test_make_printer_builds_each_backend(tmp_path: Path) -> None:
    folder = make_printer({"backend": "folder", "path": str(tmp_path)})
    assert isinstance(folder, FolderPrinter) and folder.name == "folder" and folder.path == tmp_path

    tcp = make_printer({"name": "zebra-1", "backend": "tcp", "host": "10.0.0.5", "port": 6101, "timeout_s": 2})
    assert isinstance(tcp, RawTcpPrinter)
    assert (tcp.name, tcp.host, tcp.port, tcp.timeout_s, tcp.formats, tcp.query_status) == (
        "zebra-1", "10.0.0.5", 6101, 2.0, ("zpl",), True)
    assert make_printer({"backend": "tcp", "host": "p"}).port == 9100  # type: ignore[attr-defined]

    cups = make_printer({"backend": "cups", "queue": "office"})
    assert isinstance(cups, CupsPrinter) and cups.queue == "office" and cups.formats == ("pdf", "zpl", "escpos")

    ser = make_printer({"name": "till", "backend": "serial", "port": "/dev/ttyUSB0", "baudrate": 19200,
                        "formats": ["escpos"]})
    assert isinstance(ser, SerialPrinter)
    assert (ser.port, ser.baudrate, ser.formats) == ("/dev/ttyUSB0", 19200, ("escpos",))
    for printer in (folder, tcp, cups, ser):
        assert isinstance(printer, Printer)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({}, "backend must be one of folder, tcp, cups, serial"),
        ({"backend": "usb"}, "not 'usb'"),
        ({"backend": "tcp", "host": "p", "hots": "q"}, "unknown setting 'hots'"),
        ({"backend": "tcp"}, "host must be a non-empty text"),
        ({"backend": "tcp", "host": "  "}, "host must be a non-empty text"),
        ({"backend": "tcp", "host": "10.0.0.5/24"}, "host must be a host name"),
        ({"backend": "tcp", "host": "p", "port": 0}, "port must be a whole number from 1 to 65535"),
        ({"backend": "tcp", "host": "p", "port": "9100"}, "port must be a whole number"),
        ({"backend": "tcp", "host": "p", "port": True}, "port must be a whole number"),
        ({"backend": "tcp", "host": "p", "timeout_s": 0}, "timeout_s must be a number of seconds"),
        ({"backend": "tcp", "host": "p", "query_status": "yes"}, "query_status must be true or false"),
        ({"backend": "tcp", "host": "p", "formats": ["pdf"]}, "takes zpl or escpos, not pdf"),
        ({"backend": "tcp", "host": "p", "formats": "zpl"}, "formats must be a list"),
        ({"backend": "tcp", "host": "p", "formats": ["png"]}, "'png'"),
        ({"backend": "folder"}, "path must be a non-empty text"),
        ({"backend": "cups", "queue": "my printer"}, "not a CUPS queue name"),
        ({"backend": "serial", "port": "/dev/ttyUSB0", "baudrate": -1}, "baudrate must be a whole number"),
        ({"backend": "serial", "port": "/dev/ttyUSB0", "host": "x"}, "unknown setting 'host'"),
        ({"name": "", "backend": "folder", "path": "/tmp"}, "name must be a non-empty text"),
    ],
)
def test_make_printer_says_what_is_wrong(settings: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        make_printer(settings)


def test_make_printer_message_names_the_printer() -> None:
    with pytest.raises(ValueError, match="printer 'zebra-1': port"):
        make_printer({"name": "zebra-1", "backend": "tcp", "host": "p", "port": 70000})
