"""central's change feed: every pulled table stamped with the id of the transaction that last
wrote each row (PostgreSQL); the station's pull cursors and rows to fetch again

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 12:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# What stations pull, with each table's key. Kept here as it was at this revision; db.pull holds
# the list the code uses and a test checks the two agree.
FEED_TABLES = (
    ("stations", "id"), ("users", "id"), ("customers", "id"), ("orders", "id"), ("order_lines", "id"),
    ("shipments", "id"), ("return_authorizations", "id"), ("parcel_receipts", "id"), ("return_items", "id"),
    ("policy_versions", "version"), ("decisions", "id"), ("decision_lines", "decision_id, return_item_id"),
    ("approvals", "id"), ("sync_conflicts", "id"),
)

# An update that changes nothing a station reads (a station re-sending a row as it was, central's
# own record of when it last heard from a station) keeps the row's stamp: stations need not pull
# it again.
STAMP = """
CREATE OR REPLACE FUNCTION stamp_change_xid() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - 'change_xid' - 'last_synced_at')
                          = (to_jsonb(OLD) - 'change_xid' - 'last_synced_at') THEN
    NEW.change_xid := OLD.change_xid;
  ELSE
    NEW.change_xid := pg_current_xact_id();
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        'sync_refetch',
        sa.Column('table_name', sa.String(length=60), nullable=False),
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint('table_name', 'key', name=op.f('pk_sync_refetch')),
    )
    op.create_table(
        'sync_cursors',
        sa.Column('table_name', sa.String(length=60), nullable=False),
        sa.Column('xid', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('pulled_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('table_name', name=op.f('pk_sync_cursors')),
    )
    if op.get_bind().dialect.name != 'postgresql':
        return  # a station (or a demo's SQLite central) has no feed to serve
    op.execute(STAMP)
    for table, key in FEED_TABLES:
        # xid8: 64-bit, never wraps. Rows already there count as written by this migration.
        op.execute(f"ALTER TABLE {table} ADD COLUMN change_xid xid8")
        op.execute(f"UPDATE {table} SET change_xid = pg_current_xact_id()")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN change_xid SET NOT NULL")
        op.execute(f"CREATE INDEX ix_{table}_change ON {table} (change_xid, {key})")
        op.execute(f"CREATE TRIGGER {table}_change_xid BEFORE INSERT OR UPDATE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION stamp_change_xid()")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, _ in FEED_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_change_xid ON {table}")
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_change")
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS change_xid")
        op.execute("DROP FUNCTION IF EXISTS stamp_change_xid()")
    op.drop_table('sync_cursors')
    op.drop_table('sync_refetch')
