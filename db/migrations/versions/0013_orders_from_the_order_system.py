"""orders central did not have from the order system: a station's copy is marked as its word, and a
decision refunding against it waits for a supervisor at central

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# An order (or a line of one) reaches central from a station only where central lacked it (a
# copy that fills a gap, db.push): central keeps it as that station's word. Central's own sessions
# (the order system's import) write what they write.
RC_STAMP_FROM_STATION = """
CREATE OR REPLACE FUNCTION rc_stamp_from_station() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station();
BEGIN
  IF me IS NOT NULL THEN
    NEW.from_station := me;
  END IF;
  RETURN NEW;
END $$
"""

# What a refund is checked against (0012) is only as good as the order: a station that made an
# order up (or a line of a real one, or its price) would have its caps too. A decision approved at
# the bench against an order or order line that is a station's copy waits for a supervisor at
# central, with the reason; the station learns so with the next pull. Deferred with 0012's check
# of a decision's sums, on the same row of rc_sums_due (db.push asks both after each event).
RC_STATION_ORDERS = """
CREATE OR REPLACE FUNCTION rc_station_orders() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  UPDATE decisions d SET status = 'pending_review',
         review_reasons = (COALESCE(d.review_reasons, '[]'::json)::jsonb || to_jsonb(h.why))::json
    FROM (SELECT x.id, CASE
            WHEN o.from_station IS NOT NULL THEN
              format('held at central: order %s is station %s''s copy, not one the order system sent central: '
                     'check it against the order before approving', o.number, o.from_station)
            ELSE
              -- Any line of the order, not only the decision's own: a made-up line also shifts the
              -- real lines' share of an order discount (0012's caps).
              (SELECT format('held at central: line %s of order %s is station %s''s copy, not one the order system '
                             'sent central: check it against the order before approving', ol.line_no, o.number,
                             ol.from_station)
                 FROM order_lines ol WHERE ol.order_id = o.id AND ol.from_station IS NOT NULL
                 ORDER BY ol.line_no LIMIT 1)
          END AS why
          FROM decisions x JOIN orders o ON o.id = x.order_id
          -- A case waiting for review gets the reason too (for its supervisor); one an accepted
          -- approval in the same push settled stays settled.
          WHERE x.id = ANY(NEW.decisions) AND x.status IN ('approved', 'pending_review')
            AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.decision_id = x.id AND a.refused_reason IS NULL)) AS h
    WHERE d.id = h.id AND h.why IS NOT NULL;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    for table in ('orders', 'order_lines'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('from_station', sa.String(length=40), nullable=True))
    if op.get_bind().dialect.name != 'postgresql':
        return
    from importlib import import_module

    pinned = import_module("db.migrations.versions.0009_central_authority").pinned
    op.execute(pinned(RC_STAMP_FROM_STATION))
    op.execute(pinned(RC_STATION_ORDERS))
    for table in ('orders', 'order_lines'):
        op.execute(f"CREATE TRIGGER {table}_from_station BEFORE INSERT ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION rc_stamp_from_station()")
    # Named to fire after rc_decision_sums (constraint triggers fire in name order): sums first.
    op.execute("CREATE CONSTRAINT TRIGGER rc_station_orders AFTER INSERT ON rc_sums_due DEFERRABLE INITIALLY DEFERRED "
               "FOR EACH ROW EXECUTE FUNCTION rc_station_orders()")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS rc_station_orders ON rc_sums_due")
        for table in ('orders', 'order_lines'):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_from_station ON {table}")
        op.execute("DROP FUNCTION IF EXISTS rc_station_orders()")
        op.execute("DROP FUNCTION IF EXISTS rc_stamp_from_station()")
    old_sqlite = bind.dialect.name == 'sqlite' and (bind.dialect.server_version_info or (0,)) < (3, 35)
    for table in ('order_lines', 'orders'):
        with op.batch_alter_table(table, recreate='auto' if old_sqlite else 'never') as batch:
            batch.drop_column('from_station')
