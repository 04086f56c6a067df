"""central keeps what it could not apply as meant (sync conflicts); approvals can be refused;
four eyes and the approver's role enforced by the database

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 09:00:00
"""
from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OPEN = "resolved_at IS NULL"

# Four eyes at the database: an approval that is not refused must come from an active supervisor
# or admin (confirmed where the row lives: not a copy first heard of from a station) who did not
# make the decision and did not receive any of its parcels. The services check
# the same first (with a message a person can act on); this holds even for a direct write.
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION approvals_four_eyes() RETURNS trigger AS $$
BEGIN
  IF NEW.refused_reason IS NOT NULL THEN
    RETURN NEW;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = NEW.supervisor_id AND u.active
                 AND u.role IN ('supervisor', 'admin') AND u.created_from_station IS NULL) THEN
    RAISE EXCEPTION 'approval %: user % may not approve (not an active supervisor)', NEW.id, NEW.supervisor_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'approvals_four_eyes';
  END IF;
  IF EXISTS (SELECT 1 FROM decisions d WHERE d.id = NEW.decision_id AND d.decided_by_id = NEW.supervisor_id)
     OR EXISTS (SELECT 1 FROM decision_lines l JOIN return_items i ON i.id = l.return_item_id
                JOIN parcel_receipts r ON r.id = i.receipt_id
                WHERE l.decision_id = NEW.decision_id AND r.user_id = NEW.supervisor_id) THEN
    RAISE EXCEPTION 'approval %: user % made or received this case and may not approve it', NEW.id, NEW.supervisor_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'approvals_four_eyes';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
"""
PG_TRIGGER = """
CREATE TRIGGER approvals_four_eyes BEFORE INSERT OR UPDATE ON approvals
FOR EACH ROW EXECUTE FUNCTION approvals_four_eyes()
"""

SQLITE_CONDITION = """
NEW.refused_reason IS NULL AND (
  NOT EXISTS (SELECT 1 FROM users u WHERE u.id = NEW.supervisor_id AND u.active
              AND u.role IN ('supervisor', 'admin') AND u.created_from_station IS NULL)
  OR EXISTS (SELECT 1 FROM decisions d WHERE d.id = NEW.decision_id AND d.decided_by_id = NEW.supervisor_id)
  OR EXISTS (SELECT 1 FROM decision_lines l JOIN return_items i ON i.id = l.return_item_id
             JOIN parcel_receipts r ON r.id = i.receipt_id
             WHERE l.decision_id = NEW.decision_id AND r.user_id = NEW.supervisor_id))
"""


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('created_from_station', sa.String(length=40), nullable=True))
    with op.batch_alter_table('approvals') as batch:
        batch.add_column(sa.Column('refused_reason', sa.Text(), nullable=True))
    op.create_table(
        'sync_conflicts',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('decision_id', sa.Uuid(), nullable=False),
        sa.Column('return_item_id', sa.Integer(), nullable=True),
        sa.Column('other_decision_id', sa.Uuid(), nullable=True),
        sa.Column('approval_id', sa.Uuid(), nullable=True),
        sa.Column('station_id', sa.String(length=40), nullable=False),
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('detected_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('resolved_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('item_already_decided', 'approval_refused')",
                           name=op.f('ck_sync_conflicts_kind')),
        sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], name=op.f('fk_sync_conflicts_decision_id_decisions')),
        sa.ForeignKeyConstraint(['return_item_id'], ['return_items.id'],
                                name=op.f('fk_sync_conflicts_return_item_id_return_items')),
        sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_sync_conflicts_resolved_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_conflicts')),
    )
    op.create_index('ix_sync_conflicts_decision_id', 'sync_conflicts', ['decision_id'])
    op.create_index('ix_sync_conflicts_open', 'sync_conflicts', ['detected_at'],
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        for when in ('INSERT', 'UPDATE'):
            op.execute(f"CREATE TRIGGER approvals_four_eyes_{when.lower()} BEFORE {when} ON approvals "
                       f"WHEN {SQLITE_CONDITION} BEGIN "
                       "SELECT RAISE(ABORT, 'approvals_four_eyes: this user may not approve this case'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS approvals_four_eyes ON approvals")
        op.execute("DROP FUNCTION IF EXISTS approvals_four_eyes()")
    else:
        for when in ('insert', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS approvals_four_eyes_{when}")
    op.drop_index('ix_sync_conflicts_open', table_name='sync_conflicts')
    op.drop_index('ix_sync_conflicts_decision_id', table_name='sync_conflicts')
    op.drop_table('sync_conflicts')
    with op.batch_alter_table('approvals', recreate=_recreate()) as batch:
        batch.drop_column('refused_reason')
    with op.batch_alter_table('users', recreate=_recreate()) as batch:
        batch.drop_column('created_from_station')


def _recreate() -> Literal['auto', 'never']:
    """As in 0004: drop columns in place (SQLite 3.35+); recreating users would break every
    foreign key that refers to it."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite' or (bind.dialect.server_version_info or (0,)) >= (3, 35):
        return 'never'
    return 'auto'
