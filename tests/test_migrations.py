"""The schema is created by Alembic, and can go down and up again, on both backends."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

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
