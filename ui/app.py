"""Starting the console window.

``run`` is what ``returns-console`` (no sub-command) calls with an opened ``Station``;
``make_window`` builds the same window for tests, the screenshots and the benchmarks
(``scripts/dev/screenshots.py`` renders every screen for the README). ``run`` also sends the
GUI's logs, Qt's warnings and any bug to the log file in the data folder (``ui.crash``).
"""
from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QEventLoop, QLoggingCategory, QTimer
from PySide6.QtWidgets import QApplication

from console.station import Station
from devices.settings import DeviceSettings, devices_file, load_device_settings
from printing.settings import PrinterSettings, load_printer_settings, printers_file
from ui import crash
from ui.main_window import MainWindow

APP_NAME = "Returns Console"


def application(argv: list[str] | None = None) -> QApplication:
    """The running QApplication, created if there is none yet."""
    # Qt Multimedia lists every optional library it did not find (PipeWire, VA-API) when it first
    # loads: noise at a bench; the sounds say themselves whether they work (ui/sounds.py). Set
    # whoever made the application (a test harness may have), before anything loads the plugin.
    QLoggingCategory.setFilterRules("qt.multimedia.symbolsresolver=false\nqt.multimedia.ffmpeg=false")
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv if argv is not None else sys.argv))
        app.setApplicationName(APP_NAME)
        app.setApplicationDisplayName(APP_NAME)
    assert isinstance(app, QApplication)
    return app


def make_window(station: Station, devices: DeviceSettings | None = None,
                printers: PrinterSettings | None = None, *, sync: bool = False) -> MainWindow:
    application()
    return MainWindow(station, devices, printers, sync=sync)


def run(station: Station, argv: list[str] | None = None) -> int:
    app = application(argv)
    reporter = crash.install(station.settings.data_dir)
    try:
        devices = load_device_settings(devices_file(station.settings.config_file))
        printers = load_printer_settings(printers_file(station.settings.config_file), station.settings.data_dir)
        window = MainWindow(station, devices, printers, sign_in=True, sync=True)
        reporter.parent = window
        window.worker.bug.connect(reporter.bug)
        window.show()
        freeze_startup_garbage()
        code = app.exec()
        window.close()  # stops the database worker if the loop ended some other way
        return int(code)
    finally:
        reporter.uninstall()
        station.close()


def freeze_startup_garbage() -> None:
    """What start-up built lives as long as the window: kept out of the collector's full passes,
    which otherwise hold the GIL for ~80 ms while the GUI thread waits (the stall benchmark).
    No collection first: it would only add to start-up, and the few frozen leftovers are small."""
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
