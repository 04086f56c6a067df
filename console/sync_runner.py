"""The sync worker's loop: push the outbox to central, again and again, backing off while central
cannot be reached.

It runs headless (``returns-console sync --forever``) and as the console's child process
(``ui.sync_process``): a process of its own, so that SQLAlchemy's work on thousands of events
never competes with the GUI thread for the interpreter lock. Each pass ends with one status
line (JSON) that the console shows in its top bar. In the console the child reads its standard
input: a line asks for a push now (a decision was just made), end of input (the console closed or
died) ends the loop after the batch in hand.
"""
from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from console.errors import EnvironmentProblem
from db.push import BATCH_SIZE
from db.types import utcnow

if TYPE_CHECKING:
    from printing.settings import PrinterSettings

log = logging.getLogger(__name__)

INTERVAL_S = 2.0  # between passes while online: a decision reaches central within seconds
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
ROUND_TRIP_LIMIT_S = 60.0  # far above any statement a push or pull sends; a dead network is cut off


def backoff_s(failures: int, rng: random.Random, *, first: float = FIRST_BACKOFF_S,
              cap: float = MAX_BACKOFF_S) -> float:
    """Exponential backoff with full jitter: uniform in [first/2, min(cap, first·2^(n-1))], so
    twenty stations that lost central together do not all come back in the same second."""
    ceiling = min(cap, first * 2 ** max(0, failures - 1))
    return rng.uniform(min(first / 2, ceiling), ceiling)


@dataclass(frozen=True)
class SyncStatus:
    """What one pass found. ``online`` is whether central took the pass; ``last_success_at`` is
    ISO 8601 UTC (None: not once since the worker started)."""

    online: bool
    pending: int
    pushed: int
    failed: int
    last_success_at: str | None
    message: str
    retry_in_s: float
    pulled: int = 0
    conflicts: int = 0  # this station's events central could not apply as meant, unresolved

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> SyncStatus:
        data: dict[str, Any] = json.loads(line)
        return cls(online=bool(data["online"]), pending=int(data["pending"]), pushed=int(data["pushed"]),
                   failed=int(data["failed"]), last_success_at=data.get("last_success_at"),
                   message=str(data.get("message", "")), retry_in_s=float(data.get("retry_in_s", 0.0)),
                   pulled=int(data.get("pulled", 0)), conflicts=int(data.get("conflicts", 0)))


