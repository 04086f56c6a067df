"""Engines carry the settings decisions depend on, and refuse bad locations clearly."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from console.errors import EnvironmentProblem
from db.engine import PG_CONNECT_ARGS, make_engine, normalize_url


def test_sqlite_runs_wal_with_foreign_keys_and_full_sync(tmp_path: Path) -> None:
    engine = make_engine(str(tmp_path / "s.sqlite3"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    finally:
        engine.dispose()


def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    from sqlalchemy.exc import IntegrityError

    from db.migrate import upgrade

    engine = make_engine(str(tmp_path / "fk.sqlite3"))
    upgrade(engine)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("INSERT INTO orders (number, customer_id, channel, currency, placed_at, "
                              "order_discount_minor, shipping_minor, shipping_tax_minor) "
                              "VALUES ('SO-1', 999, 'web', 'USD', '2026-01-01', 0, 0, 0)"))
    finally:
        engine.dispose()


def test_missing_station_file_and_bad_urls_are_environment_problems(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="does not exist"):
        make_engine(str(tmp_path / "nope.sqlite3"), must_exist=True)
    with pytest.raises(EnvironmentProblem, match="unsupported database"):
        make_engine("mysql://root@localhost/x")
    with pytest.raises(EnvironmentProblem, match="not valid"):
        make_engine("postgresql://:::/")
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"


@pytest.mark.postgres
def test_postgresql_engine_pre_pings_with_timeouts_and_keepalives(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
        assert {"connect_timeout", "keepalives", "keepalives_idle", "tcp_user_timeout"} <= set(PG_CONNECT_ARGS)
        with engine.connect() as conn:
            assert conn.execute(text("SHOW application_name")).scalar() == "returns-console"
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
