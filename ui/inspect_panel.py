"""The inspection of the selected unit beside its grade: the checklist, a note and photos.

The panel holds what the clerk has ticked, typed and attached for each unit until it is
recorded: a grade key records the grade together with them, and a change to a unit that already
has a grade records it again (the latest inspection counts). Ctrl+1…Ctrl+5 tick the checklist,
Ctrl+N goes to the note, Ctrl+I attaches the camera's new pictures.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, \
    QWidget

from console.inspection import CHECKLIST, UnitInspection
from console.photos import MAX_PHOTOS, new_photos
from ui import messages

if TYPE_CHECKING:
    from ui.operations import Operations

# The five a person answers (the serial match is the scan's to say), with their keys.
CHECK_KEYS: tuple[tuple[str, str], ...] = tuple(
    (name, f"Ctrl+{n}") for n, name in enumerate(
        ("tags_attached", "original_packaging", "accessories_complete", "signs_of_use", "damage"), start=1))
# What the buttons say: short enough for five in a row at 1366 px; the tooltip says it in full.
SHORT = {"tags_attached": "Tags on", "original_packaging": "Packaging", "accessories_complete": "Accessories",
         "signs_of_use": "Used", "damage": "Damage"}


class InspectPanel(QGroupBox):
    """Emits ``changed(item_id, UnitInspection)`` when the clerk changes the selected unit's."""

    changed = Signal(int, object)
    attach_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Inspection of the selected unit", parent)
        self.setObjectName("inspect")
        self._item_id: int | None = None
        self._label: str | None = None
        self._units: dict[int, UnitInspection] = {}
        # Units whose panel state is what the database holds (False: an edit not recorded yet).
        self._recorded: dict[int, bool] = {}
        self.opened_at = time.time()
        col = QVBoxLayout(self)
        col.setContentsMargins(8, 4, 8, 6)
        col.setSpacing(4)
        checks = QHBoxLayout()
        checks.setSpacing(6)
        self.check_buttons: dict[str, QPushButton] = {}
        for name, key in CHECK_KEYS:
            button = QPushButton(f"{SHORT[name]} [{key.replace('Ctrl+', '^')}]")
            button.setCheckable(True)
            button.setProperty("class", "check")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setToolTip(f"{CHECKLIST[name]}: yes when lit ({key} switches it)")
            button.clicked.connect(lambda _=False, n=name: self._toggled(n))
            checks.addWidget(button)
            self.check_buttons[name] = button
        col.addLayout(checks)
        row = QHBoxLayout()
        note_caption = QLabel("Note [Ctrl+N]")
        self.note_field = QLineEdit(objectName="note")
        self.note_field.setPlaceholderText("what the next person should know; Enter goes back to scanning")
        self.note_field.setMaxLength(500)
        self.note_field.textEdited.connect(self._note_typed)
        self.note_field.editingFinished.connect(self._note_done)
        note_caption.setBuddy(self.note_field)
        self.photos_label = QLabel("no photos", objectName="photos")
        self.attach_button = QPushButton("Attach photos [Ctrl+I]")
        self.attach_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.attach_button.clicked.connect(self.attach_requested)
        row.addWidget(note_caption)
        row.addWidget(self.note_field, 1)
        row.addWidget(self.photos_label)
        row.addWidget(self.attach_button)
        col.addLayout(row)
        self.show_unit(None, None)

    # -- state ----------------------------------------------------------------------------

    def clear(self) -> None:
        """A new parcel: nothing ticked, the camera's pictures count from now."""
        self._units.clear()
        self._recorded.clear()
        self.opened_at = time.time()
        self.show_unit(None, None)

    def load(self, item_id: int, inspection: UnitInspection) -> None:
        """What the database holds for a unit (after a restart, say), unless edited here since
        the last time it was recorded."""
        if self._recorded.get(item_id, True):
            self._units[item_id] = inspection

    def recorded(self, item_id: int, done: bool) -> None:
        """``done``: the unit's inspection as shown is in the database (the next load may replace
        it); False while a change waits to be recorded."""
        self._recorded[item_id] = done

    def forget(self, item_id: int) -> None:
        """Take the database's word for a unit again (after Ctrl+Z, say)."""
        self._recorded[item_id] = True
        self._units.pop(item_id, None)

    def used_photos(self) -> set[str]:
        """Every picture attached to a unit of this parcel: one picture shows one unit."""
        return {p for unit in self._units.values() for p in unit.photos}

    def inspection(self, item_id: int) -> UnitInspection:
        return self._units.get(item_id, UnitInspection())

    @property
    def item_id(self) -> int | None:
        return self._item_id

    def show_unit(self, item_id: int | None, label: str | None) -> None:
        self._item_id = item_id
        self._label = label
        enabled = item_id is not None
        self.setTitle(f"Inspection of {label}" if label else "Inspection of the selected unit")
        unit = self.inspection(item_id) if item_id is not None else UnitInspection()
        for name, button in self.check_buttons.items():
            button.setEnabled(enabled)
            button.setChecked(bool(unit.checklist.get(name)))
        self.note_field.setEnabled(enabled)
        if self.note_field.text() != unit.notes:
            self.note_field.setText(unit.notes)
        self.attach_button.setEnabled(enabled)
        count = len(unit.photos)
        self.photos_label.setText("no photos" if not count else f"{count} photo{'s' if count != 1 else ''}")
        self.photos_label.setToolTip("\n".join(unit.photos))

    # -- input ----------------------------------------------------------------------------

    def toggle(self, index: int) -> bool:
        """Ctrl+<index+1>: flip one checklist entry of the selected unit. False if none is selected."""
        if self._item_id is None or not 0 <= index < len(CHECK_KEYS):
            return False
        name = CHECK_KEYS[index][0]
        button = self.check_buttons[name]
        button.setChecked(not button.isChecked())
        self._toggled(name)
        return True

    def attach_photos(self, ops: Operations, folder: Path, still_open: Callable[[], bool],
                      then: Callable[[], None]) -> None:
        """Ctrl+I: the camera's pictures taken since the parcel was opened; with none, a file
        dialog (the folder it opens is the camera's). ``still_open``: the parcel asked for is."""
        item_id = self.item_id
        if item_id is None:
            messages.error("Choose a unit with ↑/↓ first; photos belong to a unit.")
            return then()
        since, used = self.opened_at, self.used_photos()

        def found(paths: list[str]) -> None:
            if not still_open() or self.item_id != item_id:
                return  # another unit or parcel by now: these pictures are not for it
            if not paths:
                chosen, _ = QFileDialog.getOpenFileNames(self, "Attach photos", str(folder),
                                                         "Pictures (*.jpg *.jpeg *.png *.heic *.webp)")
                paths = list(chosen)
            added = self.add_photos(paths)
            if added:
                messages.success(f"{added} photo{'s' if added != 1 else ''} attached.")
            elif paths:
                messages.error(f"No photo attached: at most {MAX_PHOTOS} per unit, and each only once.")
            else:
                messages.info(f"No new pictures in {folder}: take them with the bench camera, then Ctrl+I again.")
            then()

        # Listed on the database thread: the camera folder may be a slow network share.
        ops.run("looking for the camera's pictures", lambda _ctx: new_photos(folder, since, used), found,
                lambda message: (messages.error(message), then()), writes=False)
        then()

    def add_photos(self, paths: list[str]) -> int:
        """Attach ``paths`` to the selected unit; how many were new (at most MAX_PHOTOS in all)."""
        if self._item_id is None:
            return 0
        unit = self.inspection(self._item_id)
        fresh = [p for p in paths if p not in unit.photos][:max(0, MAX_PHOTOS - len(unit.photos))]
        if fresh:
            self._set(replace(unit, photos=unit.photos + tuple(fresh)))
        return len(fresh)

    def _toggled(self, name: str) -> None:
        if self._item_id is None:
            return
        unit = self.inspection(self._item_id)
        checklist = {**unit.checklist, name: self.check_buttons[name].isChecked()}
        self._set(replace(unit, checklist=checklist))

    def _note_typed(self, text: str) -> None:
        # Kept as typed, so a grade key pressed from the note records it; recorded when the
        # field is left.
        if self._item_id is not None:
            unit = self.inspection(self._item_id)
            self._units[self._item_id] = replace(unit, notes=text.strip())
            self._recorded[self._item_id] = False

    def _note_done(self) -> None:
        if self._item_id is None:
            return
        unit = self.inspection(self._item_id)
        text = self.note_field.text().strip()
        if text != unit.notes or not self._recorded.get(self._item_id, True):
            self._set(replace(unit, notes=text))

    def _set(self, unit: UnitInspection) -> None:
        assert self._item_id is not None
        self._units[self._item_id] = unit
        self._recorded[self._item_id] = False
        self.show_unit(self._item_id, self._label)
        self.changed.emit(self._item_id, unit)
