"""Deadlines for PostgreSQL round trips: a stalled network fails fast instead of hanging forever.

psycopg has no read timeout. ``connect_timeout`` covers only connecting, and when a middlebox
(a NAT, a VPN, a firewall that black-holes) ACKs the packets but never forwards them, neither
``tcp_user_timeout`` nor keepalives ever fire: a query then waits forever for an answer that
cannot come. A deadline bounds such a wait from outside: when the time is up, a timer thread
shuts the connection's socket down (both ways), and the pending call fails at once with
``OperationalError`` (SQLAlchemy's, wrapping psycopg's "server closed the connection
unexpectedly"), the connection broken — SQLAlchemy sees a disconnect and invalidates it, so the
pool never hands it out again. Whatever the transaction had not committed is rolled back by the
server when it sees the connection go.

Two ways to use it:

``deadline(conn, seconds)`` — a context manager around a block on one connection::

    with central.connect() as conn:
        with deadline(conn, 60) as d:
            ...  # every round trip in here must be over 60 s from now
        # d.fired: True if the deadline cut the connection (word the error as a stall)

``guard_engine(engine, seconds)`` — every round trip on the engine's connections (each
statement, commit, rollback, COPY chunk, and the pool's pre-ping; through SQLAlchemy or straight
to the driver) must end within ``seconds`` of its start: the read timeout psycopg lacks. This
also covers what a caller cannot put a ``deadline`` around: with ``pool_pre_ping=True``
(db.engine), ``engine.connect()`` pings a pooled connection first, and over a stalled network
that ping waits forever too — before the caller holds a ``Connection``.

SQLite connections (no socket) are left alone. One timer thread serves every deadline of the
process; it starts on demand and ends shortly after the last deadline is disarmed.
"""
from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

_LINGER_S = 0.2  # the timer thread's idle time before it ends


