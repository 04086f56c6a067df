"""A driver error said as the sentence a person acts on (central unreachable, busy, refused)."""
from __future__ import annotations

from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError

from console.errors import EnvironmentProblem, first_line

_MAX_ERROR_CHARS = 1000


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own error behind SQLAlchemy's wrapper (what the server said), else ``exc``."""
    return exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc


def _reason(exc: BaseException) -> str:
    source = _driver_error(exc)
    text = " ".join(f"{type(source).__name__}: {source}".split())
    return text[:_MAX_ERROR_CHARS]


def unreachable(central: Engine, exc: BaseException, *, lost: bool = False) -> EnvironmentProblem:
    url = central.url
    where = URL.create(url.drivername, url.username, None, url.host, url.port, url.database,
                       url.query).render_as_string(hide_password=False)
    if _busy(exc):
        # The server answered, it just could not do it now (a lock, a deadlock, a timeout, a full
        # disk or lock table): not the network's fault, and the next pass tries again.
        return EnvironmentProblem(f"central database at {where} could not take the push just now: "
                                  f"{first_line(exc)}{_hint(exc)}; decisions stay queued on this station "
                                  "and go out at the next try")
    what = "lost the connection" if lost else "is unreachable"
    return EnvironmentProblem(f"central database at {where} {what}: {first_line(exc)}; decisions stay "
                              "queued on this station — check the network or --central URL")


def _hint(exc: BaseException) -> str:
    """The server's own hint, for its administrator (a full lock table names the setting)."""
    source = _driver_error(exc)
    diag = getattr(source, "diag", None)
    hint = getattr(diag, "message_hint", None)
    return f" (the server's hint: {hint.rstrip('.')})" if hint else ""


def _busy(exc: BaseException) -> bool:
    import psycopg.errors as pg

    source = _driver_error(exc)
    if isinstance(source, pg.OutOfMemory):
        # "Out of shared memory": the server's lock table is full (a push locks each order line it
        # refunds, and many stations catching up at once add up), not the backend's own memory.
        return "out of shared memory" in str(source)
    return isinstance(source, (pg.LockNotAvailable, pg.QueryCanceled, pg.DeadlockDetected,
                               pg.SerializationFailure, pg.DiskFull, pg.TooManyConnections))
