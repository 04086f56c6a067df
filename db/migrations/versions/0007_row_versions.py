"""RMAs and return items remember when a station last changed them, so central never lets an
older copy overwrite a newer one

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 15:00:00
"""
from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TABLES = ('return_authorizations', 'return_items')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('updated_at', UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, recreate=_recreate()) as batch:
            batch.drop_column('updated_at')


def _recreate() -> Literal['auto', 'never']:
    """As in 0004: drop columns in place (SQLite 3.35+); recreating these tables would break the
    foreign keys that refer to them."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite' or (bind.dialect.server_version_info or (0,)) >= (3, 35):
        return 'never'
    return 'auto'
