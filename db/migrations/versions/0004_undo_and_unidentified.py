"""steps taken back at the bench stay, marked undone; unidentified parcels wait in quarantine;
today's parcels at a station are found by index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00
"""
from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

UNIDENTIFIED = "quarantined_at IS NOT NULL AND identified_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('item_scans') as batch:
        batch.add_column(sa.Column('undone_at', UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('inspections') as batch:
        batch.add_column(sa.Column('undone_at', UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('parcel_receipts') as batch:
        batch.add_column(sa.Column('photos', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('quarantined_at', UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('identified_at', UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_parcel_receipts_unidentified', 'parcel_receipts', ['received_at'],
                    sqlite_where=sa.text(UNIDENTIFIED), postgresql_where=sa.text(UNIDENTIFIED))
    op.create_index('ix_parcel_receipts_station_received', 'parcel_receipts', ['station_id', 'received_at'])


def _recreate() -> Literal['auto', 'never']:
    """SQLite 3.35+ drops a plain column in place. Recreating the table instead (batch mode's
    way) fails on a station that holds parcels: item scans, return items and receipt links refer
    to parcel_receipts, foreign keys are enforced, and they cannot be switched off inside the
    migration's transaction."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite' or (bind.dialect.server_version_info or (0,)) >= (3, 35):
        return 'never'
    return 'auto'


def downgrade() -> None:
    op.drop_index('ix_parcel_receipts_station_received', table_name='parcel_receipts')
    op.drop_index('ix_parcel_receipts_unidentified', table_name='parcel_receipts')
    with op.batch_alter_table('parcel_receipts', recreate=_recreate()) as batch:
        batch.drop_column('identified_at')
        batch.drop_column('quarantined_at')
        batch.drop_column('photos')
    with op.batch_alter_table('inspections', recreate=_recreate()) as batch:
        batch.drop_column('undone_at')
    with op.batch_alter_table('item_scans', recreate=_recreate()) as batch:
        batch.drop_column('undone_at')
