"""The window and the devices page with real devices: a serial scanner and scales simulated on
real ptys, a real station database, no mocks (pytest-qt, offscreen)."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from sqlalchemy import select

from console.station import Station
from db.models import ParcelReceipt, ReturnAuthorization
from devices.scale_simulator import ScaleSimulator
from devices.scanner_simulator import ScannerSimulator
from devices.serial_scanner import SerialScannerConfig
from devices.settings import DeviceSettings, ScaleSettings, devices_file, load_device_settings
from tests.tools.window_fixtures import station, world  # noqa: F401 - fixtures
from tests.tools.factories import LineSpec, World, add_order, add_rma
from ui.app import make_window
from ui.devices_page import DevicesPage
from ui.main_window import MainWindow

WAIT_MS = 10_000
FROZEN_MS = 600  # the scales below time out after 1 s: a GUI waiting on one stands still that long
GTIN = "0012345678905"  # on AP-1
EXPECTED_G = 1_000 + 330 + 150  # AP-1 + AP-2 + the policy's packaging allowance
EAN13 = "4006381333931"

# The offscreen platform says "This plugin does not support propagateSizeHints()" when a dialog
# (the devices page) is shown: noise of the test platform, not of the console.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


# -- the station --------------------------------------------------------------------------------

def new_rma(world: World) -> ReturnAuthorization:
    """Two units, 1,480 g expected with the packaging."""
    order = add_order(world, [LineSpec("AP-1", 4000, gtin=GTIN, weight_g=1_000),
                              LineSpec("AP-2", 2000, weight_g=330)])
    return add_rma(world, order)


@pytest.fixture
def rma(world: World) -> ReturnAuthorization:
    return new_rma(world)


def receipt_of(world: World, rma: ReturnAuthorization) -> ParcelReceipt:
    with world.uow() as uow:
        receipt = uow.session.scalars(select(ParcelReceipt).where(ParcelReceipt.scanned_code == rma.number)).one()
        uow.session.expunge(receipt)
        return receipt


# -- devices and windows, all closed again ------------------------------------------------------

def fds_on(path: str) -> int:
    """How many of this process's descriptors are open on ``path`` (symlinks followed)."""
    target = os.path.realpath(path)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                count += 1
        except OSError:
            pass  # the descriptor listdir itself used
    return count


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("scanner-reader") and t.is_alive()]


# pytest-qt closes the windows a test opened before fixtures are torn down, so when a simulator
# fixture ends, only the simulator itself may still hold its pty.

@pytest.fixture
def scanner_sim() -> Iterator[ScannerSimulator]:
    sim = ScannerSimulator(terminator="CR").start()
    try:
        yield sim
        if sim.plugged_in:
            assert fds_on(sim.path) == 1, "a scanner reader still holds the port"
    finally:
        sim.stop()


@pytest.fixture
def scale_sim() -> Iterator[Callable[..., ScaleSimulator]]:
    """``scale_sim(grams=..., protocol=...)``: a started scale simulator, stopped after the test."""
    started: list[ScaleSimulator] = []

    def start(grams: int = EXPECTED_G, protocol: str = "mt-sics") -> ScaleSimulator:
        sim = ScaleSimulator(protocol, grams).start()
        started.append(sim)
        return sim

    try:
        yield start
        for sim in started:
            assert fds_on(sim.path) == 1, "a scale driver still holds the port"
    finally:
        for sim in started:
            sim.stop()


@pytest.fixture
def open_window(qtbot, station: Station) -> Iterator[Callable[[DeviceSettings | None], MainWindow]]:
    """``open_window(devices)``: the station window shown with the keyboard in its scan field.
    Closing it must stop every device reader it started."""
    windows: list[MainWindow] = []

    def close_pages(win: MainWindow) -> None:
        # A page left open by a failed test is closed first, so its test devices stop.
        for page in win.findChildren(DevicesPage):
            if page.isVisible():
                page.reject()

    def open_(devices: DeviceSettings | None = None) -> MainWindow:
        win = make_window(station, devices)
        windows.append(win)
        qtbot.addWidget(win, before_close_func=close_pages)
        win.show()
        qtbot.waitExposed(win)
        win.activateWindow()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is win.scan_field, timeout=WAIT_MS)
        return win

    yield open_
    for win in windows:
        win.close()
        assert not win.worker._thread.isRunning()  # noqa: SLF001 - the database thread really ended
        assert win.devices.scanner is None and not win.devices.has_scale
    assert reader_threads() == []


