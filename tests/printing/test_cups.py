"""Printing through a real CUPS scheduler: a private ``cupsd`` started for these tests on its own
Unix socket, real ``lp`` and ``lpadmin``, and CUPS's own AppSocket backend (``socket://``) sending
to the fake Zebra on 127.0.0.1, so that what arrives is what a network label printer would get.

``scripts/setup test`` installs CUPS from Debian's packages (cups-daemon, cups-client and the
backends in ``cups``); the system's own scheduler is never touched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from printing.content import DispositionLabel
from printing.fake_printer import FakeLabelPrinter
from printing.printers import (
    CupsPrinter, PrinterOffline, PrinterPaused, PrinterRejected, PrintPayload, make_printer,
)
from printing.render import render
from tests.tools import pixels
from tests.tools.zpl_reader import parse

pytestmark = pytest.mark.skipif(
    shutil.which("cupsd") is None or not Path("/usr/lib/cups/backend/socket").exists(),
    reason="CUPS is not installed (scripts/setup test installs it from Debian's packages)",
)

LABEL = DispositionLabel(lpn="LPN000000000D", disposition="restock", rma="R-00000042", sku="SKU-7",
                         title="Wool coat — ウールコート", grade="A", date="2026-11-23", station="DOCK-1",
                         bin_hint="A-12")


@dataclass
class Cups:
    socket: str
    root: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, timeout=20, check=False,
                              env={**os.environ, "CUPS_SERVER": self.socket, "LC_ALL": "C"})

    def add_queue(self, name: str, uri: str) -> None:
        done = self.run("lpadmin", "-p", name, "-E", "-v", uri, "-m", "raw")
        assert done.returncode == 0, done.stderr


def _wait_for_scheduler(cups: Cups, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cupsd exited: {(cups.root / 'log' / 'error_log').read_text(errors='replace')[-2000:]}")
        if "scheduler is running" in cups.run("lpstat", "-r").stdout:
            return
        time.sleep(0.05)
    raise RuntimeError("cupsd did not start within 15 s")


@pytest.fixture(scope="module")
def cups() -> Iterator[Cups]:
    # Not under pytest's tmp_path: its base is private (0700) and CUPS's backends run as the lp
    # user, who must be able to read the spooled files.
    root = Path(tempfile.mkdtemp(prefix="rc-cups-"))
    root.chmod(0o755)
    for sub in ("spool", "cache", "state", "tmp", "log"):
        (root / sub).mkdir()
    sock = str(root / "cups.sock")
    (root / "cupsd.conf").write_text(f"""Listen {sock}
LogLevel info
WebInterface No
Browsing No
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Location /admin>
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
""")
    # cupsd refuses to run jobs as root; as root it drops to lp, otherwise it runs as whoever we are.
    user = "User lp\nGroup lp\nSystemGroup root\n" if os.geteuid() == 0 else ""
    (root / "cups-files.conf").write_text(f"""ServerRoot {root}
RequestRoot {root}/spool
CacheDir {root}/cache
StateDir {root}/state
TempDir {root}/tmp
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
{user}""")
    process = subprocess.Popen(["cupsd", "-f", "-c", str(root / "cupsd.conf"), "-s", str(root / "cups-files.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Cups(sock, root)
    try:
        _wait_for_scheduler(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def zebra(cups: Cups, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeLabelPrinter]]:
    """A CUPS queue that sends to a fresh fake Zebra over CUPS's socket backend."""
    monkeypatch.setenv("CUPS_SERVER", cups.socket)
    queue = f"zebra-{request.node.name.split('[')[0][-20:].replace('_', '-')}"
    with FakeLabelPrinter() as fake:
        cups.add_queue(queue, f"socket://{fake.host}:{fake.port}")
        yield queue, fake
        cups.run("lpadmin", "-x", queue)


def _wait_done(cups: Cups, queue: str) -> None:
    deadline = time.monotonic() + 15
    while cups.run("lpstat", "-o", queue).stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_zpl_label_goes_through_cups_to_the_printer_byte_for_byte(cups: Cups, zebra: tuple[str, FakeLabelPrinter]) -> None:
    queue, fake = zebra
    payload = render(LABEL, "zpl", 203)

    receipt = CupsPrinter(queue).send(payload)

    assert receipt.startswith(f"CUPS job {queue}-")
    assert fake.wait_jobs(1, timeout=15)
    assert fake.jobs == [payload.data]  # -o raw: no CUPS filter touched it
    assert "LPN000000000D" in [b.data for b in parse(fake.jobs[0].decode("utf-8")).barcodes]


def test_copies_are_printed_as_copies(cups: Cups, zebra: tuple[str, FakeLabelPrinter]) -> None:
    queue, fake = zebra
    payload = render(LABEL, "zpl", 300, copies=2)

    CupsPrinter(queue).send(payload)

    assert fake.wait_jobs(1, timeout=15)
    _wait_done(cups, queue)
    assert b"".join(fake.jobs) == payload.data * 2


def test_a_pdf_arrives_whole_and_its_barcode_scans(cups: Cups, zebra: tuple[str, FakeLabelPrinter]) -> None:
    queue, fake = zebra
    payload = render(LABEL, "pdf", 203)

    CupsPrinter(queue).send(payload)

    assert fake.wait_jobs(1, timeout=15)
    received = fake.jobs[0]
    assert received == payload.data
    assert ("LPN000000000D", "Code128") in pixels.barcodes(received)[0]


def test_a_queue_that_rejects_jobs_leaves_the_job_to_retry(cups: Cups, zebra: tuple[str, FakeLabelPrinter]) -> None:
    queue, fake = zebra
    assert cups.run("cupsreject", queue).returncode == 0

    with pytest.raises(PrinterPaused) as caught:
        CupsPrinter(queue).send(render(LABEL, "zpl", 203))
    assert caught.value.retryable is True
    assert "cupsaccept" in caught.value.message

    assert cups.run("cupsaccept", queue).returncode == 0
    CupsPrinter(queue).send(render(LABEL, "zpl", 203))
    assert fake.wait_jobs(1, timeout=15)


def test_an_unknown_queue_is_a_settings_problem(cups: Cups, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUPS_SERVER", cups.socket)
    printer = make_printer({"backend": "cups", "queue": "no-such-queue"})

    with pytest.raises(PrinterRejected) as caught:
        printer.send(PrintPayload(b"^XA^XZ", "zpl", "label"))
    assert caught.value.retryable is False
    assert "no-such-queue" in caught.value.message and "lpstat -p" in caught.value.message


def test_a_stopped_scheduler_is_offline_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A socket path nothing listens on: lp answers as it does when cupsd is stopped.
    monkeypatch.setenv("CUPS_SERVER", str(tmp_path / "no-cupsd.sock"))
    printer = CupsPrinter("zebra")

    with pytest.raises(PrinterOffline) as caught:
        printer.send(PrintPayload(b"^XA^XZ", "zpl", "label"))
    assert caught.value.retryable is True
    assert "not running" in caught.value.message
    assert "not running" in printer.status()


def test_the_queue_status_comes_from_the_scheduler(cups: Cups, zebra: tuple[str, FakeLabelPrinter]) -> None:
    queue, _ = zebra
    assert f"printer {queue} is idle" in CupsPrinter(queue).status()
    cups.run("cupsdisable", queue)
    assert "disabled" in CupsPrinter(queue).status()
