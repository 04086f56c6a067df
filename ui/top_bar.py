"""The bench's top bar: the station, the devices, the printers, sync and who is signed in."""
from __future__ import annotations

import html

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from console.context import Actor
from console.sync_runner import SyncStatus
from ui.style import restyle
from ui.sync_process import describe_sync


class TopBar(QFrame):
    def __init__(self, station_name: str, station_id: str, time_zone: str, syncing: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="topBar")
        self._time_zone = time_zone
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 12, 6)
        self.station_label = QLabel(f"<b>{station_name}</b> · {station_id}")
        self.user_label = QLabel(objectName="userLabel")
        self.user_label.setToolTip("Sign out or switch user [Ctrl+L]")
        self.device_label = QLabel(objectName="deviceStatus")
        self.print_label = QLabel("printing: starting…", objectName="printStatus")
        self.print_label.setToolTip("The print queue [F10]: preview, reprint, retry, cancel; printer settings [F11]")
        self.sync_label = QLabel("sync: starting…", objectName="syncStatus")
        self.sync_label.setToolTip("Pushes every decision to the central database; work goes on while it is offline")
        self.sync_label.setVisible(syncing)
        row.addWidget(self.station_label)
        row.addSpacing(16)
        row.addStretch(1)
        for label in (self.device_label, self.print_label, self.sync_label):
            row.addWidget(label)
            row.addSpacing(16)
        row.addWidget(self.user_label)

    def draw_user(self, actor: Actor) -> None:
        self.user_label.setText(f"<b>{html.escape(actor.display_name)}</b> · {actor.role} · Ctrl+L")

    def print_status(self, text: str, attention: int) -> None:
        self._status(self.print_label, text if len(text) <= 90 else text[:89] + "…",
                     text + "\nThe print queue [F10]: preview, reprint, retry, cancel", bool(attention))

    def sync_status(self, status: SyncStatus) -> None:
        short, full, attention = describe_sync(status, self._time_zone)
        self._status(self.sync_label, short, full, attention)

    def sync_stopped(self, text: str) -> None:
        self._status(self.sync_label, "sync: stopped", text, True)

    @staticmethod
    def _status(label: QLabel, text: str, tooltip: str, attention: bool) -> None:
        label.setText(text)
        label.setToolTip(tooltip)
        wanted = "true" if attention else "false"
        if label.property("attention") != wanted:
            # Re-polishing is the costly part: only when the colour actually changes.
            label.setProperty("attention", wanted)
            restyle(label)