class SyncLoop:
    """Push passes until stopped. ``wake()`` cuts the wait short; ``stop()`` ends the loop after
    the pass in hand (a pass never leaves the outbox half-marked: see ``db.push.push_once``)."""

    def __init__(self, station_url: str, central_url: str, station_id: str, *,
                 interval_s: float = INTERVAL_S, batch_size: int | None = None,
                 rng: random.Random | None = None, printers: PrinterSettings | None = None) -> None:
        from db.engine import make_engine

        self.station = make_engine(station_url, must_exist=True)
        from db.watchdog import guard_engine

        self.central_url = central_url
        self.central = make_engine(central_url)
        # A black-holed network (packets taken, never answered) must fail a pass, not hang it.
        guard_engine(self.central, ROUND_TRIP_LIMIT_S)
        self.station_id = station_id
        self.interval_s = interval_s
        self.batch_size = batch_size or BATCH_SIZE
        self.rng = rng or random.Random()
        self.failures = 0
        self.last_success_at: datetime | None = None
        self._schema_ready = False
        self._event = threading.Event()
        self._stopped = False
        # Where verdicts pulled from central print (None: the station's printers.toml, read when
        # first needed); and whether this run has looked for verdicts not printed yet.
        self.printers = printers
        self._caught_up = False

    def wake(self) -> None:
        self._event.set()

    def stop(self) -> None:
        self._stopped = True
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def pass_once(self) -> SyncStatus:
        """Push first (central must have the station's news before the station takes central's),
        then pull the change feed, then count the conflicts waiting."""
        from db.pull import pull_once
        from db.push import check_central_schema, open_conflict_count, pending_count, push_once

        try:
            if not self._schema_ready:
                check_central_schema(self.central)
                self._schema_ready = True
            report = push_once(self.station, self.central, batch_size=self.batch_size,
                               station_id=self.station_id)
            pull = pull_once(self.station, self.central, echo_xids=report.echo_xids)
            pulled = pull.pulled
            conflicts = open_conflict_count(self.central, self.station_id)
        except Exception as exc:  # noqa: BLE001 - a worker that dies on one bad pass syncs nothing again
            self.failures += 1
            delay = backoff_s(self.failures, self.rng)
            if isinstance(exc, EnvironmentProblem):
                message = exc.message
            else:
                log.exception("sync pass failed")
                message = f"sync failed ({type(exc).__name__}: {exc}); tried again in a moment — tell IT if it stays"
            return SyncStatus(online=False, pending=_count_or_minus(pending_count, self.station), pushed=0,
                              failed=0, last_success_at=_iso(self.last_success_at),
                              message=message[:500], retry_in_s=round(delay, 2))
        self.failures = 0
        self.last_success_at = utcnow()
        printed = self._print_settled_reviews(pull.by_table)
        if report.failed:
            message = f"{report.failed} event(s) refused by central: {report.errors[0]}"
        else:
            parts = [f"{report.pushed} sent"] if report.pushed else []
            parts += [f"{pulled} received"] if pulled else []
            parts += [printed] if printed else []
            message = ", ".join(parts) or "up to date"
        return SyncStatus(online=True, pending=report.pending_after, pushed=report.pushed,
                          failed=report.failed, last_success_at=_iso(self.last_success_at),
                          message=message, retry_in_s=self.interval_s, pulled=pulled, conflicts=conflicts)

    def _print_settled_reviews(self, pulled_by_table: dict[str, int]) -> str:
        """The "flows back and prints" step of supervisor review: verdicts pulled for parcels this
        station received queue their printouts here (console.review.print_settled_reviews, once per
        decision). Looked for when a pull brought decisions or approvals, and once per run, so a
        verdict pulled just before a restart still prints. A printing problem never fails the sync."""
        if self._caught_up and not ({"decisions", "approvals"} & set(pulled_by_table)):
            return ""
        from console.review import print_settled_reviews, void_refused_printouts

        try:
            voided = _on_station(self.station, self.station_id, lambda uow, ctx: void_refused_printouts(uow, ctx))
            queued = _on_station(self.station, self.station_id,
                                 lambda uow, ctx: print_settled_reviews(uow, ctx, self._printer_settings()))
        except Exception as exc:  # noqa: BLE001 - retried next time: nothing is marked printed
            log.exception("printing settled reviews failed")
            return f"review printouts not queued ({type(exc).__name__}: {exc}); tried again at the next pass"
        self._caught_up = True
        parts = [f"VOID: the printouts of {v.rma_number or 'a reviewed case'} ({', '.join(v.documents) or 'none'}) — "
                 f"{v.reason}; take back what was printed"
                 + (f" and bring {', '.join(v.back_to_quarantine)} back to quarantine" if v.back_to_quarantine else "")
                 for v in voided]
        decisions = {q.decision_id for q in queued}
        if queued:
            parts.append(f"{len(queued)} printout(s) queued for {len(decisions)} reviewed case(s)")
        return "; ".join(parts)

    def _printer_settings(self) -> PrinterSettings:
        if self.printers is None:
            from console.config import load_settings
            from printing.settings import load_printer_settings, printers_file

            settings = load_settings()
            self.printers = load_printer_settings(printers_file(settings.config_file), settings.data_dir)
        return self.printers

    def run(self, emit: Callable[[SyncStatus], None], *, once: bool = False) -> SyncStatus:
        """Passes until ``stop()`` (or one pass with ``once``); the last status is returned."""
        while True:
            self._event.clear()
            status = self.pass_once()
            emit(status)
            if once or self._stopped:
                return status
            self._event.wait(status.retry_in_s)
            if self._stopped:
                return status

    def close(self) -> None:
        self.station.dispose()
        self.central.dispose()


def follow_lifeline(loop: SyncLoop, stream: TextIO) -> threading.Thread:
    """Read the parent's lines on a daemon thread: any line wakes the loop, end of input stops it."""

    def read() -> None:
        try:
            for _line in stream:
                loop.wake()
        except (OSError, ValueError):
            pass
        loop.stop()

    thread = threading.Thread(target=read, name="sync-lifeline", daemon=True)
    thread.start()
    return thread


def _on_station(station: Any, station_id: str, step: Callable[[Any, Any], list[Any]]) -> list[Any]:
    """Run a printing step of supervisor review in a unit of work of the station's own."""
    from zoneinfo import ZoneInfo

    from sqlalchemy.orm import sessionmaker

    from console.context import Actor, StationContext
    from console.policy import load_policy
    from db.models import Station
    from db.uow import UnitOfWork

    writer = station.execution_options(sqlite_begin="immediate") if station.dialect.name == "sqlite" else station
    with UnitOfWork(sessionmaker(writer, expire_on_commit=False)) as uow:
        row = uow.session.get(Station, station_id)
        zone = ZoneInfo(row.time_zone if row is not None and row.time_zone else "UTC")
        # Printing replaces the actor by the supervisor who gave each verdict (print_settled_reviews).
        ctx = StationContext(station_id, zone, load_policy(), Actor(0, "sync", "sync worker", "clerk"))
        return step(uow, ctx)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _count_or_minus(count: Callable[[Any], int], engine: Any) -> int:
    try:
        return count(engine)
    except Exception:  # noqa: BLE001 - the status line must still go out; -1 says "unknown"
        return -1
