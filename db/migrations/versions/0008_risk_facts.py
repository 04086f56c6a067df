"""risk engine facts: payment tokens, how an in-store order was found, what policy proposed, the
facts behind every assessment; indexes for the history counts; review evidence in the change feed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 23:00:00
"""
from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Evidence a supervisor at any station reads in the case view, now pulled by stations too (the
# tables of 0006 keep their stamps). Kept here as it was at this revision; db.pull holds the list.
FEED_TABLES = (("item_scans", "id"), ("inspections", "id"), ("risk_assessments", "id"), ("deductions", "id"),
               ("claims", "id"))


# Four eyes on claims, as 0005 on approvals: whoever made a claim can never settle it, whatever
# the path (the service checks first, with a message; this holds for a direct write too).
PG_CLAIMS = """
CREATE OR REPLACE FUNCTION claims_four_eyes() RETURNS trigger AS $$
BEGIN
  IF NEW.settled_by_id IS NOT NULL AND NEW.settled_by_id = NEW.created_by_id THEN
    RAISE EXCEPTION 'claim %: user % made this claim and may not settle it', NEW.id, NEW.settled_by_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'claims_four_eyes';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
"""
SQLITE_CLAIMS = "NEW.settled_by_id IS NOT NULL AND NEW.settled_by_id = NEW.created_by_id"


# At a station: a refund at or above the policy's always-review amount cannot be written as
# approved — only as waiting for review — whatever writes it (the decide service checks first).
# The amounts come from the policy the station runs (console.station writes review_limits).
SQLITE_REVIEW_LIMIT = """
CREATE TRIGGER decisions_review_limit BEFORE INSERT ON decisions
WHEN NEW.status = 'approved' AND NEW.kind IN ('full_refund', 'partial_refund', 'store_credit')
 AND EXISTS (SELECT 1 FROM review_limits l WHERE l.station_id = NEW.station_id AND l.currency = NEW.currency
             AND NEW.amount_minor >= l.amount_minor)
BEGIN SELECT RAISE(ABORT, 'decisions_review_limit: a refund this large needs a supervisor''s review'); END
"""


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        # The payment processor's token for the card or wallet: never a card number.
        batch.add_column(sa.Column('payment_token', sa.String(length=64), nullable=True))
    op.create_index('ix_orders_payment_token', 'orders', ['payment_token'])
    # One delivery address behind several accounts; case does not make an address different.
    op.create_index('ix_customers_address_lower', 'customers', [sa.text('lower(address)')])
    with op.batch_alter_table('return_authorizations') as batch:
        batch.add_column(sa.Column('order_found_by', sa.String(length=20), nullable=True))
    with op.batch_alter_table('decisions') as batch:
        batch.add_column(sa.Column('policy_kind', sa.String(length=20), nullable=True))
    op.create_index('ix_decisions_decided_by_at', 'decisions', ['decided_by_id', 'decided_at'])
    with op.batch_alter_table('risk_assessments') as batch:
        batch.add_column(sa.Column('decision_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('outcome', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('policy_version', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('facts', sa.JSON(), nullable=True))
    op.create_index('ix_risk_assessments_decision_id', 'risk_assessments', ['decision_id'])
    op.create_index('ix_claims_created_at', 'claims', ['created_at'])
    with op.batch_alter_table('claims') as batch:
        batch.add_column(sa.Column('settled_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('settled_at', UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('review_note', sa.Text(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_CLAIMS)
        op.execute("CREATE TRIGGER claims_four_eyes BEFORE INSERT OR UPDATE ON claims "
                   "FOR EACH ROW EXECUTE FUNCTION claims_four_eyes()")
    else:
        for when in ('INSERT', 'UPDATE'):
            op.execute(f"CREATE TRIGGER claims_four_eyes_{when.lower()} BEFORE {when} ON claims "
                       f"WHEN {SQLITE_CLAIMS} BEGIN "
                       "SELECT RAISE(ABORT, 'claims_four_eyes: whoever made a claim may not settle it'); END")
    # The last event of a kind in a station's chain (the policy in force at start-up).
    op.create_index('ix_audit_events_station_action_seq', 'audit_events', ['station_id', 'action', 'seq'])
    op.create_table(
        'risk_baselines',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('numerator', sa.BigInteger(), nullable=False),
        sa.Column('denominator', sa.BigInteger(), nullable=False),
        sa.Column('computed_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_risk_baselines')),
    )
    op.create_table(
        'review_limits',
        sa.Column('station_id', sa.String(length=40), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('policy_version', sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint('station_id', 'currency', name=op.f('pk_review_limits')),
    )
    if op.get_bind().dialect.name != 'postgresql':
        op.execute(SQLITE_REVIEW_LIMIT)
        return
    for table, key in FEED_TABLES:
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
    if op.get_bind().dialect.name != 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS decisions_review_limit")
    op.drop_table('review_limits')
    op.drop_table('risk_baselines')
    op.drop_index('ix_audit_events_station_action_seq', table_name='audit_events')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS claims_four_eyes ON claims")
        op.execute("DROP FUNCTION IF EXISTS claims_four_eyes()")
    else:
        for when in ('insert', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS claims_four_eyes_{when}")
    with op.batch_alter_table('claims', recreate=_recreate()) as batch:
        for column in ('review_note', 'settled_at', 'settled_by_id'):
            batch.drop_column(column)
    op.drop_index('ix_claims_created_at', table_name='claims')
    op.drop_index('ix_risk_assessments_decision_id', table_name='risk_assessments')
    with op.batch_alter_table('risk_assessments', recreate=_recreate()) as batch:
        for column in ('facts', 'policy_version', 'outcome', 'decision_id'):
            batch.drop_column(column)
    op.drop_index('ix_decisions_decided_by_at', table_name='decisions')
    with op.batch_alter_table('decisions', recreate=_recreate()) as batch:
        batch.drop_column('policy_kind')
    with op.batch_alter_table('return_authorizations', recreate=_recreate()) as batch:
        batch.drop_column('order_found_by')
    op.drop_index('ix_customers_address_lower', table_name='customers')
    op.drop_index('ix_orders_payment_token', table_name='orders')
    with op.batch_alter_table('orders', recreate=_recreate()) as batch:
        batch.drop_column('payment_token')


def _recreate() -> Literal['auto', 'never']:
    """As in 0004: drop columns in place (SQLite 3.35+); recreating these tables would break the
    foreign keys that refer to them."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite' or (bind.dialect.server_version_info or (0,)) >= (3, 35):
        return 'never'
    return 'auto'
