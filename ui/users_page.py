"""The users page [F3, admins]: who may sign in here, and the steps an admin takes for them.

Every step is a ``console.users_admin`` call on the database worker (Argon2 hashing takes a
moment, and the GUI thread never waits on it); the service checks the permission again, so the
page is only a convenience. A refusal is shown on the page in words, never in a pop-up. PINs
and badge codes typed or scanned here go to the service and are cleared from the fields at once.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console import users_admin as admin
from console.station import Station
from console.users_admin import UserRow
from db.models import ROLES
from db.uow import UnitOfWork
from ui.table_model import Index, ListTableModel
from ui.worker import DatabaseWorker

COLUMNS = ("User name", "Name", "Role", "State", "Badge")


def read_users(station: Station) -> list[UserRow]:
    with station.read_uow() as uow:
        return admin.list_users(uow.session, station.ctx())


def user_step(station: Station, step: Callable[[UnitOfWork], object]) -> list[UserRow]:
    """One admin step in its own unit of work, then the list as it is now."""
    with station.uow() as uow:
        step(uow)
    return read_users(station)


class UsersTableModel(ListTableModel[UserRow]):
    COLUMNS = COLUMNS

    def __init__(self, station: Station, parent: Any = None) -> None:
        super().__init__(parent)
        self.station = station

    def set_rows(self, rows: list[UserRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row_of(self, user_id: int) -> int | None:
        return next((n for n, r in enumerate(self._rows) if r.id == user_id), None)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (row.username, row.display_name, row.role, self._state(row), "yes" if row.has_badge else "—"
                    )[index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and not row.active:
            return Qt.GlobalColor.darkGray
        return None

    def _state(self, row: UserRow) -> str:
        if not row.active:
            return "disabled"
        if row.locked_until is not None and row.locked_until > self.station.ctx().now():
            return f"locked until {self.station.ctx().local(row.locked_until):%H:%M} (a new PIN unlocks)"
        return "active"


class UsersPage(QDialog):
    """Choose a user in the table; the steps below act on them. Esc closes."""

    def __init__(self, station: Station, worker: DatabaseWorker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.station = station
        self.worker = worker
        self.setObjectName("usersPage")
        self.setWindowTitle(f"Users — {station.settings.station_name}")
        self.resize(980, 620)
        col = QVBoxLayout(self)
        self.model = UsersTableModel(station, self)
        self.table = QTableView(objectName="usersTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        for column, width in enumerate((150, 220, 110, 300)):
            self.table.setColumnWidth(column, width)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._draw_selected())
        col.addWidget(self.table, 1)

        chosen = QGroupBox("Chosen user")
        grid = QGridLayout(chosen)
        self.chosen_label = QLabel("Choose a user in the table.", objectName="chosenUser")
        self.chosen_label.setTextFormat(Qt.TextFormat.PlainText)
        grid.addWidget(self.chosen_label, 0, 0, 1, 4)
        self.new_pin = self._secret("new PIN (4+ characters)", "newPin")
        self.reset_button = self._button("Set new PIN", self.reset_pin)
        grid.addWidget(QLabel("PIN"), 1, 0)
        grid.addWidget(self.new_pin, 1, 1)
        grid.addWidget(self.reset_button, 1, 2)
        self.badge_field = self._secret("scan the badge here", "badgeCode")
        self.badge_button = self._button("Set badge", self.set_badge)
        self.remove_badge_button = self._button("Remove badge", self.remove_badge)
        grid.addWidget(QLabel("Badge"), 2, 0)
        grid.addWidget(self.badge_field, 2, 1)
        grid.addWidget(self.badge_button, 2, 2)
        grid.addWidget(self.remove_badge_button, 2, 3)
        self.role_combo = QComboBox(objectName="roleCombo")
        self.role_combo.addItems(list(ROLES))
        self.role_button = self._button("Change role", self.change_role)
        self.active_button = self._button("Disable", self.toggle_active)
        grid.addWidget(QLabel("Role"), 3, 0)
        grid.addWidget(self.role_combo, 3, 1)
        grid.addWidget(self.role_button, 3, 2)
        grid.addWidget(self.active_button, 3, 3)
        col.addWidget(chosen)

        add = QGroupBox("Add a user")
        row = QHBoxLayout(add)
        self.add_username = QLineEdit(objectName="addUsername")
        self.add_username.setPlaceholderText("user name")
        self.add_username.setMaxLength(32)
        self.add_name = QLineEdit(objectName="addName")
        self.add_name.setPlaceholderText("name as colleagues know it")
        self.add_name.setMaxLength(120)
        self.add_role = QComboBox(objectName="addRole")
        self.add_role.addItems(list(ROLES))
        self.add_pin = self._secret("first PIN", "addPin")
        self.add_button = self._button("Add", self.add_user)
        self.add_pin.returnPressed.connect(self.add_user)
        for widget, stretch in ((self.add_username, 2), (self.add_name, 3), (self.add_role, 1), (self.add_pin, 2),
                                (self.add_button, 0)):
            row.addWidget(widget, stretch)
        col.addWidget(add)

        self.status = QLabel("Reading the users…", objectName="usersStatus")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        col.addWidget(self.status)
        self._draw_selected()
        self._run("reading the users", lambda: read_users(station), "")

    # -- building -----------------------------------------------------------------------------

    @staticmethod
    def _secret(placeholder: str, name: str) -> QLineEdit:
        field = QLineEdit(objectName=name)
        field.setEchoMode(QLineEdit.EchoMode.Password)
        field.setPlaceholderText(placeholder)
        field.setMaxLength(128)
        return field

    def _button(self, text: str, slot: Callable[[], None]) -> QPushButton:
        button = QPushButton(text)
        button.setAutoDefault(False)  # Enter in a field must not press some other button
        button.clicked.connect(slot)
        return button

    # -- the chosen user ----------------------------------------------------------------------

    def selected(self) -> UserRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row(rows[0].row()) if rows else None

    def select_user(self, user_id: int) -> None:
        row = self.model.row_of(user_id)
        if row is not None:
            self.table.selectRow(row)
        self._draw_selected()

    def _draw_selected(self) -> None:
        user = self.selected()
        for widget in (self.new_pin, self.reset_button, self.badge_field, self.badge_button,
                       self.remove_badge_button, self.role_combo, self.role_button, self.active_button):
            widget.setEnabled(user is not None)
        if user is None:
            self.chosen_label.setText("Choose a user in the table.")
            return
        self.chosen_label.setText(f"{user.display_name} ({user.username}), {user.role}"
                                  f"{'' if user.active else ', disabled'}")
        self.role_combo.setCurrentText(user.role)
        self.active_button.setText("Disable" if user.active else "Enable")
        self.remove_badge_button.setEnabled(user.has_badge)

    def badge_scanned(self, code: str) -> None:
        """A scan while the page is open is a badge for the chosen user."""
        if self.selected() is None:
            self._say("error", "Choose the user first, then scan their badge.")
            return
        self.badge_field.setText(code)
        self.set_badge()

    # -- steps ----------------------------------------------------------------------------------

    def add_user(self) -> None:
        ctx, username, name = self.station.ctx(), self.add_username.text(), self.add_name.text()
        role, pin = self.add_role.currentText(), self.add_pin.text()
        self.add_pin.clear()
        new_id: list[int] = []

        def step(uow: UnitOfWork) -> None:
            new_id.append(admin.add_user(uow, ctx, username, name, role, pin))

        def added() -> None:
            self.add_username.clear()
            self.add_name.clear()
            if new_id:
                self.select_user(new_id[0])

        self._step("adding the user", step, f"{username.strip().lower()} added as {role}.", added)

    def reset_pin(self) -> None:
        user, pin = self.selected(), self.new_pin.text()
        self.new_pin.clear()
        if user is None:
            return
        ctx = self.station.ctx()
        self._step("setting the PIN", lambda uow: admin.reset_pin(uow, ctx, user.id, pin),
                   f"New PIN set for {user.display_name}; a lock after wrong PINs is lifted.")

    def set_badge(self) -> None:
        user, code = self.selected(), self.badge_field.text()
        self.badge_field.clear()
        if user is None:
            return
        ctx = self.station.ctx()
        self._step("setting the badge", lambda uow: admin.set_badge(uow, ctx, user.id, code),
                   f"Badge set for {user.display_name}.")

    def remove_badge(self) -> None:
        user = self.selected()
        if user is None:
            return
        ctx = self.station.ctx()
        self._step("removing the badge", lambda uow: admin.remove_badge(uow, ctx, user.id),
                   f"{user.display_name}'s badge no longer signs anyone in.")

    def change_role(self) -> None:
        user, role = self.selected(), self.role_combo.currentText()
        if user is None:
            return
        ctx = self.station.ctx()
        self._step("changing the role", lambda uow: admin.change_role(uow, ctx, user.id, role),
                   f"{user.display_name} is now a {role}.")

    def toggle_active(self) -> None:
        user = self.selected()
        if user is None:
            return
        ctx = self.station.ctx()
        if user.active:
            self._step("disabling the user", lambda uow: admin.disable_user(uow, ctx, user.id),
                       f"{user.display_name} can no longer sign in.")
        else:
            self._step("enabling the user", lambda uow: admin.enable_user(uow, ctx, user.id),
                       f"{user.display_name} can sign in again.")

    # -- running --------------------------------------------------------------------------------

    def _step(self, name: str, step: Callable[[UnitOfWork], object], success: str,
              then: Callable[[], None] | None = None) -> None:
        station = self.station
        self._run(name, lambda: user_step(station, step), success, then)

    def _run(self, name: str, job: Callable[[], list[UserRow]], success: str,
             then: Callable[[], None] | None = None) -> None:
        keep = self.selected()
        self._say("info", f"{name[0].upper()}{name[1:]}…")

        def done(rows: list[UserRow]) -> None:
            if not shiboken6.isValid(self):
                return  # closed before the answer came
            self.model.set_rows(rows)
            if keep is not None:
                self.select_user(keep.id)
            self._draw_selected()
            self._say("success", success or f"{len(rows)} users.")
            if then is not None:
                then()

        def failed(message: str) -> None:
            if shiboken6.isValid(self):
                self._say("error", message)

        self.worker.submit(name, job, done, failed)

    def _say(self, level: str, text: str) -> None:
        self.status.setText(text)
        self.status.setProperty("level", level)
        self.status.setStyleSheet({"error": "color: #b00020; font-weight: bold;",
                                   "success": "color: #156b25;"}.get(level, "color: #52606d;"))
