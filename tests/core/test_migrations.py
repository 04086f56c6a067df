"""The schema is created by Alembic, and can go down and up again, on both backends."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from db.engine import make_engine
from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import Base


def _roundtrip(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        downgrade(engine)
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_sqlite(tmp_path: Path) -> None:
    _roundtrip(str(tmp_path / "m.sqlite3"))


@pytest.mark.postgres
def test_upgrade_downgrade_upgrade_on_postgresql(pg_url: str) -> None:
    _roundtrip(pg_url)


# SQLAlchemy cannot reflect an index on an expression (lower(address)) and says so; Alembic then
# leaves that index out of the comparison. tests/core/test_risk.py checks that it exists and is used.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_match_the_models(tmp_path: Path) -> None:
    """Autogenerate against a migrated database finds nothing: the migration is complete."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(str(tmp_path / "c.sqlite3"))
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def _0004_keeps_rows(url: str) -> None:
    """0004 adds columns to tables that already hold a station's parcels, and takes them away again."""
    engine = make_engine(url)
    receipt, scan = uuid.uuid4().hex, uuid.uuid4().hex
    at = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)

    def columns(table: str) -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns(table)}

    try:
        upgrade(engine, "0003")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO stations (id, name, site, time_zone, created_at) "
                              "VALUES ('S1', 'Bench', 'WH1', 'UTC', :at)"), {"at": at})
            conn.execute(text("INSERT INTO users (id, username, display_name, role, password_hash, "
                              "failed_attempts, active, created_at) VALUES (1, 'aiko', 'Aiko', 'clerk', 'x', 0, "
                              "true, :at)"), {"at": at})
            conn.execute(text("INSERT INTO parcel_receipts (id, station_id, user_id, received_at, scanned_code) "
                              "VALUES (:id, 'S1', 1, :at, 'R-0000001X')"), {"id": receipt, "at": at})
            conn.execute(text("INSERT INTO item_scans (id, receipt_id, code, result, scanned_at) "
                              "VALUES (:id, :receipt, 'AP-1', 'not_on_order', :at)"),
                         {"id": scan, "receipt": receipt, "at": at})
        upgrade(engine)
        assert {"photos", "quarantined_at", "identified_at"} <= columns("parcel_receipts")
        assert "undone_at" in columns("item_scans") and "undone_at" in columns("inspections")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT scanned_code, photos, quarantined_at FROM parcel_receipts")).all() == [
                ("R-0000001X", None, None)]
            assert conn.execute(text("SELECT code, undone_at FROM item_scans")).all() == [("AP-1", None)]
            conn.execute(text("UPDATE item_scans SET undone_at = :at"), {"at": at})
            conn.execute(text("UPDATE parcel_receipts SET quarantined_at = :at"), {"at": at})
        downgrade(engine, "0003")
        assert not {"photos", "quarantined_at", "identified_at"} & columns("parcel_receipts")
        assert "undone_at" not in columns("item_scans") | columns("inspections")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT scanned_code FROM parcel_receipts")).all() == [("R-0000001X",)]
            assert conn.execute(text("SELECT code, result FROM item_scans")).all() == [("AP-1", "not_on_order")]
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_0004_keeps_rows_up_and_down_on_sqlite(tmp_path: Path) -> None:
    _0004_keeps_rows(str(tmp_path / "r.sqlite3"))


@pytest.mark.postgres
def test_0004_keeps_rows_up_and_down_on_postgresql(pg_url: str) -> None:
    _0004_keeps_rows(pg_url)
