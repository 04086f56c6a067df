"""Shared fixtures: real SQLite files in tmp_path and the real PostgreSQL server.

Each test run works in its own PostgreSQL schemas (``rc_<pid>_<random>_...``) so that runs on
one server never collide; they are dropped at the end.
"""
from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from sqlalchemy.engine import Engine

# No screen on CI or a server: render Qt offscreen unless the caller chose a platform.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PG_URL = os.environ.get("RETURNS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
RUN_TAG = f"rc_{os.getpid()}_{secrets.token_hex(3)}"

_pg_problem: str | None = None
_schemas: list[str] = []


def _probe_pg() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def pytest_configure(config: pytest.Config) -> None:
    global _pg_problem
    _pg_problem = _probe_pg()


def pytest_report_header(config: pytest.Config) -> str:
    if _pg_problem is None:
        return f"postgresql: {PG_URL} (schemas {RUN_TAG}_*)"
    verdict = "FAILING (CI=true)" if IN_CI else "SKIPPING"
    return f"!!! postgresql at {PG_URL} unreachable ({_pg_problem}): {verdict} the PostgreSQL tests !!!"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _pg_problem is None and _schemas:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in _schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def url_with_schema(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def new_pg_schema(label: str) -> str:
    """A fresh, empty schema for this run; returns a URL whose search_path points at it."""
    if _pg_problem is not None:
        message = f"PostgreSQL at {PG_URL} is not reachable: {_pg_problem}"
        if IN_CI:
            pytest.fail(message + " (CI must run the PostgreSQL tests)")
        pytest.skip(message)
    schema = f"{RUN_TAG}_{label}_{len(_schemas)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    _schemas.append(schema)
    return url_with_schema(PG_URL, schema)


@pytest.fixture
def pg_url() -> str:
    return new_pg_schema("t")


@pytest.fixture
def pg_central(pg_url: str) -> Iterator[Engine]:
    """A central database on the real PostgreSQL server, in a schema of its own, at this
    console's schema revision."""
    from db.engine import make_engine
    from db.push import ensure_central_schema

    engine = make_engine(pg_url)
    ensure_central_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def station_path(tmp_path: Path) -> Path:
    return tmp_path / "station.sqlite3"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads or writes the developer's real data or config folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RETURNS_CONSOLE_HOME", str(home))
    monkeypatch.delenv("RETURNS_CENTRAL_URL", raising=False)
    yield


@pytest.fixture(autouse=True)
def _no_logged_errors(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """An error logged while a test runs fails it, unless the test says it expects one
    (``@pytest.mark.logs_errors``): a bug that only logs (a worker's job, a device thread)
    must not pass unseen."""
    yield
    if request.node.get_closest_marker("logs_errors") is not None:
        return
    errors = [r for when in ("setup", "call") for r in caplog.get_records(when) if r.levelno >= logging.ERROR]
    if errors:
        shown = "\n".join(f"{r.name}: {r.getMessage()}"[:500] for r in errors[:5])
        pytest.fail(f"{len(errors)} error(s) logged during the test (mark it logs_errors if it expects them):\n"
                    f"{shown}", pytrace=False)
