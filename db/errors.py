"""A database driver's error said as the sentence a person acts on.

Opening a station file, reaching central, importing orders or pushing: each failure of the
database itself (not of the console's own code) becomes an ``EnvironmentProblem`` that names the
database, says what the server said in one line, and what to do.
"""
from __future__ import annotations

from sqlalchemy.exc import DataError, IntegrityError, NotSupportedError, ProgrammingError

from console.errors import EnvironmentProblem, first_line

CHECK_CONNECTION = "check the path or URL and that the server is running"


def translate(exc: BaseException, what: str, *, failing: str = "cannot be used",
              then: str = CHECK_CONNECTION) -> EnvironmentProblem:
    """``what``: the database as a person knows it ("station database /var/lib/…/station.sqlite3",
    "central database at postgresql://…"); ``failing``: what went wrong with it ("is unreachable");
    ``then``: what to do about it ("" when the line says enough). A statement the server refused
    (a constraint, a privilege, a bad value: not a connection or a file that failed) says so
    instead."""
    if isinstance(exc, (IntegrityError, ProgrammingError, DataError, NotSupportedError)):
        return EnvironmentProblem(f"{what} refused the operation: {first_line(exc)}")
    return EnvironmentProblem(f"{what} {failing}: {first_line(exc)}" + (f"; {then}" if then else ""))
