"""Walking a station's audit chain, and comparing it with the copies kept outside the chain.

What each check finds (the first problem by seq is reported, with what is wrong):

- The chain alone: an edited row (its hash no longer matches its content), a deleted row in the
  middle (a gap in seq: "rows 43–45 missing"), a row changed and re-hashed (the next row no longer
  follows it), a row written by hand with a made-up hash.
- The station's outbox, which keeps a copy of every audit row it sent or will send (see
  ``console.audit``): rows deleted from the END of the chain — invisible to the chain alone —
  and a chain re-hashed from some row on. Not caught: the same done to the outbox copies too.
- Central's copy (``--central``): all of the above even when the station's file was rewritten
  consistently, chain and outbox: central has rows the station lacks, or holds another hash
  for a row. Not caught: rows the station wrote, or rewrote, before they reached central.
- What central refused (``--central``): a row sent for a position of the chain that central
  already holds with another hash, or a row that claims this station's chain from another
  station's login; central keeps each aside as sent (``station_refusals``), never skipping a
  real row silently.
- Keyless by design: a well-formed row appended at the end by someone who can write the file
  looks like a real one until central disagrees (it never received it).

Rows are streamed in seq order, never loaded all at once; the hash is ``console.audit``'s own.
"""
from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from console.audit import GENESIS, row_digest
from db.models import AuditEvent, StationRefusal

_STREAM = {"yield_per": 2000}
_EVENTS = AuditEvent.__table__


@dataclass(frozen=True)
class Problem:
    seq: int
    message: str


@dataclass
class ChainReport:
    station_id: str
    rows: int = 0  # rows of the station's chain walked (central's, when only central was read)
    last_seq: int = 0
    anchored: int | None = None  # rows the station's outbox holds copies of (None: not checked)
    central_rows: int | None = None  # rows of central's copy (None: not compared)
    not_at_central: int = 0  # the station's newest rows, not pushed yet: normal, not a problem
    problem: Problem | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        if self.problem is not None:
            return f"{self.station_id}: {self.problem.message}"
        parts = [f"{self.rows} rows" if self.rows != 1 else "1 row"]
        if self.anchored is not None:
            parts.append(f"{self.anchored} with their copy in the outbox")
        if self.central_rows is not None:
            parts.append(f"central holds {self.central_rows}")
        if self.not_at_central:
            parts.append(f"{self.not_at_central} not at central yet (sent with the next sync)")
        return f"{self.station_id}: intact ({'; '.join(parts)})"


def _span(first: int, last: int) -> str:
    return f"row {first}" if first == last else f"rows {first}–{last}"


@dataclass
class _Walk:
    """One chain's rows in seq order: each must follow the last with the hash it was chained to."""

    whose: str  # "" for the station's chain, "central's copy: " for central's
    expected: int = 1
    prev_hash: str = GENESIS
    rows: int = 0
    last_seq: int = 0
    problem: Problem | None = field(default=None)

    def feed(self, row: Any) -> Problem | None:
        seq = row.seq
        found: Problem | None = None
        if seq > self.expected:
            after = f"row {seq} follows row {self.last_seq}" if self.last_seq else f"the chain starts at row {seq}"
            found = Problem(self.expected, f"{self.whose}{_span(self.expected, seq - 1)} missing: {after}")
        elif seq < self.expected:
            found = Problem(seq, f"{self.whose}row {seq} is out of sequence (after row {self.last_seq})")
        elif row.hash != row_digest(row):
            found = Problem(seq, f"{self.whose}row {seq} edited: hash does not match its content")
        elif row.prev_hash != self.prev_hash and seq == 1:
            found = Problem(seq, f"{self.whose}row 1 does not start the chain: it is chained to another row")
        elif row.prev_hash != self.prev_hash:
            found = Problem(seq, f"{self.whose}row {seq} does not follow row {seq - 1}: row {seq - 1} was "
                                 f"changed and re-hashed after row {seq} was written")
        if found is not None:
            self.problem = found
            return found
        self.prev_hash, self.last_seq = row.hash, seq
        self.expected += 1
        self.rows += 1
        return None


def chain_rows(conn: Connection, station_id: str) -> Generator[Any, None, None]:
    """The station's rows in seq order, streamed (a server-side cursor on PostgreSQL)."""
    query = (select(_EVENTS.c.seq, _EVENTS.c.occurred_at, _EVENTS.c.station_id, _EVENTS.c.user_id,
                    _EVENTS.c.action, _EVENTS.c.entity, _EVENTS.c.entity_id, _EVENTS.c.details,
                    _EVENTS.c.prev_hash, _EVENTS.c.hash)
             .where(_EVENTS.c.station_id == station_id).order_by(_EVENTS.c.seq))
    with conn.execute(query, execution_options=_STREAM) as result:  # closed too when the walk stops early
        yield from result


def station_ids(conn: Connection) -> list[str]:
    return sorted(conn.execute(select(_EVENTS.c.station_id).distinct()).scalars())


# Every audit row the station's outbox carries (sent or not): json_each walks each event's rows.
_ANCHORED = """
WITH anchored AS (
    SELECT CAST(json_extract(r.value, '$.values.seq') AS INTEGER) AS seq,
           json_extract(r.value, '$.values.hash') AS hash
    FROM outbox AS o, json_each(o.payload, '$.rows') AS r
    WHERE json_valid(o.payload) AND json_extract(r.value, '$.table') = 'audit_events'
      AND json_extract(r.value, '$.values.station_id') = :station
)
SELECT count(*), max(a.seq),
       min(CASE WHEN e.hash IS NULL OR e.hash <> a.hash THEN a.seq END)
FROM anchored AS a LEFT JOIN audit_events AS e ON e.station_id = :station AND e.seq = a.seq
"""


