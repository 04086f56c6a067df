"""Every screen of the console in a typical state, rendered offscreen to PNG files.

``scripts/screenshots [--out DIR] [--only NAME]`` builds a fresh demo station in a temporary folder
(it never touches the real station database), then drives the real window the way a clerk
would — scans, grades, keys — and saves each screen once it is drawn. The README's pictures are
made with it, so they show what the code does today.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from console.config import Settings
from console.demo.data import generate_demo
from console.station import Station
from ui.review_page import ReviewPage
from ui.users_page import UsersPage
from db.engine import sqlite_url
from db.models import Order, OrderLine, ReturnAuthorization, ReturnItem

# (file name, what it shows) in the order they are made
SCREENS: tuple[tuple[str, str], ...] = (
    ("sign-in", "the sign-in screen: badge or user name and PIN"),
    ("parcel", "a parcel open: units scanned and graded, the policy's proposal"),
    ("inspection", "the checklist, a note and a photo on the selected unit"),
    ("weight-mismatch", "a parcel that weighs far less than its contents should"),
    ("flagged-item", "a unit that is not on the order, flagged on the spot"),
    ("review", "a refund large enough to go to supervisor review"),
    ("unexpected-parcel", "an order with no RMA: F6 creates one"),
    ("history", "today's parcels at this station [F7]"),
    ("print-queue", "the print queue [F10]"),
    ("printers", "printer settings [F11]"),
    ("devices", "devices [F9]"),
    ("review-queue", "a supervisor's review queue with a case's evidence [F5]"),
    ("users", "an admin's users page [F3]"),
)


def _station(folder: Path) -> Station:
    settings = Settings(data_dir=folder, config_file=folder / "config.toml", station_db=folder / "station.sqlite3",
                        central_url=sqlite_url(folder / "central.sqlite3"), sounds=False)
    generate_demo(settings.station_db, orders=3000, seed=7, now=datetime.now(timezone.utc),
                  station_id=settings.station_id, station_name=settings.station_name, time_zone=settings.time_zone)
    return Station.open(settings)


def _authorized_rmas(station: Station, limit: int = 200) -> list[tuple[str, int, int]]:
    """(number, units, paid total) of recent authorized RMAs, largest last."""
    with station.sessions() as session:
        rows = session.execute(
            select(ReturnAuthorization.number, func.count(ReturnItem.id), func.sum(OrderLine.unit_price_minor))
            .join(ReturnItem, ReturnItem.rma_id == ReturnAuthorization.id)
            .join(OrderLine, OrderLine.id == ReturnItem.order_line_id)
            .where(ReturnAuthorization.status == "authorized")
            .group_by(ReturnAuthorization.id).order_by(ReturnAuthorization.id.desc()).limit(limit)).all()
    return [(r[0], int(r[1]), int(r[2] or 0)) for r in rows]


def _order_without_rma(station: Station) -> str:
    with station.sessions() as session:
        has_rma = select(ReturnAuthorization.order_id)
        number = session.scalar(select(Order.number).where(Order.id.not_in(has_rma)).order_by(Order.id.desc())
                                .limit(1))
    if number is None:
        raise RuntimeError("the demo data has no order without an RMA")
    return number


def render_screens(out_dir: Path, only: list[str] | None = None) -> list[Path]:
    """Render the screens (``only``: those names) into ``out_dir``; the paths written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QWidget

    from ui.app import application, wait_until_idle
    from ui.devices_page import DevicesPage
    from ui.history_page import HistoryPage
    from ui.main_window import MainWindow
    from ui.print_page import PrintQueuePage
    from ui.printers_page import PrintersPage

    app = application()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def wanted(name: str) -> bool:
        return not only or name in only

    def save(widget: QWidget, name: str) -> None:
        for _ in range(3):
            app.processEvents()
        path = out_dir / f"{name}.png"
        if not widget.grab().save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        written.append(path)

    with tempfile.TemporaryDirectory(prefix="rc-screens-") as tmp:
        station = _station(Path(tmp))
        photo_dir = station.settings.photo_folder
        try:
            if wanted("sign-in"):
                window = MainWindow(station, sign_in=True)
                window.show()
                save(window, "sign-in")
                window.close()

            # With its sync worker, as the console runs: the top bar shows a real sync state.
            window = MainWindow(station, sync=True)
            window.show()
            window.activateWindow()
            deadline = time.monotonic() + 30
            while not window.sync_label.text().startswith("synced") and time.monotonic() < deadline:
                app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)

            def step(action: Callable[[], None]) -> None:
                action()
                wait_until_idle(window)
                app.processEvents()
                wait_until_idle(window)

            def key(k: Qt.Key, mod: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
                step(lambda: QTest.keyClick(window.scan_field, k, mod))

            def open_and_scan_all(number: str, grades: str) -> None:
                step(lambda: window.submit_scan(number))
                if not window.parcel_open:
                    raise RuntimeError(f"{number} did not open: {window.feedback.text()}")
                used: dict[int, int] = {}
                for item in window.item_model.items():
                    nth = used[item.order_line_id] = used.get(item.order_line_id, -1) + 1
                    serials = item.serial_numbers
                    code = serials[nth] if nth < len(serials) else (item.gtin or item.sku)
                    step(lambda c=code: window.submit_scan(c))
                for row in range(window.item_model.rowCount()):
                    window.table.select_row(row)  # noqa: SLF001 - as ↑/↓ in the scan field would
                    step(lambda g=grades[min(row, len(grades) - 1)]: window.grade_selected(g))
                window.table.select_row(0)  # noqa: SLF001

            rmas = _authorized_rmas(station)
            small = [r for r in rmas if r[1] == 2] or rmas
            by_value = sorted(rmas, key=lambda r: r[2])

            open_and_scan_all(small[0][0], "AB")
            if wanted("parcel"):
                save(window, "parcel")
            if wanted("inspection"):
                key(Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
                key(Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
                photo_dir.mkdir(parents=True, exist_ok=True)
                _demo_photo(photo_dir / "bench-0001.png")
                key(Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
                window.inspect_panel.note_field.setText("Box dented at one corner; contents fine.")
                step(window.inspect_panel.note_field.editingFinished.emit)
                save(window, "inspection")
            key(Qt.Key.Key_F12)

            if wanted("weight-mismatch"):
                step(lambda: window.weight.setValue(120))
                step(lambda: window.submit_scan(small[1][0]))
                save(window, "weight-mismatch")
                key(Qt.Key.Key_Escape)

            if wanted("flagged-item"):
                step(lambda: window.submit_scan(small[2][0]))
                step(lambda: window.submit_scan("4006381333931"))
                save(window, "flagged-item")
                key(Qt.Key.Key_Escape)

            if wanted("review"):
                # The dearest RMA, in a parcel far too light: the weight signal sends it to a supervisor.
                step(lambda: window.weight.setValue(120))
                open_and_scan_all(by_value[-1][0], "A")
                save(window, "review")
                key(Qt.Key.Key_F12)

            if wanted("unexpected-parcel"):
                step(lambda: window.submit_scan(_order_without_rma(station)))
                save(window, "unexpected-parcel")

            pages: list[tuple[str, Callable[[], QWidget]]] = [
                ("history", lambda: HistoryPage(station, window.worker, window.printing.kick, window)),
                ("print-queue", lambda: PrintQueuePage(station, window.worker, window.printing.kick, window)),
                ("printers", lambda: PrintersPage(station, window.printer_settings, window.worker,
                                                  window.printing.kick, window)),
                ("devices", lambda: DevicesPage(station.settings.config_file, window.devices.settings, window)),
                # The review case above was decided by the clerk: a supervisor reviews it, an admin
                # manages users (the pages act as whoever the station they are given has signed in).
                ("review-queue", lambda: ReviewPage(_as(station, "mei"), window.worker, window.printer_settings,
                                                    window.printing.kick, window)),
                ("users", lambda: UsersPage(_as(station, "admin"), window.worker, window)),
            ]
            for name, make in pages:
                if not wanted(name):
                    continue
                page = make()
                page.show()
                wait_until_idle(window)
                app.processEvents()
                wait_until_idle(window)
                save(page, name)
                page.close()
                page.deleteLater()
            window.close()
            window.deleteLater()
            app.processEvents()
        finally:
            station.close()
            QApplication.processEvents()
    return written


def _as(station: Station, username: str) -> Station:
    """The same station database with ``username`` signed in."""
    from sqlalchemy import select

    from console.context import Actor
    from db.models import User

    with station.read_uow() as uow:
        user = uow.session.scalars(select(User).where(User.username == username)).one()
        actor = Actor(user.id, user.username, user.display_name, user.role)
    return Station(station.settings, station.engine, station.policy, actor)


def _demo_photo(path: Path) -> None:
    """A picture as the bench camera would leave one (drawn, so no photo file is shipped)."""
    from PySide6.QtGui import QColor, QImage, QPainter

    image = QImage(640, 480, QImage.Format.Format_RGB32)
    image.fill(QColor("#c8b89a"))
    painter = QPainter(image)
    painter.fillRect(120, 90, 400, 300, QColor("#8a6d46"))
    painter.end()
    image.save(str(path))


def default_out_dir() -> Path:
    return Path("docs") / "screenshots"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="scripts/screenshots",
                                     description="render every screen to PNG files (offscreen, on fresh demo data)")
    parser.add_argument("--out", type=Path, default=default_out_dir(), help="folder (default: docs/screenshots)")
    parser.add_argument("--only", action="append", metavar="SCREEN",
                        help="render only this screen (repeatable); see the README for the names")
    args = parser.parse_args(argv)
    names = {name for name, _ in SCREENS}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        print(f"screenshots: unknown screen {', '.join(unknown)}: choose from {', '.join(sorted(names))}",
              file=sys.stderr)
        return 2
    for path in render_screens(args.out, args.only):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
