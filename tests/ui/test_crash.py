"""The GUI's crash path (ui.crash): bugs and warnings reach a rotating log file in the data folder,
and a bug shows one message that says where that file is."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer, qWarning
from PySide6.QtWidgets import QApplication, QMessageBox

from ui import crash
from ui.worker import DatabaseWorker


@pytest.fixture
def reporter(qapp: QApplication, tmp_path: Path) -> Iterator[crash.CrashReporter]:
    installed = crash.install(tmp_path / "data")
    yield installed
    if installed.box is not None:
        installed.box.close()
    installed.uninstall()


def _log(reporter: crash.CrashReporter) -> str:
    reporter.handler.flush()
    return reporter.path.read_text(encoding="utf-8")


def test_the_gui_logs_and_qt_warnings_go_to_the_log_file_in_the_data_folder(reporter: crash.CrashReporter,
                                                                           tmp_path: Path) -> None:
    assert reporter.path == tmp_path / "data" / "logs" / "console.log"
    logging.getLogger("ui.devices").warning("the scale on /dev/ttyUSB0 stopped answering")
    qWarning("QPainter::begin: Paint device returned engine == 0")
    text = _log(reporter)
    assert "WARNING ui.devices: the scale on /dev/ttyUSB0 stopped answering" in text
    assert "WARNING returns_console.qt: QPainter::begin: Paint device returned engine == 0" in text


@pytest.mark.qt_no_exception_capture
@pytest.mark.logs_errors
def test_an_exception_nothing_caught_is_logged_with_its_traceback_and_shown_once(qtbot, reporter: crash.CrashReporter
                                                                                ) -> None:
    def broken_slot() -> None:
        raise ZeroDivisionError("a bug in a slot")

    QTimer.singleShot(0, broken_slot)
    QTimer.singleShot(0, broken_slot)  # a second one while the first message is open: no second box
    qtbot.waitUntil(lambda: reporter.box is not None and reporter.box.isVisible())
    qtbot.wait(50)
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    assert len(boxes) == 1
    assert "Bug (ZeroDivisionError: a bug in a slot)." in boxes[0].text()
    assert str(reporter.path) in boxes[0].text() and "what you entered is kept" in boxes[0].text()
    text = _log(reporter)
    assert text.count("uncaught ZeroDivisionError: a bug in a slot") == 2
    assert "Traceback (most recent call last)" in text and "in broken_slot" in text


@pytest.mark.logs_errors
def test_a_database_job_that_raises_is_logged_and_shown_with_the_log_path(qtbot, reporter: crash.CrashReporter
                                                                         ) -> None:
    worker = DatabaseWorker()
    worker.bug.connect(reporter.bug)
    errors: list[str] = []
    try:
        def job() -> None:
            raise KeyError("order_line_id")

        with qtbot.waitSignal(worker.bug, timeout=5000):
            worker.submit("reading the parcel", job, on_error=errors.append)
        qtbot.waitUntil(lambda: bool(errors))
    finally:
        worker.stop()
    assert errors and "while reading the parcel" in errors[0]
    assert reporter.box is not None and reporter.box.isVisible()
    assert str(reporter.path) in reporter.box.text()
    text = _log(reporter)
    assert "bug in database job 'reading the parcel'" in text and "KeyError: 'order_line_id'" in text


def test_the_log_file_rotates_instead_of_growing_without_end(reporter: crash.CrashReporter) -> None:
    noisy = logging.getLogger("ui.noisy")
    for n in range(3000):
        noisy.warning("line %d %s", n, "x" * 400)
    reporter.handler.flush()
    files = sorted(p.name for p in reporter.path.parent.iterdir())
    assert files[:2] == ["console.log", "console.log.1"] and len(files) <= crash.LOG_FILES + 1
    assert reporter.path.stat().st_size <= crash.LOG_BYTES