class Deadline:
    """One armed deadline on one socket; see ``deadline``. ``fired`` tells whether it cut it."""

    __slots__ = ("seconds", "due", "fired", "_sock", "_lock")

    def __init__(self, fd: int | None, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        self.seconds = seconds
        self.due = time.monotonic() + seconds
        self.fired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        if fd is not None:
            # Our own reference to the socket, taken now while the caller's connection is
            # certainly open: firing shuts down this socket, never whatever file a reused
            # descriptor number might name by then.
            dup = os.dup(fd)
            try:
                self._sock = socket.socket(fileno=dup)
            except OSError:
                os.close(dup)
                raise
            _timer.add(self)

    @property
    def armed(self) -> bool:
        return self._sock is not None

    def _fire(self) -> None:
        with self._lock:
            if self._sock is None:
                return  # disarmed first
            self.fired = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer or the driver: nothing left to cut

    def disarm(self) -> None:
        """Once this returns the socket is never touched again. Idempotent."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()  # the dup only: the driver's own descriptor stays as it is
            _timer.discard()


class _Timer:
    """One thread for every deadline of the process: a heap by due time; disarmed entries are
    dropped when they come up (or when they pile up)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._seq = itertools.count()
        self._live = 0
        self._thread: threading.Thread | None = None

    def add(self, item: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (item.due, next(self._seq), item))
            self._live += 1
            if len(self._heap) > 64 and len(self._heap) > 4 * self._live:
                self._heap = [entry for entry in self._heap if entry[2].armed]
                heapq.heapify(self._heap)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is item:
                self._cond.notify()

    def discard(self) -> None:
        with self._cond:
            self._live -= 1
            if self._live == 0:
                self._cond.notify()  # nothing left to watch: the thread may clear up and end

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and not self._heap[0][2].armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait(_LINGER_S)
                    if not any(entry[2].armed for entry in self._heap):
                        self._heap.clear()
                        self._thread = None
                        return
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                item = heapq.heappop(self._heap)[2]
            item._fire()  # outside the timer's lock: a disarm in progress holds the item's lock


_timer = _Timer()
# A forked child has no timer thread: it starts its own when it first needs one.
os.register_at_fork(after_in_child=_timer._reset)


def socket_fd(connection: Any) -> int | None:
    """The socket descriptor under a SQLAlchemy ``Connection``, a psycopg connection or cursor,
    or None (SQLite, a closed or invalidated connection)."""
    raw = connection
    if isinstance(connection, Connection):
        if connection.closed or connection.invalidated:
            return None
        raw = connection.connection.driver_connection
    if not hasattr(raw, "fileno") and hasattr(raw, "connection"):
        raw = raw.connection  # a cursor
    fileno = getattr(raw, "fileno", None)
    if fileno is None or getattr(raw, "closed", False):
        return None
    try:
        fd = int(fileno())
    except Exception:  # noqa: BLE001 - a driver that cannot name its socket gets no deadline
        return None
    return fd if fd >= 0 else None


@contextmanager
def deadline(connection: Any, seconds: float) -> Iterator[Deadline]:
    """Bound every round trip on ``connection`` (a SQLAlchemy ``Connection``, or a psycopg
    connection or cursor) made inside the block to end within ``seconds`` from now.

    When the time is up the socket is shut down: a call waiting on the network (for an answer,
    or to send) raises ``OperationalError`` at once, and so does any later call on the
    connection. Leaving the block disarms it: it never fires after ``__exit__`` has returned.
    The yielded ``Deadline`` tells afterwards whether it fired (``.fired``).
    Nothing happens for a connection without a socket (SQLite)."""
    armed = Deadline(socket_fd(connection), seconds)
    try:
        yield armed
    finally:
        armed.disarm()


def guard_engine(engine: Engine, seconds: float) -> None:
    """Every round trip on every connection of ``engine`` — each statement, commit, rollback,
    COPY chunk, and the pool's pre-ping, whether it goes through SQLAlchemy or straight to the
    driver — must end within ``seconds`` of its start, or its connection is cut as by
    ``deadline``: a read timeout, which psycopg lacks. A stalled network then fails a push within
    ``seconds`` (at checkout: ``seconds`` for the ping plus ``connect_timeout`` for the fresh
    connection the pool opens instead). Choose ``seconds`` well above the longest statement
    expected. Call it before the engine's first connection (a connection pooled before is
    guarded from its next checkout on, after that checkout's pre-ping). SQLite: nothing happens.
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    if engine.dialect.name != "postgresql":
        return

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        guard_connection(dbapi_connection, seconds)

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        guard_connection(dbapi_connection, seconds)

    # First in line, so that the dialect's own set-up queries on a new connection are guarded too.
    event.listen(engine, "first_connect", on_connect, insert=True)
    event.listen(engine, "connect", on_connect, insert=True)
    event.listen(engine, "checkout", on_checkout)


def guard_connection(dbapi_connection: Any, seconds: float) -> None:
    """``guard_engine`` for one psycopg connection. psycopg runs every network exchange of a
    connection (queries, COPY, commit, rollback) through its ``wait`` method; this puts each
    call of it under a ``deadline``. Guarding again replaces the earlier limit."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    cls_wait = getattr(type(dbapi_connection), "wait", None)
    if cls_wait is None:
        raise TypeError(f"{type(dbapi_connection).__name__} has no wait(): not a psycopg 3 connection")
    current = vars(dbapi_connection).get("wait")
    if current is not None and getattr(current, "watchdog_seconds", None) == seconds:
        return
    ref = weakref.ref(dbapi_connection)  # no cycle through the connection's own attribute

    def wait(gen: Any, *args: Any, **kwargs: Any) -> Any:
        conn = ref()
        assert conn is not None
        with deadline(conn, seconds):
            return cls_wait(conn, gen, *args, **kwargs)

    wait.watchdog_seconds = seconds  # type: ignore[attr-defined]
    dbapi_connection.wait = wait
