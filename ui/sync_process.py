"""The console's sync worker: ``returns-console sync --forever`` as a child process.

A process rather than a thread because pushing thousands of events is Python work (SQLAlchemy,
JSON) that would hold the interpreter lock the GUI thread needs for every paint. QProcess is
asynchronous, so the GUI thread never waits on it: status lines arrive as signals. A child that
dies is started again after a pause; closing the console ends the child's input, which it takes
as the signal to stop after the batch in hand.
"""
from __future__ import annotations

import logging
import sys
from datetime import datetime

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from console.config import Settings
from console.sync_runner import SyncStatus

log = logging.getLogger(__name__)

RESTART_MS = 5_000
STOP_WAIT_MS = 3_000


class SyncProcess(QObject):
    """``status_changed(SyncStatus)`` after every pass; ``stopped(str)`` if the child died."""

    status_changed = Signal(object)
    stopped = Signal(str)

    def __init__(self, settings: Settings, parent: QObject | None = None, *,
                 interval_s: float | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.interval_s = interval_s
        self.last: SyncStatus | None = None
        self._closing = False
        self._stderr_tail = ""
        self._process: QProcess | None = None
        self._restart = QTimer(self)
        self._restart.setSingleShot(True)
        self._restart.setInterval(RESTART_MS)
        self._restart.timeout.connect(self.start)

    def arguments(self) -> list[str]:
        s = self.settings
        args = ["-m", "console.cli", "--station", str(s.station_db), "--central", s.central_url,
                "sync", "--forever", "--lifeline", "--station-id", s.station_id]
        if self.interval_s is not None:
            args += ["--interval", str(self.interval_s)]
        return args

    def start(self) -> None:
        if self._closing or (self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning):
            return
        process = QProcess(self)
        process.setProgram(sys.executable)
        process.setArguments(self.arguments())
        process.readyReadStandardOutput.connect(self._read_status)
        process.readyReadStandardError.connect(self._read_errors)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        self._stderr_tail = ""
        process.start()

    def running(self) -> bool:
        return self._process is not None and self._process.state() == QProcess.ProcessState.Running

    def pid(self) -> int:
        return int(self._process.processId()) if self._process is not None else 0

    def kick(self) -> None:
        """Push now (a decision was just written) instead of at the next interval."""
        if self.running():
            assert self._process is not None
            self._process.write(b"push\n")

    def stop(self, wait_ms: int = STOP_WAIT_MS) -> None:
        """At close: the child finishes the batch in hand and exits; one that does not is killed,
        which loses nothing (a batch is marked sent only after central committed it)."""
        self._closing = True
        self._restart.stop()
        process = self._process
        if process is None or process.state() == QProcess.ProcessState.NotRunning:
            return
        process.closeWriteChannel()
        if not process.waitForFinished(wait_ms):
            process.kill()
            process.waitForFinished(1_000)

    # -- the child's output ----------------------------------------------------------------

    def _read_status(self) -> None:
        process = self._process
        if process is None:
            return
        while process.canReadLine():
            line = bytes(process.readLine().data()).decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                status = SyncStatus.from_json(line)
            except (ValueError, KeyError, TypeError):
                log.warning("sync worker said: %s", line)
                continue
            self.last = status
            self.status_changed.emit(status)

    def _read_errors(self) -> None:
        process = self._process
        if process is None:
            return
        text = bytes(process.readAllStandardError().data()).decode("utf-8", "replace")
        if text.strip():
            self._stderr_tail = (self._stderr_tail + text)[-2000:]

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._died(f"the sync worker could not start ({sys.executable})")

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self._closing:
            return
        lines = [line for line in self._stderr_tail.splitlines() if line.strip()]
        why = lines[-1].removeprefix("returns-console: ") if lines else (
            "it crashed" if status == QProcess.ExitStatus.CrashExit else f"it exited with code {code}")
        self._died(why)

    def _died(self, why: str) -> None:
        log.warning("sync worker stopped: %s", why)
        self.stopped.emit(f"sync stopped: {why}; restarting in {RESTART_MS // 1000} s")
        if not self._closing:
            self._restart.start()


def describe_sync(status: SyncStatus, zone_name: str) -> tuple[str, str, bool]:
    """The top bar's short words for a status, the tooltip's full ones, and whether the clerk
    should look (offline, or central refused something)."""
    from zoneinfo import ZoneInfo

    last = "never"
    if status.last_success_at:
        moment = datetime.fromisoformat(status.last_success_at).astimezone(ZoneInfo(zone_name))
        last = moment.strftime("%H:%M")
    pending = "? waiting" if status.pending < 0 else f"{status.pending} waiting"
    if not status.online:
        return (f"sync OFFLINE · {pending}",
                f"Central cannot be reached: {status.message}\nLast sync {last}; next try in "
                f"{status.retry_in_s:.0f} s. Keep working: decisions wait on this station and go "
                "out when central is back.", True)
    if status.conflicts:
        return (f"sync: {status.conflicts} conflict{'s' if status.conflicts != 1 else ''}",
                f"{status.conflicts} of this station's decisions or approvals could not stand at central "
                "(another station decided the same item first, or central refused an approval). They wait "
                f"for a supervisor's review; nothing is lost. Last sync {last}.", True)
    if status.failed:
        return (f"sync: {status.failed} refused",
                f"Central refused {status.failed} event(s): {status.message}\nTell a supervisor; "
                f"the events stay on this station. Last sync {last}.", True)
    short = f"synced {last}" if status.pending == 0 else f"syncing · {pending}"
    return short, f"Central is online. Last sync {last}: {status.message}. New decisions go out within seconds.", False
