"""Fixtures for tests that open the console window: a station database whose clock is the wall
clock (the window's services read it; ``Station.ctx`` has no test clock) and the ``Station``
the window is built on. Import them into a test module to use them."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from console.config import Settings
from console.station import Station
from db.engine import sqlite_url
from tests.tools.factories import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    w.clock.now = datetime.now(timezone.utc)
    yield w
    w.engine.dispose()


@pytest.fixture
def station(world: World, tmp_path: Path) -> Station:
    settings = Settings(data_dir=tmp_path, config_file=tmp_path / "config.toml",
                        station_db=tmp_path / "station.sqlite3", central_url=sqlite_url(tmp_path / "central.sqlite3"),
                        # No audio device here (Qt Multimedia would only warn): the window still
                        # records which sound it asked for, and the tests read that.
                        sounds=False)
    return Station(settings, world.engine, world.policy, world.actor)


def show_ready(qtbot, win, wait_ms: int = 10_000):  # type: ignore[no-untyped-def]
    """Show the console window as a clerk finds it: exposed, active, the scan field focused."""
    from PySide6.QtWidgets import QApplication

    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.scan_field, timeout=wait_ms)
    return win
