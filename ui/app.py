"""Starting the console window, and rendering it for documentation.

``run`` is what ``returns-console`` (no sub-command) calls with an opened ``Station``;
``make_window`` builds the same window for tests; ``render_screenshot`` drives a real RMA
through the worker (receive, scan every unit, grade) and saves a PNG of the window.
Note: rendering records those steps in the station database, as a clerk doing them would.
"""
from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QLoggingCategory, QTimer
from PySide6.QtWidgets import QApplication

from console.station import Station
from devices.settings import DeviceSettings, devices_file, load_device_settings
from printing.settings import PrinterSettings, load_printer_settings, printers_file
from ui.main_window import MainWindow

APP_NAME = "Returns Console"


def application(argv: list[str] | None = None) -> QApplication:
    """The running QApplication, created if there is none yet."""
    app = QApplication.instance()
    if app is None:
        # Qt Multimedia lists every optional library it did not find (PipeWire, VA-API) at load:
        # noise at a bench; the sounds say themselves whether they work (ui/sounds.py).
        QLoggingCategory.setFilterRules("qt.multimedia.symbolsresolver=false\nqt.multimedia.ffmpeg=false")
        app = QApplication(list(argv if argv is not None else sys.argv))
        app.setApplicationName(APP_NAME)
        app.setApplicationDisplayName(APP_NAME)
    assert isinstance(app, QApplication)
    return app


def make_window(station: Station, devices: DeviceSettings | None = None,
                printers: PrinterSettings | None = None) -> MainWindow:
    application()
    return MainWindow(station, devices, printers)


def run(station: Station, argv: list[str] | None = None) -> int:
    app = application(argv)
    try:
        devices = load_device_settings(devices_file(station.settings.config_file))
        printers = load_printer_settings(printers_file(station.settings.config_file), station.settings.data_dir)
        window = MainWindow(station, devices, printers, sign_in=True)
        window.show()
        freeze_startup_garbage()
        code = app.exec()
        window.close()  # stops the database worker if the loop ended some other way
        return int(code)
    finally:
        station.close()


def freeze_startup_garbage() -> None:
    """What start-up built lives as long as the window: kept out of the collector's full passes,
    which otherwise hold the GIL for ~80 ms while the GUI thread waits (the stall benchmark)."""
    gc.collect()
    gc.freeze()


def wait_until_idle(window: MainWindow, timeout_ms: int = 30_000) -> None:
    """Spin the event loop until the worker has nothing left to do (no sleeping)."""
    if not window.worker.busy:
        return
    loop = QEventLoop()
    window.worker.idle.connect(loop.quit)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(timeout_ms)
    loop.exec()
    window.worker.idle.disconnect(loop.quit)
    if window.worker.busy:
        raise TimeoutError(f"the database worker was still busy after {timeout_ms} ms")


def _step(window: MainWindow, action: Callable[[], None]) -> None:
    action()
    wait_until_idle(window)


def render_screenshot(station: Station, rma_code: str, out_path: str | Path,
                      grades: tuple[str, ...] = ("A", "B")) -> Path:
    """Open ``rma_code`` at the bench, scan each of its units, grade them (``grades`` in turn,
    the last one repeated) and save the window as a PNG once the proposal is drawn."""
    if QApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    application()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    window = MainWindow(station)
    try:
        window.show()
        _step(window, lambda: window.submit_scan(rma_code))
        if not window.parcel_open:
            raise RuntimeError(f"{rma_code} could not be opened: {window.feedback.text()}")
        used: dict[int, int] = {}
        for item in window.item_model.items():
            nth = used[item.order_line_id] = used.get(item.order_line_id, -1) + 1
            serials = item.serial_numbers
            code = serials[nth] if nth < len(serials) else (item.gtin or item.sku)
            _step(window, lambda c=code: window.submit_scan(c))
        for row in range(window.item_model.rowCount()):
            window._select_row(row)  # noqa: SLF001 - as ↑/↓ in the scan field would
            grade = grades[min(row, len(grades) - 1)]
            _step(window, lambda g=grade: window.grade_selected(g))
        window._select_row(0)  # noqa: SLF001
        QApplication.processEvents()
        if not window.grab().save(str(out), "PNG"):
            raise OSError(f"could not write {out}")
        return out
    finally:
        window.close()
        window.deleteLater()
