"""The sync worker: its loop and backoff, ``returns-console sync --forever`` as a real process,
and the console running it as a child process with its state in the top bar."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from sqlalchemy.engine import Engine

from console.config import Settings
from console.station import Station
from console.sync_runner import MAX_BACKOFF_S, SyncLoop, SyncStatus, backoff_s
from db.engine import make_engine, sqlite_url
from db.models import Decision, OutboxRow
from printing.settings import default_settings
from tests.tools.factories import LineSpec, World, add_order, add_rma
from tests.ui.test_station_flows import grade_all, press, scan
from tests.sync.test_sync import count, decide, make_station
from tests.tools.window_fixtures import world  # noqa: F401 - fixture
from ui.main_window import MainWindow
from ui.sync_process import describe_sync

# Nothing listens on port 1: the connection is refused at once, as when central's host is up
# but PostgreSQL is not.
DEAD_CENTRAL = "postgresql://postgres@127.0.0.1:1/test"
WAIT_S = 30


@pytest.fixture
def station_engine(station_path: Path) -> Iterator[Engine]:
    engine = make_station(station_path)
    yield engine
    engine.dispose()


# -- backoff and the loop --------------------------------------------------------------------

def test_backoff_doubles_with_jitter_and_stops_at_the_cap() -> None:
    rng = random.Random(3)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (30, 60.0)]:
        delays = [backoff_s(failures, rng) for _ in range(200)]
        assert all(0.5 <= d <= ceiling for d in delays), (failures, min(delays), max(delays))
        assert max(delays) - min(delays) > ceiling / 4  # jittered: stations do not retry in step
    assert max(backoff_s(50, rng) for _ in range(500)) <= MAX_BACKOFF_S


def test_loop_reports_offline_keeps_everything_then_pushes_once_central_is_back(
        station_engine: Engine, station_path: Path, tmp_path: Path) -> None:
    decide(station_engine, 101)
    decide(station_engine, 102)
    loop = SyncLoop(sqlite_url(station_path), DEAD_CENTRAL, "WH1-01", rng=random.Random(1))
    try:
        started = time.monotonic()
        first = loop.pass_once()
        second = loop.pass_once()
        assert time.monotonic() - started < 10  # refused fast, never hanging
    finally:
        loop.close()
    assert not first.online and not second.online
    assert first.pending == second.pending == 2
    assert "127.0.0.1" in first.message and "unreachable" in first.message and "stay" in first.message
    assert 0.5 <= first.retry_in_s <= 1.0 and 1.0 <= second.retry_in_s * 2  # backing off
    assert first.last_success_at is None
    assert count(station_engine, OutboxRow, OutboxRow.sent_at.is_(None)) == 2  # nothing lost

    central_url = sqlite_url(tmp_path / "central.sqlite3")
    loop = SyncLoop(sqlite_url(station_path), central_url, "WH1-01")
    try:
        back = loop.pass_once()
        again = loop.pass_once()
    finally:
        loop.close()
    assert back.online and back.pushed == 2 and back.pending == 0 and back.message == "2 sent"
    assert again.online and again.pushed == 0 and again.message == "up to date"
    assert back.last_success_at is not None and again.last_success_at >= back.last_success_at
    central = make_engine(central_url)
    try:
        assert count(central, Decision) == 2
    finally:
        central.dispose()
    assert SyncStatus.from_json(back.to_json()) == back


def test_wake_pushes_at_once_and_stop_ends_the_loop(station_engine: Engine, station_path: Path,
                                                    tmp_path: Path) -> None:
    # A long interval: only wake() can explain a second push within the test.
    loop = SyncLoop(sqlite_url(station_path), sqlite_url(tmp_path / "central.sqlite3"), "WH1-01",
                    interval_s=600)
    seen: list[SyncStatus] = []
    arrived = threading.Event()

    def emit(status: SyncStatus) -> None:
        seen.append(status)
        arrived.set()

    thread = threading.Thread(target=loop.run, args=(emit,))
    thread.start()
    try:
        assert arrived.wait(WAIT_S) and seen[0].online and seen[0].pushed == 0
        arrived.clear()
        decide(station_engine, 103)
        loop.wake()
        assert arrived.wait(WAIT_S) and seen[-1].pushed == 1 and seen[-1].pending == 0
    finally:
        loop.stop()
        thread.join(WAIT_S)
        loop.close()
    assert not thread.is_alive()


# -- the headless command ----------------------------------------------------------------------

def _sync_forever(station_path: Path, central: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "console.cli", "--station", str(station_path), "--central", central,
         "sync", "--forever", "--station-id", "WH1-01", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _end(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate()  # closes the pipes


def _next_status(proc: subprocess.Popen[str]) -> SyncStatus:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"sync worker ended: {proc.stderr.read() if proc.stderr else ''}"
    return SyncStatus.from_json(line)


def test_sync_forever_follows_its_lifeline(station_engine: Engine, station_path: Path, tmp_path: Path) -> None:
    decide(station_engine, 101)
    proc = _sync_forever(station_path, sqlite_url(tmp_path / "central.sqlite3"), "--interval", "600", "--lifeline")
    try:
        first = _next_status(proc)
        assert first.online and first.pushed == 1 and first.pending == 0
        decide(station_engine, 102)
        assert proc.stdin is not None
        proc.stdin.write("push\n")  # what the console writes after a decision
        proc.stdin.flush()
        second = _next_status(proc)
        assert second.pushed == 1 and second.pending == 0
        proc.stdin.close()  # the console closed (or died): the worker stops
        assert proc.wait(WAIT_S) == 0
        proc.stdin = None  # closed already; communicate() must not flush it
    finally:
        _end(proc)


def test_sync_forever_stops_on_sigterm_and_reports_offline_as_json(station_engine: Engine,
                                                                   station_path: Path) -> None:
    decide(station_engine, 101)
    proc = _sync_forever(station_path, DEAD_CENTRAL)
    try:
        status = _next_status(proc)
        assert not status.online and status.pending == 1 and "unreachable" in status.message
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT_S) == 0
    finally:
        _end(proc)
    assert count(station_engine, OutboxRow, OutboxRow.sent_at.is_(None)) == 1


def test_sync_once_still_prints_its_report(station_engine: Engine, station_path: Path, tmp_path: Path) -> None:
    decide(station_engine, 101)
    done = subprocess.run([sys.executable, "-m", "console.cli", "--station", str(station_path), "--central",
                           sqlite_url(tmp_path / "c.sqlite3"), "sync", "--once"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pushed"] == 1


def test_status_words_for_the_top_bar() -> None:
    offline = SyncStatus(online=False, pending=12, pushed=0, failed=0, last_success_at="2026-11-23T05:00:00+00:00",
                         message="central database at … is unreachable", retry_in_s=8.2)
    short, full, attention = describe_sync(offline, "Asia/Tokyo")
    assert short == "sync OFFLINE · 12 waiting" and attention
    assert "Last sync 14:00" in full and "next try in 8 s" in full and "Keep working" in full
    online = SyncStatus(online=True, pending=0, pushed=3, failed=0, last_success_at="2026-11-23T05:00:00+00:00",
                        message="3 sent", retry_in_s=2)
    assert describe_sync(online, "UTC")[0] == "synced 05:00"
    busy = SyncStatus(online=True, pending=4, pushed=3, failed=0, last_success_at=None, message="3 sent", retry_in_s=2)
    assert describe_sync(busy, "UTC")[0] == "syncing · 4 waiting"
    assert not describe_sync(online, "UTC")[2]
    conflicted = SyncStatus(online=True, pending=0, pushed=1, failed=0, last_success_at=None, message="1 sent",
                            retry_in_s=2, pulled=3, conflicts=2)
    short, full, attention = describe_sync(conflicted, "UTC")
    assert short == "sync: 2 conflicts" and attention and "supervisor" in full
    assert SyncStatus.from_json(conflicted.to_json()) == conflicted
    refused = SyncStatus(online=True, pending=1, pushed=0, failed=1, last_success_at=None,
                         message="1 event(s) refused", retry_in_s=2)
    assert describe_sync(refused, "UTC")[0] == "sync: 1 refused" and describe_sync(refused, "UTC")[2]


# -- in the console ----------------------------------------------------------------------------

def _station(world: World, tmp_path: Path, central_url: str) -> Station:
    settings = Settings(data_dir=tmp_path, config_file=tmp_path / "config.toml",
                        station_db=tmp_path / "station.sqlite3", central_url=central_url, sounds=False)
    return Station(settings, world.engine, world.policy, world.actor)


def _open(qtbot, station: Station, tmp_path: Path) -> MainWindow:
    win = MainWindow(station, None, default_settings(tmp_path), sync=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.scan_field, timeout=WAIT_S * 1000)
    return win


def test_console_pushes_a_decision_to_central_through_its_child(qtbot, world: World, tmp_path: Path) -> None:
    central_url = sqlite_url(tmp_path / "central.sqlite3")
    order = add_order(world, [LineSpec("AP-1", 4000, weight_g=1000)])
    rma = add_rma(world, order)
    win = _open(qtbot, _station(world, tmp_path, central_url), tmp_path)
    try:
        assert win.sync is not None and win.sync_label.isVisible()
        qtbot.waitUntil(lambda: win.sync_label.text().startswith(("synced", "syncing")), timeout=WAIT_S * 1000)
        child = win.sync.pid()
        assert child > 0 and child != os.getpid()  # a process of its own, not a thread
        scan(qtbot, win, rma.number)
        scan(qtbot, win, "AP-1")
        grade_all(qtbot, win)
        press(qtbot, win, Qt.Key.Key_F12)
        qtbot.waitUntil(lambda: not win.parcel_open, timeout=WAIT_S * 1000)
        # The window kicks the worker after the decision; the lifeline test shows a kick works.
        central = make_engine(central_url)
        try:
            qtbot.waitUntil(lambda: count(central, Decision) == 1, timeout=WAIT_S * 1000)
        finally:
            central.dispose()
        qtbot.waitUntil(lambda: win.sync_label.text().startswith("synced "),
                        timeout=WAIT_S * 1000)
        assert win.sync_label.property("attention") == "false"
    finally:
        win.close()
    assert not win.sync.running()  # closing the console ends its worker


def test_console_offline_says_so_and_the_clerk_keeps_working(qtbot, world: World, tmp_path: Path) -> None:
    order = add_order(world, [LineSpec("AP-1", 4000, weight_g=1000)])
    rma = add_rma(world, order)
    win = _open(qtbot, _station(world, tmp_path, DEAD_CENTRAL), tmp_path)
    try:
        qtbot.waitUntil(lambda: win.sync_label.text().startswith("sync OFFLINE"), timeout=WAIT_S * 1000)
        assert win.sync_label.property("attention") == "true"
        assert "Keep working" in win.sync_label.toolTip()
        scan(qtbot, win, rma.number)
        scan(qtbot, win, "AP-1")
        grade_all(qtbot, win)
        press(qtbot, win, Qt.Key.Key_F12)
        qtbot.waitUntil(lambda: not win.parcel_open, timeout=WAIT_S * 1000)
        assert "approved" in win.feedback.text()
        # The decision waits on the station: its events are counted as pending in the top bar.
        qtbot.waitUntil(lambda: win.sync_label.text() != "sync OFFLINE · 0 waiting"
                        and win.sync_label.text().startswith("sync OFFLINE"), timeout=WAIT_S * 1000)
    finally:
        win.close()
    with world.uow() as uow:
        assert uow.session.query(OutboxRow).filter(OutboxRow.sent_at.is_(None)).count() >= 1


def test_a_dead_worker_is_reported_and_started_again(qtbot, world: World, tmp_path: Path) -> None:
    win = _open(qtbot, _station(world, tmp_path, sqlite_url(tmp_path / "central.sqlite3")), tmp_path)
    try:
        assert win.sync is not None
        qtbot.waitUntil(lambda: win.sync_label.text().startswith(("synced", "syncing")), timeout=WAIT_S * 1000)
        first = win.sync.pid()
        os.kill(first, signal.SIGKILL)
        qtbot.waitUntil(lambda: win.sync_label.text() == "sync: stopped", timeout=WAIT_S * 1000)
        assert "restarting" in win.sync_label.toolTip()
        qtbot.waitUntil(lambda: win.sync.running() and win.sync.pid() != first, timeout=WAIT_S * 1000)
        qtbot.waitUntil(lambda: win.sync_label.text().startswith(("synced", "syncing")), timeout=WAIT_S * 1000)
    finally:
        win.close()
