"""The order-line locks a push takes before it counts refunds (against the real PostgreSQL): any
two pushes refunding one line take turns, pushes of different lines mostly do not, and a push
of thousands of lines takes a bounded number of the server's lock slots."""
from __future__ import annotations

from collections.abc import Iterator

import psycopg.errors
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from db.sync import _LINE_LOCKS_AT_MOST, _LINE_SHARES, _lock_order_lines

pytestmark = pytest.mark.postgres

MANY = range(1, 3501)  # a batch of 3,500 decisions, each refunding its own order line


def lock(conn: Connection, lines: Iterator[int] | range | list[int]) -> None:
    """Lock as a push refunding one item of each line does (item id = line id here)."""
    lines = list(lines)
    _lock_order_lines(conn, set(lines), [{"id": line, "order_line_id": line} for line in lines])


@pytest.fixture
def holder(pg_central: Engine) -> Iterator[Connection]:
    with pg_central.connect() as conn:
        conn.begin()
        yield conn
        conn.rollback()


def waits(pg_central: Engine, lines: Iterator[int] | range | list[int]) -> bool:
    """Whether a second push refunding these lines has to wait for the holder."""
    with pg_central.connect() as conn:
        conn.begin()
        conn.execute(text("SET LOCAL lock_timeout = '200ms'"))
        try:
            lock(conn, lines)
        except OperationalError as exc:
            assert isinstance(exc.orig, psycopg.errors.LockNotAvailable), exc
            return True
        finally:
            conn.rollback()
    return False


def advisory_locks(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                 "AND pid = pg_backend_pid()")).scalar_one())


def test_two_pushes_of_a_few_lines_wait_only_for_a_line_in_common(pg_central: Engine, holder: Connection) -> None:
    lock(holder, [7, 12])
    assert waits(pg_central, [12])
    assert waits(pg_central, [3, 7])
    assert not waits(pg_central, [8])
    assert not waits(pg_central, [7 + _LINE_SHARES])  # another line of the same share


def test_a_push_of_many_lines_and_one_of_a_few_meet_on_a_line_in_common(pg_central: Engine,
                                                                        holder: Connection) -> None:
    lock(holder, range(1, 101))  # shares 1-100
    assert waits(pg_central, [50])
    assert waits(pg_central, range(90, 200))
    assert not waits(pg_central, [_LINE_SHARES])  # share 0, which the many lines do not reach
    # Many lines again, none of their shares in common with the holder's.
    others = [share + k * _LINE_SHARES for share in (0, *range(101, _LINE_SHARES)) for k in (1, 2, 3)]
    assert len(others) > _LINE_LOCKS_AT_MOST
    assert not waits(pg_central, others)


def test_a_push_of_a_few_lines_holds_off_one_of_many_that_includes_them(pg_central: Engine,
                                                                       holder: Connection) -> None:
    lock(holder, [5 * _LINE_SHARES - 1])  # the last share
    assert waits(pg_central, MANY)
    assert not waits(pg_central, range(1, 101))


def test_a_push_of_thousands_of_lines_takes_a_bounded_number_of_lock_slots(holder: Connection) -> None:
    lock(holder, MANY)
    assert advisory_locks(holder) == _LINE_SHARES  # not 3,500


def test_a_push_of_a_few_lines_locks_each_line_and_its_share(holder: Connection) -> None:
    lines = list(range(1, _LINE_LOCKS_AT_MOST + 1))
    lock(holder, lines)
    assert advisory_locks(holder) == 2 * len(lines)
