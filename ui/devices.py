"""The station's scanners and scale, seen from the GUI: signals in, never a wait on the GUI thread.

- Keyboard-wedge scans come from :class:`ui.scan_filter.ScanEventFilter` on the application.
- A serial scanner's reader runs on its own thread (``devices.serial_scanner``); its callbacks
  emit Qt signals, which Qt queues to the GUI thread.
- The scale is read by :class:`ScaleWorker` on a QThread: a read may wait seconds for the
  parcel to settle, and the GUI keeps going meanwhile.

:class:`DeviceHub` owns all three and gives the window one ``scanned`` signal, one ``weighed``
signal and a one-line status per device.
"""
from __future__ import annotations

import logging
import threading
import time

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QApplication

from devices.scale_protocols import WeightReading
from devices.scales import ScaleCancelled, ScaleDisconnected, ScaleDriver, ScaleError, open_scale
from devices.serial_scanner import SerialScannerConfig, SerialScannerReader
from devices.settings import DeviceSettings, ScaleSettings
from devices.weighing import division_grams, whole_grams
from ui.scan_filter import ScanEventFilter

log = logging.getLogger(__name__)


class ScannerBridge(QObject):
    """A serial scanner as Qt signals. ``scanned`` carries the code and the reader's
    ``perf_counter_ns`` receive time (for the latency benchmark)."""

    scanned = Signal(str, object)  # object: a perf_counter_ns value overflows a C int
    status = Signal(str, str)

    def __init__(self, config: SerialScannerConfig, parent: QObject | None = None, **reader_kwargs: object) -> None:
        super().__init__(parent)
        # Called on the reader's thread: emitting from there is safe, delivery is queued.
        self.reader = SerialScannerReader(config, on_scan=lambda code, t: self.scanned.emit(code, t),
                                          on_status=lambda s, m: self.status.emit(s, m),
                                          **reader_kwargs)  # type: ignore[arg-type]

    def start(self) -> None:
        self.reader.start()

    def stop(self) -> None:
        self.reader.stop()


