"""The devices page [F9]: pick the scanner and the scale, try them live, save.

While the page is open the window's own devices are stopped (a serial port has one reader at a
time), and the page runs a test hub built from what the form says now: every scan shows with
what the console makes of it, and "Test scale" shows the stable weight or what went wrong.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
    QLabel, QLineEdit, QListWidget, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)
from serial.tools import list_ports

from console.barcodes import interpret
from console.errors import EnvironmentProblem
from devices.serial_scanner import FRAMINGS, TERMINATORS, SerialScannerConfig
from devices.settings import SCALE_PROTOCOLS, DeviceSettings, ScaleSettings, devices_file, save_device_settings
from ui.devices import DeviceHub

SUFFIXES = {"Enter (CR)": "\r", "CR LF": "\r\n", "LF": "\n", "Tab": "\t", "ETX": "\x03", "none (silence)": ""}
PREFIXES = {"none": "", "STX": "\x02"}
BAUDS = ("1200", "2400", "4800", "9600", "19200", "38400", "57600", "115200")


def _ports() -> list[str]:
    try:
        return sorted(p.device for p in list_ports.comports())
    except OSError:
        return []


def _combo(items: list[str] | tuple[str, ...], current: str, editable: bool = False) -> QComboBox:
    box = QComboBox()
    box.setEditable(editable)
    box.addItems(list(items))
    if current and box.findText(current) < 0:
        box.addItem(current)
    box.setCurrentText(current)
    return box


class DevicesPage(QDialog):
    def __init__(self, config_file: Path, current: DeviceSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Devices — scanner and scale")
        self.setObjectName("devicesPage")
        self.config_file = config_file
        self.saved: DeviceSettings | None = None
        # What the form does not show (GS aliases, encodings, limits) is kept from here on save.
        self._current = current
        self._hub: DeviceHub | None = None
        self._build(current)
        self._restart_test_hub()

    # -- form ------------------------------------------------------------------------------
    def _build(self, s: DeviceSettings) -> None:
        root = QVBoxLayout(self)
        wedge = QGroupBox("Keyboard scanner (USB, types like a keyboard)")
        wf = QFormLayout(wedge)
        self.prefix = _combo(list(PREFIXES), next((k for k, v in PREFIXES.items() if v == s.wedge.prefix), "none"))
        self.suffix = _combo(list(SUFFIXES), next((k for k, v in SUFFIXES.items() if v == s.wedge.suffix), "Enter (CR)"))
        self.gap = QSpinBox(suffix=" ms", minimum=5, maximum=400, value=int(s.wedge.max_gap_ms))
        self.gap.setToolTip("Longest pause between two characters of one scan. People type slower than 100 ms.")
        self.min_length = QSpinBox(minimum=1, maximum=50, value=s.wedge.min_length)
        wf.addRow("Prefix", self.prefix)
        wf.addRow("Ends with", self.suffix)
        wf.addRow("Gap threshold", self.gap)
        wf.addRow("Shortest scan", self.min_length)
        root.addWidget(wedge)

        sc = s.scanner or SerialScannerConfig()
        serial_box = QGroupBox("Serial scanner (USB-CDC / RS-232)")
        sf = QFormLayout(serial_box)
        self.serial_on = QCheckBox("use a serial scanner", checked=s.scanner is not None)
        self.serial_port = _combo(_ports(), sc.port or "", editable=True)
        self.serial_baud = _combo(BAUDS, str(sc.baudrate), editable=True)
        self.serial_framing = _combo(list(FRAMINGS), sc.framing)
        self.serial_terminator = _combo(list(TERMINATORS), sc.terminator)
        self.usb_vid = QLineEdit(f"{sc.usb_vid:04x}" if sc.usb_vid is not None else "", placeholderText="e.g. 05e0")
        self.usb_serial = QLineEdit(sc.usb_serial or "", placeholderText="to find it again after an unplug")
        for label, w in (("", self.serial_on), ("Port", self.serial_port), ("Baud", self.serial_baud),
                         ("Framing", self.serial_framing), ("Terminator", self.serial_terminator),
                         ("USB vendor id (hex)", self.usb_vid), ("USB serial number", self.usb_serial)):
            sf.addRow(label, w)
        root.addWidget(serial_box)

        ss = s.scale
        scale_box = QGroupBox("Scale")
        cf = QFormLayout(scale_box)
        self.scale_on = QCheckBox("use a scale", checked=ss is not None)
        self.scale_protocol = _combo(SCALE_PROTOCOLS, ss.protocol if ss else "mt-sics")
        self.scale_port = _combo(_ports(), ss.port if ss else "", editable=True)
        self.scale_baud = _combo(BAUDS, str(ss.baudrate if ss else 9600), editable=True)
        self.scale_framing = _combo(("8N1", "7E1"), ss.framing if ss else "8N1")
        self.division = QSpinBox(minimum=0, maximum=1000, suffix=" g", value=(ss.division_g or 0) if ss else 0)
        self.division.setSpecialValueText("from the scale's replies")
        self.timeout = QDoubleSpinBox(minimum=0.5, maximum=60, singleStep=0.5, suffix=" s",
                                      value=ss.timeout_s if ss else 3.0)
        for label, w in (("", self.scale_on), ("Protocol", self.scale_protocol), ("Port", self.scale_port),
                         ("Baud", self.scale_baud), ("Framing", self.scale_framing), ("Division", self.division),
                         ("Wait for stable", self.timeout)):
            cf.addRow(label, w)
        root.addWidget(scale_box)

        test = QGroupBox("Live test — scan anything, or weigh")
        tl = QVBoxLayout(test)
        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply to test [F5]")
        self.weigh_button = QPushButton("Test scale [F8]")
        row.addWidget(self.apply_button)
        row.addWidget(self.weigh_button)
        row.addStretch(1)
        self.device_status = QLabel(objectName="deviceStatus")
        row.addWidget(self.device_status)
        tl.addLayout(row)
        self.results = QListWidget(objectName="testResults")
        self.results.setMinimumHeight(120)
        tl.addWidget(self.results)
        self.error = QLabel(objectName="error", wordWrap=True)
        self.error.setStyleSheet("color: #b00020; font-weight: bold;")
        tl.addWidget(self.error)
        root.addWidget(test)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        root.addWidget(buttons)
        self.apply_button.clicked.connect(self._restart_test_hub)
        self.weigh_button.clicked.connect(self.test_scale)
        for keys, slot in (("F5", self._restart_test_hub), ("F8", self.test_scale), ("Ctrl+S", self.save)):
            QShortcut(QKeySequence(keys), self).activated.connect(slot)

    def settings_from_form(self) -> DeviceSettings:
        """What the form says, checked; raises EnvironmentProblem naming the field that is wrong."""
        try:
            wedge = replace(self._current.wedge, prefix=PREFIXES[self.prefix.currentText()],
                            suffix=SUFFIXES[self.suffix.currentText()], max_gap_ms=float(self.gap.value()),
                            min_length=self.min_length.value())
            scanner = None
            if self.serial_on.isChecked():
                vid = self.usb_vid.text().strip()
                scanner = replace(
                    self._current.scanner or SerialScannerConfig(), port=self.serial_port.currentText().strip() or None, baudrate=int(self.serial_baud.currentText()),
                    framing=self.serial_framing.currentText(), terminator=self.serial_terminator.currentText(),
                    usb_vid=int(vid, 16) if vid else None, usb_serial=self.usb_serial.text().strip() or None)
                if scanner.port is None and scanner.usb_vid is None:
                    raise ValueError("serial scanner: give its port or its USB vendor id")
            scale = None
            if self.scale_on.isChecked():
                scale = ScaleSettings(protocol=self.scale_protocol.currentText(),
                                      port=self.scale_port.currentText().strip(),
                                      baudrate=int(self.scale_baud.currentText()),
                                      framing=self.scale_framing.currentText(),
                                      division_g=self.division.value() or None, timeout_s=self.timeout.value())
        except ValueError as exc:
            raise EnvironmentProblem(str(exc)) from None
        return DeviceSettings(wedge, scanner, scale)

    # -- live test -------------------------------------------------------------------------
    def _restart_test_hub(self) -> None:
        self._stop_hub()
        try:
            settings = self.settings_from_form()
        except EnvironmentProblem as exc:
            self.error.setText(f"{exc.message}. Correct it, then apply [F5].")
            return
        self.error.clear()
        self._hub = DeviceHub(settings, self)
        self._hub.scanned.connect(self._show_scan)
        self._hub.weighed.connect(lambda g, d: self._add(f"scale: {g:,} g stable"
                                                         + (f" (division {d} g)" if d else "")))
        self._hub.scale_failed.connect(lambda m: self.error.setText(m))
        self._hub.status_changed.connect(self.device_status.setText)
        self._hub.start()

    def _show_scan(self, code: str) -> None:
        reading = interpret(code)
        mark = "✔" if reading.valid else "✘"
        self._add(f"{mark} {code!r} → {reading.message}")

    def _add(self, text: str) -> None:
        self.results.insertItem(0, text)
        self.error.clear()

    def test_scale(self) -> None:
        if self._hub is None or not self._hub.has_scale:
            self.error.setText("No scale in the test: tick 'use a scale', pick its protocol and port, apply [F5].")
            return
        self._hub.read_scale()

    # -- closing ---------------------------------------------------------------------------
    def save(self) -> None:
        try:
            settings = self.settings_from_form()
            save_device_settings(devices_file(self.config_file), settings)
        except EnvironmentProblem as exc:
            self.error.setText(f"Not saved: {exc.message}.")
            return
        except OSError as exc:
            self.error.setText(f"Not saved: {exc.strerror or exc} ({devices_file(self.config_file)}).")
            return
        self.saved = settings
        self.accept()

    def done(self, result: int) -> None:  # noqa: D401 - Qt's name; runs for accept, reject and Esc
        self._stop_hub()
        super().done(result)

    def _stop_hub(self) -> None:
        if self._hub is not None:
            self._hub.stop()
            self._hub.deleteLater()
            self._hub = None