def wait_idle(qtbot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=WAIT_MS)


def wait_status(qtbot, win: MainWindow, text: str) -> None:
    qtbot.waitUntil(lambda: text in win.device_label.text(), timeout=WAIT_MS)


class Heartbeat:
    """A 10 ms QTimer on the GUI thread; ``longest_gap_ms`` is how long the GUI was away."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def __enter__(self) -> Heartbeat:
        self.ticks.append(time.perf_counter())
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.stop()
        self.ticks.append(time.perf_counter())

    @property
    def longest_gap_ms(self) -> float:
        return max(b - a for a, b in zip(self.ticks, self.ticks[1:])) * 1000


# -- 1, 2: the serial scanner -------------------------------------------------------------------

def test_a_serial_scanner_opens_the_parcel_and_receives_its_units(
        qtbot, open_window, scanner_sim: ScannerSimulator, world: World, rma: ReturnAuthorization) -> None:
    win = open_window(DeviceSettings(scanner=SerialScannerConfig(port=scanner_sim.path, terminator="CR")))
    wait_status(qtbot, win, f"scanner on {scanner_sim.path}")
    assert "no scale: type the weight" in win.device_label.text()

    scanner_sim.send(rma.number)
    qtbot.waitUntil(lambda: win.parcel_open and win.item_model.rowCount() == 2, timeout=WAIT_MS)
    assert rma.number in win.rma_label.text()
    assert win.feedback.property("level") == "success" and rma.number in win.feedback.text()

    scanner_sim.send(GTIN)
    qtbot.waitUntil(lambda: win.item_model.item(0).reception_status == "received", timeout=WAIT_MS)
    scanner_sim.send("AP-2")
    qtbot.waitUntil(lambda: win.item_model.item(1).reception_status == "received", timeout=WAIT_MS)
    assert "AP-2" in win.feedback.text() and win.feedback.property("level") == "success"
    assert QApplication.focusWidget() is win.scan_field and win.scan_field.text() == ""


def test_the_scanner_status_follows_an_unplug_and_a_replug_through_its_stable_link(
        qtbot, open_window, scanner_sim: ScannerSimulator, rma: ReturnAuthorization) -> None:
    # Configured by its /dev/serial/by-id style link: the default locator finds it again under
    # the new pty the replug gives.
    link = scanner_sim.link_path
    win = open_window(DeviceSettings(scanner=SerialScannerConfig(port=link, terminator="CR")))
    wait_status(qtbot, win, f"scanner on {link}")
    first_pty = scanner_sim.path
    assert fds_on(first_pty) == 2  # the simulator's slave and the reader's port

    scanner_sim.unplug()
    wait_status(qtbot, win, "SCANNER DISCONNECTED")
    assert fds_on(first_pty) == 0

    new_pty = scanner_sim.replug()
    assert new_pty != first_pty
    wait_status(qtbot, win, f"scanner on {link}")
    scanner_sim.send(rma.number)
    qtbot.waitUntil(lambda: win.parcel_open, timeout=WAIT_MS)
    assert rma.number in win.rma_label.text()


# -- 3, 4: the scale ----------------------------------------------------------------------------

def test_the_scale_is_read_once_the_parcel_is_received(
        qtbot, open_window, scale_sim, world: World, rma: ReturnAuthorization) -> None:
    sim = scale_sim(EXPECTED_G)
    win = open_window(DeviceSettings(scale=ScaleSettings(protocol="mt-sics", port=sim.path, timeout_s=2)))
    assert f"scale mt-sics on {sim.path}" in win.device_label.text()

    win.submit_scan(rma.number)
    qtbot.waitUntil(lambda: win.weight_check_label.text().startswith("parcel weighs"), timeout=WAIT_MS)
    wait_idle(qtbot, win)
    assert win.weight_check_label.text().startswith("parcel weighs 1,480 g, expected 1,480 g")
    assert win.weight_check_label.property("mismatch") == "false"
    assert win.feedback.property("level") == "success" and win.feedback.text().startswith("Weight OK")
    assert "scale: 1,480 g stable" in win.device_label.text()
    receipt = receipt_of(world, rma)
    assert (receipt.weight_g, receipt.weight_source, receipt.weight_reason) == (1480, "scale", None)
    assert receipt.scale_division_g == 1  # MT-SICS sends 1480.0 g: a 0.1 g step, rounded up to 1 g
    assert sim.received and set(sim.received) == {b"SI"}


def test_a_scale_in_motion_times_out_with_advice_and_the_gui_keeps_going(
        qtbot, open_window, scale_sim, world: World, rma: ReturnAuthorization) -> None:
    sim = scale_sim(EXPECTED_G)
    sim.set_motion(True)
    win = open_window(DeviceSettings(scale=ScaleSettings(protocol="mt-sics", port=sim.path, timeout_s=1)))

    with Heartbeat() as beat:
        win.submit_scan(rma.number)
        qtbot.waitUntil(lambda: "weighing" in win.device_label.text(), timeout=WAIT_MS)
        started = time.perf_counter()
        qtbot.waitUntil(lambda: win.feedback.property("level") == "error", timeout=WAIT_MS)
        waited = time.perf_counter() - started
    assert waited > 0.7  # the read really waited for the parcel to settle
    # A read on the GUI thread would stall it for the whole 1 s timeout; the bound leaves room for a
    # busy machine's first paint (loading fonts), which is not what this test is about.
    assert len(beat.ticks) > 30 and beat.longest_gap_ms < FROZEN_MS, beat.longest_gap_ms
    assert "did not settle within 1.0 s" in win.feedback.text()
    assert "keep the parcel still" in win.feedback.text()
    assert "scale: not read" in win.device_label.text()
    assert win.parcel_open and win.weight_check_label.text() == "not weighed; expected 1,480 g"
    assert receipt_of(world, rma).weight_g is None

    sim.set_motion(False)  # the clerk steadies the parcel and weighs again
    qtbot.keyClick(win.scan_field, Qt.Key.Key_F8)
    assert win.feedback.text().startswith("Weighing")
    qtbot.waitUntil(lambda: win.weight_check_label.text().startswith("parcel weighs 1,480 g"), timeout=WAIT_MS)
    wait_idle(qtbot, win)
    assert receipt_of(world, rma).weight_source == "scale"


def test_a_light_parcel_is_a_weight_mismatch(
        qtbot, open_window, scale_sim, world: World, rma: ReturnAuthorization) -> None:
    sim = scale_sim(120)
    win = open_window(DeviceSettings(scale=ScaleSettings(protocol="mt-sics", port=sim.path, timeout_s=2)))

    win.submit_scan(rma.number)
    qtbot.waitUntil(lambda: win.weight_check_label.property("mismatch") == "true", timeout=WAIT_MS)
    wait_idle(qtbot, win)
    assert win.weight_check_label.text().startswith("WEIGHT MISMATCH: parcel weighs 120 g, expected 1,480 g")
    assert win.feedback.property("level") == "error" and "Open the parcel" in win.feedback.text()
    assert (receipt_of(world, rma).weight_g, receipt_of(world, rma).weight_source) == (120, "scale")


def test_weighing_before_the_scan_records_that_reading_without_a_second_read(
        qtbot, open_window, scale_sim, world: World, rma: ReturnAuthorization) -> None:
    sim = scale_sim(120)
    win = open_window(DeviceSettings(scale=ScaleSettings(protocol="mt-sics", port=sim.path, timeout_s=2)))

    qtbot.keyClick(win.scan_field, Qt.Key.Key_F8)  # no parcel open: the reading goes to the weight field
    qtbot.waitUntil(lambda: win.weight.value() == 120, timeout=WAIT_MS)
    polls = len(sim.received)
    win.submit_scan(rma.number)
    qtbot.waitUntil(lambda: win.parcel_open, timeout=WAIT_MS)
    wait_idle(qtbot, win)
    assert win.weight_check_label.property("mismatch") == "true"
    assert win.weight_check_label.text().startswith("WEIGHT MISMATCH: parcel weighs 120 g")
    receipt = receipt_of(world, rma)
    assert (receipt.weight_g, receipt.weight_source, receipt.scale_division_g) == (120, "scale", 1)
    assert len(sim.received) == polls and not win.devices._scale_busy  # noqa: SLF001 - no second read


# -- 5, 6: the devices page ---------------------------------------------------------------------

def open_page(qtbot, win: MainWindow) -> DevicesPage:
    qtbot.keyClick(win.scan_field, Qt.Key.Key_F9)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), DevicesPage), timeout=WAIT_MS)
    page = QApplication.activeModalWidget()
    assert isinstance(page, DevicesPage) and page is win.findChild(DevicesPage)
    qtbot.waitExposed(page)
    # The page takes the keyboard: its own shortcuts (F5, F8, Ctrl+S) work from here on.
    qtbot.waitUntil(lambda: QApplication.activeWindow() is page and page.isAncestorOf(QApplication.focusWidget()),
                    timeout=WAIT_MS)
    return page


def press_on_page(qtbot, page: DevicesPage, key: Qt.Key,
                  modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(QApplication.focusWidget() or page, key, modifier)


def result_texts(page: DevicesPage) -> list[str]:
    return [page.results.item(i).text() for i in range(page.results.count())]


def test_the_devices_page_tries_the_scale_and_a_wedge_scan_then_saves(
        qtbot, open_window, scale_sim, station: Station) -> None:
    sim = scale_sim(EXPECTED_G)
    win = open_window()
    assert win.device_label.text() == "keyboard scanner · no scale: type the weight"
    page = open_page(qtbot, win)
    assert win.devices.scanner is None and not win.devices.has_scale
    before = win.feedback.text()

    page.scale_on.setChecked(True)
    page.scale_protocol.setCurrentText("mt-sics")
    page.scale_port.setCurrentText(sim.path)
    page.timeout.setValue(2.0)
    press_on_page(qtbot, page, Qt.Key.Key_F5)  # apply to the live test
    assert page.device_status.text() == f"keyboard scanner · scale mt-sics on {sim.path}"
    press_on_page(qtbot, page, Qt.Key.Key_F8)  # test the scale
    qtbot.waitUntil(lambda: page.results.count() == 1, timeout=WAIT_MS)
    assert result_texts(page)[0].startswith("scale: 1,480 g stable")
    assert page.error.text() == ""

    # A keyboard-wedge scan, typed at scanner speed wherever the keyboard is on the page.
    page.results.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is page.results, timeout=WAIT_MS)
    qtbot.keyClicks(page.results, EAN13)
    qtbot.keyClick(page.results, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.results.count() == 2, timeout=WAIT_MS)
    assert result_texts(page)[0] == f"✔ '{EAN13}' → GTIN 0{EAN13}"
    assert page.isVisible()  # Enter ended the scan; it did not press Save
    assert win.feedback.text() == before and not win.parcel_open  # the window heard nothing

    page.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save).click()
    qtbot.waitUntil(lambda: win.devices.has_scale, timeout=WAIT_MS)
    path = devices_file(station.settings.config_file)
    assert path == station.settings.config_file.with_name("devices.toml") and path.exists()
    saved = load_device_settings(path)
    assert saved.scale == ScaleSettings(protocol="mt-sics", port=sim.path, timeout_s=2.0)
    assert saved.scanner is None
    assert f"scale mt-sics on {sim.path}" in win.device_label.text()
    assert win.feedback.property("level") == "success" and win.feedback.text().startswith("Device settings saved")
    assert QApplication.activeModalWidget() is None

    # A window manager gives the keyboard back to the window when the page closes; offscreen
    # has none, so the test does it.
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.scan_field, timeout=WAIT_MS)
    qtbot.keyClick(win.scan_field, Qt.Key.Key_F8)  # the window now weighs on the saved scale
    qtbot.waitUntil(lambda: win.weight.value() == EXPECTED_G, timeout=WAIT_MS)


def test_the_devices_page_refuses_to_save_a_scale_without_a_port(
        qtbot, open_window, station: Station) -> None:
    win = open_window()
    page = open_page(qtbot, win)
    page.scale_on.setChecked(True)
    page.scale_port.setCurrentText("")
    page.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save).click()
    assert page.error.text().startswith("Not saved: port is empty")
    assert page.isVisible() and QApplication.activeModalWidget() is page
    assert page.saved is None and not devices_file(station.settings.config_file).exists()

    press_on_page(qtbot, page, Qt.Key.Key_F5)  # applying says so too, and tests nothing
    assert "port is empty" in page.error.text() and page.error.text().endswith("apply [F5].")

    page.reject()
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=WAIT_MS)
    assert win.device_label.text() == "keyboard scanner · no scale: type the weight"
    assert not devices_file(station.settings.config_file).exists()


# -- 7: stopping and restarting devices at the wrong moment ----------------------------------------

def test_opening_the_devices_page_while_the_scale_settles_does_not_freeze_the_window(
        qtbot, open_window, scale_sim, rma: ReturnAuthorization) -> None:
    sim = scale_sim(EXPECTED_G)
    sim.set_motion(True)
    win = open_window(DeviceSettings(scale=ScaleSettings(protocol="mt-sics", port=sim.path, timeout_s=1)))
    win.submit_scan(rma.number)
    qtbot.waitUntil(lambda: "weighing" in win.device_label.text(), timeout=WAIT_MS)
    try:
        with Heartbeat() as beat:
            qtbot.keyClick(win.scan_field, Qt.Key.Key_F9)  # the hub stops while the scale waits
            qtbot.wait(50)
        assert beat.longest_gap_ms < FROZEN_MS, f"the GUI stood still for {beat.longest_gap_ms:.0f} ms"
    finally:
        qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), DevicesPage), timeout=WAIT_MS)
        QApplication.activeModalWidget().reject()
        qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=WAIT_MS)


def test_a_reading_for_a_parcel_put_down_is_not_recorded_on_the_next_parcel(
        qtbot, open_window, scale_sim, world: World, rma: ReturnAuthorization) -> None:
    second = new_rma(world)
    sim = scale_sim(EXPECTED_G)
    sim.set_motion(True, settle_after_s=0.5)
    win = open_window(DeviceSettings(scale=ScaleSettings(protocol="mt-sics", port=sim.path, timeout_s=2)))
    win.submit_scan(rma.number)  # parcel A on the scale: its read starts as it opens
    qtbot.waitUntil(lambda: win.parcel_open and "weighing" in win.device_label.text(), timeout=WAIT_MS)
    qtbot.keyClick(win.scan_field, Qt.Key.Key_Escape)  # A is put down before the scale settles
    assert not win.parcel_open
    qtbot.waitUntil(lambda: "scale: 1,480 g stable" in win.device_label.text(), timeout=WAIT_MS)

    sim.set_weight(900)  # parcel B on the scale
    win.submit_scan(second.number)
    qtbot.waitUntil(lambda: win.parcel_open, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not win.devices._scale_busy, timeout=WAIT_MS)  # noqa: SLF001
    wait_idle(qtbot, win)
    b = receipt_of(world, second)
    assert (b.weight_g, b.weight_source) == (900, "scale"), f"B recorded with {b.weight_g} g from {b.weight_source}"


def test_saving_the_devices_page_keeps_the_settings_it_does_not_show(
        qtbot, open_window, scanner_sim: ScannerSimulator, station: Station) -> None:
    from devices.wedge import GS, WedgeConfig

    current = DeviceSettings(wedge=WedgeConfig(gs_aliases=(GS, "|"), max_length=200),
                             scanner=SerialScannerConfig(port=scanner_sim.path, encoding="utf-8", max_scan_length=64))
    win = open_window(current)
    wait_status(qtbot, win, f"scanner on {scanner_sim.path}")
    page = open_page(qtbot, win)
    press_on_page(qtbot, page, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)  # save, nothing changed
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=WAIT_MS)
    saved = load_device_settings(devices_file(station.settings.config_file))
    assert saved == current


_CLOSE_WITH_PAGE_OPEN = r"""
import sys, tempfile, threading
from datetime import datetime, timezone
from pathlib import Path
from PySide6.QtTest import QTest
from console.config import Settings
from console.station import Station
from db.engine import sqlite_url
from devices.scanner_simulator import ScannerSimulator
from devices.serial_scanner import SerialScannerConfig
from devices.settings import DeviceSettings
from tests.tools.factories import make_world
from ui.app import make_window

tmp = Path(tempfile.mkdtemp())
world = make_world(tmp / "station.sqlite3")
world.clock.now = datetime.now(timezone.utc)
station = Station(Settings(data_dir=tmp, config_file=tmp / "config.toml", station_db=tmp / "station.sqlite3",
                           central_url=sqlite_url(tmp / "central.sqlite3")), world.engine, world.policy, world.actor)
with ScannerSimulator() as sim:
    win = make_window(station, DeviceSettings(scanner=SerialScannerConfig(port=sim.path)))
    win.show()
    QTest.qWait(100)
    win.open_devices_page()
    QTest.qWait(200)  # the page runs its own test reader on the port
    win.close()  # e.g. run() after app.exec() returned, with the page still open
    win.deleteLater()
    QTest.qWait(100)
    readers = [t.name for t in threading.enumerate() if t.name.startswith("scanner-reader")]
    world.engine.dispose()
    print("readers left:", readers, flush=True)
    sys.exit(3 if readers else 0)
"""


def test_closing_the_window_with_the_devices_page_open_stops_every_device() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", _CLOSE_WITH_PAGE_OPEN], cwd=root, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(root)})
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stdout[-500:]} {proc.stderr[-1500:]}"