class ScaleWorker(QObject):
    """Lives on a QThread; each ``read`` asks the scale for a stable weight."""

    weighed = Signal(object, object)  # WeightReading, division in grams (int | None)
    failed = Signal(str)

    def __init__(self, settings: ScaleSettings) -> None:
        super().__init__()
        self.settings = settings
        self._driver: ScaleDriver | None = None
        # Set from the GUI thread when the hub stops: a read waiting for the parcel to settle
        # ends within one poll, so stopping never waits on a scale.
        self.cancel = threading.Event()

    @Slot()
    def read(self) -> None:
        s = self.settings
        if self.cancel.is_set():
            self._close()
            return
        try:
            if self._driver is None:
                self._driver = open_scale(s.protocol, s.port, baudrate=s.baudrate, framing=s.framing,
                                          timeout_s=s.timeout_s)
            reading = self._driver.read_stable(s.timeout_s, cancel=self.cancel)
        except ScaleCancelled:
            self._close()  # the hub is stopping; nobody waits for this answer
        except ScaleDisconnected as exc:
            self._close()
            self.failed.emit(exc.message)
        except ScaleError as exc:
            self.failed.emit(exc.message)
        except (OSError, ValueError) as exc:  # settings the driver refuses, a port that vanished
            self._close()
            self.failed.emit(f"Scale on {s.port}: {exc}. Check the devices page [F9].")
        else:
            self.weighed.emit(reading, division_grams(reading, s.division_g))

    @Slot()
    def close(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._driver is not None:
            try:
                self._driver.close()
            except Exception:  # noqa: BLE001 - closing a dead port must not stop the console
                log.exception("closing the scale")
            self._driver = None


class DeviceHub(QObject):
    scanned = Signal(str)
    weighed = Signal(int, object)  # whole grams, division in grams or None
    scale_failed = Signal(str)
    status_changed = Signal(str)
    _read_scale = Signal()
    _close_scale = Signal()

    def __init__(self, settings: DeviceSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.wedge_filter = ScanEventFilter(settings.wedge, self)
        self.wedge_filter.scanned.connect(self.scanned)
        self.scanner: ScannerBridge | None = None
        self._scanner_status = "keyboard scanner"
        self._scale_status = "no scale: type the weight"
        self._scale_thread: QThread | None = None
        self._scale_worker: ScaleWorker | None = None
        self._scale_busy = False
        self.last_scan_ns = 0

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self.wedge_filter)
        if self.settings.scanner is not None:
            self.scanner = ScannerBridge(self.settings.scanner, self)
            self.scanner.scanned.connect(self._on_serial_scan)
            self.scanner.status.connect(self._on_scanner_status)
            self.scanner.start()
        if self.settings.scale is not None:
            self._scale_thread = QThread(self)
            self._scale_thread.setObjectName("scale")
            self._scale_worker = ScaleWorker(self.settings.scale)
            self._scale_worker.moveToThread(self._scale_thread)
            self._read_scale.connect(self._scale_worker.read)
            self._close_scale.connect(self._scale_worker.close)
            self._scale_worker.weighed.connect(self._on_weighed)
            self._scale_worker.failed.connect(self._on_scale_failed)
            self._scale_thread.start()
            self._scale_status = f"scale {self.settings.scale.protocol} on {self.settings.scale.port}"
        self._emit_status()

    def stop(self) -> None:
        """Stop every device; returns at once. A scale read in progress is cancelled and its
        thread finishes on its own (closing the port); :func:`wait_for_stopped_scales` waits
        for those at exit."""
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self.wedge_filter)
        if self.scanner is not None:
            self.scanner.stop()
            self.scanner = None
        if self._scale_thread is not None and self._scale_worker is not None:
            thread, worker = self._scale_thread, self._scale_worker
            worker.cancel.set()
            self._close_scale.emit()  # queued behind the read being cancelled
            thread.quit()
            # The thread outlives this hub (which may be deleted next): no parent, and kept
            # alive here until it has finished (a QThread destroyed while running aborts).
            thread.setParent(None)
            _forget_finished_scales()
            # The worker too: Python owns it, and dropping it now would delete it on this
            # thread while its own thread still runs it.
            _stopping_scales[thread] = worker
            self._scale_thread = None
            self._scale_worker = None
            self._scale_busy = False
            self._scale_status = "no scale: type the weight"

    @property
    def has_scale(self) -> bool:
        return self._scale_worker is not None

    # -- scale ---------------------------------------------------------------------------------
    def read_scale(self) -> bool:
        """Ask for a stable weight; the answer comes as ``weighed`` or ``scale_failed``."""
        if self._scale_worker is None or self._scale_busy:
            return False
        self._scale_busy = True
        self._scale_status = "weighing… keep the parcel still"
        self._emit_status()
        self._read_scale.emit()
        return True

    def _on_weighed(self, reading: WeightReading, division: int | None) -> None:
        self._scale_busy = False
        assert reading.grams is not None
        grams = whole_grams(reading.grams)
        self._scale_status = f"scale: {grams:,} g stable"
        self._emit_status()
        self.weighed.emit(grams, division)

    def _on_scale_failed(self, message: str) -> None:
        self._scale_busy = False
        self._scale_status = "scale: not read"
        self._emit_status()
        self.scale_failed.emit(message)

    # -- scanner -------------------------------------------------------------------------------
    def _on_serial_scan(self, code: str, received_ns: int) -> None:
        self.last_scan_ns = received_ns
        self.scanned.emit(code)

    def _on_scanner_status(self, status: str, message: str) -> None:
        port = self.settings.scanner.port if self.settings.scanner else ""
        self._scanner_status = {"connected": f"scanner on {self.scanner.reader.port_path if self.scanner else port}",
                                "disconnected": "SCANNER DISCONNECTED — plug it back in",
                                "connecting": "scanner: connecting…"}.get(status, f"scanner: {message}")
        self._emit_status()

    def status_text(self) -> str:
        return f"{self._scanner_status} · {self._scale_status}"

    def _emit_status(self) -> None:
        self.status_changed.emit(self.status_text())


# Scale threads (and their workers) of stopped hubs that are still closing their port.
_stopping_scales: dict[QThread, ScaleWorker] = {}


def _forget_finished_scales() -> None:
    for thread in [t for t in _stopping_scales if t.isFinished()]:
        del _stopping_scales[thread]


def wait_for_stopped_scales(timeout_ms: int = 5_000) -> bool:
    """Wait until every stopped hub's scale thread has closed its port (at exit: a QThread
    destroyed while running aborts the process). True if all of them ended."""
    ended = True
    for thread in list(_stopping_scales):
        if thread.wait(timeout_ms):
            del _stopping_scales[thread]
        else:
            ended = False
    return ended


def perf_ms_since(ns: int) -> float:
    return (time.perf_counter_ns() - ns) / 1e6