def _check_anchors(conn: Connection, station_id: str, report: ChainReport) -> Problem | None:
    count, last_anchored, first_bad = conn.execute(text(_ANCHORED), {"station": station_id}).one()
    report.anchored = int(count)
    if first_bad is None:
        return None
    present = conn.execute(select(_EVENTS.c.seq).where(_EVENTS.c.station_id == station_id,
                                                       _EVENTS.c.seq >= first_bad).order_by(_EVENTS.c.seq)
                           .limit(1)).scalar()
    if present == first_bad:
        return Problem(first_bad, f"row {first_bad} differs from the copy its outbox event carried: "
                                  "changed and re-hashed after it was written")
    if present is None:
        return Problem(first_bad, f"{_span(first_bad, int(last_anchored))} missing: deleted from the end of "
                                  "the chain (the outbox still holds their copies)")
    return Problem(first_bad, f"{_span(first_bad, present - 1)} missing (the outbox still holds their copies)")


def verify_station(local: Connection | None, station_id: str, *, central: Connection | None = None,
                   anchors: bool = True) -> ChainReport:
    """Walk ``station_id``'s chain in the station database ``local`` and, with ``central``, central's
    copy beside it. ``local`` None: central's copy alone. The first problem by seq is reported."""
    report = ChainReport(station_id)
    anchor_problem = None
    if local is not None and anchors and local.dialect.name == "sqlite":
        anchor_problem = _check_anchors(local, station_id, report)
    mine = _Walk("")
    theirs = _Walk("central's copy: ")
    if central is not None and local is not None:
        report.central_rows = 0
    found = _walk(local, central, station_id, mine, theirs, report)
    report.rows, report.last_seq = (mine.rows, mine.last_seq) if local is not None else (theirs.rows, theirs.last_seq)
    if report.central_rows is not None:
        report.central_rows = theirs.rows
    refused = _refused_at_central(central, station_id) if central is not None else None
    candidates = [p for p in (found, anchor_problem, refused) if p is not None]
    report.problem = min(candidates, key=lambda p: p.seq) if candidates else None
    return report


def _refused_at_central(central: Connection, station_id: str) -> Problem | None:
    """The first row of this chain central kept aside, as a problem with what it was."""
    refusals = StationRefusal.__table__.c
    row = central.execute(select(refusals.kind, refusals.seq, refusals.pushed_by, refusals.row_key,
                                 refusals.detected_at)
                          .where(refusals.station_id == station_id, refusals.table_name == _EVENTS.name)
                          .order_by(refusals.seq, refusals.detected_at).limit(1)).first()
    if row is None:
        return None
    seq = row.seq or 0
    when = row.detected_at.strftime("%Y-%m-%d %H:%M UTC")
    if row.kind == "other_station":
        return Problem(seq, f"central refused a row for position {seq} of this chain sent from station "
                            f"{row.pushed_by}'s login on {when} (audit row {row.row_key}): a station may write "
                            "only its own chain; kept aside at central (station_refusals)")
    return Problem(seq, f"central holds another row at position {seq}: a second row for it "
                        f"(audit row {row.row_key}) arrived on {when} with another hash and is kept aside at "
                        "central (station_refusals) — two chains claim this station's id")


def _walk(local: Connection | None, central: Connection | None, station_id: str, mine: _Walk, theirs: _Walk,
          report: ChainReport) -> Problem | None:
    with ExitStack() as stack:
        ours = stack.enter_context(closing(chain_rows(local, station_id))) if local is not None else iter(())
        central_rows = (stack.enter_context(closing(chain_rows(central, station_id))) if central is not None
                        else iter(()))
        return _merge(ours, central_rows, central is not None, local is not None, mine, theirs, report)


def _merge(ours: Iterator[Any], central_rows: Iterator[Any], with_central: bool, with_local: bool, mine: _Walk,
           theirs: _Walk, report: ChainReport) -> Problem | None:
    """Both chains side by side in seq order, until the first problem."""
    a, b = next(ours, None), next(central_rows, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.seq < b.seq):
            assert a is not None  # the loop runs while a row is left: b is None only if a is not
            problem = mine.feed(a)
            if problem is None and with_central:
                if b is not None:  # central holds later rows: this one is a hole in its copy
                    problem = Problem(a.seq, f"central lacks row {a.seq}, which this station holds (its event "
                                             "did not reach central: see `returns-console sync`)")
                else:
                    report.not_at_central += 1
            a = next(ours, None)
        elif a is None or b.seq < a.seq:
            problem = theirs.feed(b)
            if problem is None and with_local:
                problem = Problem(b.seq, f"central has row {b.seq} that this station lacks")
            b = next(central_rows, None)
        else:
            problem = mine.feed(a) or theirs.feed(b)
            if problem is None and a.hash != b.hash:
                problem = Problem(a.seq, f"row {a.seq} differs from central's copy: one of the two was changed "
                                         "and re-hashed after it reached central")
            a, b = next(ours, None), next(central_rows, None)
        if problem is not None:
            return problem
    return None


def verify_chain(session: Session, station_id: str) -> int | None:
    """The seq of the first row whose link does not hold, or None when the chain is intact
    (``verify_station`` says what is wrong and compares with the copies kept elsewhere)."""
    report = verify_station(session.connection(), station_id, anchors=False)
    return report.problem.seq if report.problem else None
