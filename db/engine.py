"""Engines for the station's SQLite file and for central (SQLite file or PostgreSQL)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from console.errors import EnvironmentProblem

# A dead network must fail a connection attempt fast rather than hang a sync worker.
PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,
    "application_name": "returns-console",
}


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{Path(path)}"


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and file paths the way people type them."""
    if "://" not in url:
        return sqlite_url(url)
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, must_exist: bool = False, echo: bool = False) -> Engine:
    """Engine with the settings every store of decisions needs.

    SQLite: WAL so the GUI can read while the sync worker writes, foreign keys enforced, and
    ``synchronous=FULL`` so a committed decision survives a power cut at the bench.
    PostgreSQL: pre-ping to drop dead pooled connections, connect timeout and keepalives.
    """
    try:
        parsed = make_url(normalize_url(url))
    except (ArgumentError, ValueError) as exc:
        raise EnvironmentProblem(f"database URL {url!r} is not valid: {exc}. "
                                 "Use a file path or postgresql://user@host:port/dbname.") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database or ""
        if db and db != ":memory:":
            path = Path(db)
            if must_exist and not path.exists():
                raise EnvironmentProblem(f"database file {path} does not exist; run `returns-console demo` "
                                         "to create demo data, or check --station / RETURNS_STATION_DB.")
            if not path.parent.exists():
                if must_exist:
                    raise EnvironmentProblem(f"folder {path.parent} does not exist")
                path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        # The URL's own settings (e.g. ?connect_timeout=2 for a test or a slow link) win.
        connect_args = {k: v for k, v in PG_CONNECT_ARGS.items() if k not in parsed.query}
        return create_engine(parsed, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5,
                             connect_args=connect_args)
    raise EnvironmentProblem(f"unsupported database {backend!r} in {url!r}: use SQLite or PostgreSQL")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (SQLAlchemy's
        # documented recipe); otherwise SAVEPOINTs and read consistency break.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A reader connection in AUTOCOMMIT (the scan lookup's) must not hold a snapshot open.
        options = conn.get_execution_options()
        if options.get("isolation_level") != "AUTOCOMMIT":
            # sqlite_begin="immediate" (Station's units of work): take the write lock at BEGIN. In
            # WAL mode a transaction that read first and writes later fails at once, without
            # waiting (SQLITE_BUSY_SNAPSHOT), when another connection committed in between.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sqlite_begin") == "immediate" else "BEGIN")
