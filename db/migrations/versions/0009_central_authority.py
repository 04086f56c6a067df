"""central decides: per-station credentials, the door stations write through (PostgreSQL), what an
approval settles, and what central refused from a station (audit rows that collide or claim
another station's chain)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 08:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The group role every station's own login role is a member of (db.central holds the name too). Central's code
# tells a station's session from an admin's by this membership, so a station role that is in no
# credential (the shared role of earlier versions) is refused, not trusted.
STATION_GROUP = "returns_station"

# Which station a session speaks for: its login role's credential ('' for a member of the
# station group without one: it may write nothing of any station's); NULL for central's own
# sessions (an admin, `central import-orders`), which are trusted. session_user, not
# current_user: inside central's own functions (SECURITY DEFINER) it is still the station.
RC_STATION = f"""
CREATE OR REPLACE FUNCTION rc_station() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
  SELECT COALESCE(
    (SELECT c.station_id FROM station_credentials c WHERE c.role_name = session_user::text),
    (SELECT '' FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
      WHERE g.rolname = '{STATION_GROUP}' AND u.rolname = session_user::text LIMIT 1))
$$
"""

# The door's own refusal: a session of the station group without a credential.
_NOBODY = """
  IF me = '' THEN
    RAISE EXCEPTION 'role % is no registered station: run `returns-console central station add` for it',
      session_user USING ERRCODE = 'insufficient_privilege';
  END IF;
"""

# Event ids claimed for the station itself; what was new comes back (a re-push claims nothing).
RC_CLAIM_EVENTS = f"""
CREATE OR REPLACE FUNCTION rc_claim_events(claims json) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station();
BEGIN
{_NOBODY}
  RETURN QUERY INSERT INTO applied_events (event_id, station_id, kind, applied_at)
    SELECT c.event_id, COALESCE(me, c.station_id), c.kind, now()
    FROM json_to_recordset(claims) AS c(event_id uuid, station_id text, kind text)
    ON CONFLICT (event_id) DO NOTHING RETURNING event_id::text;
END $$
"""

# A station's copy of a user central never heard of (the rows naming them must land): kept as
# that station's word, without credentials, unable to approve until an admin confirms them.
RC_FILL_USERS = f"""
CREATE OR REPLACE FUNCTION rc_fill_users(copies json) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station(); added integer;
BEGIN
{_NOBODY}
  INSERT INTO users (id, username, display_name, role, password_hash, badge_hash, failed_attempts, locked_until,
                     active, created_at, created_from_station)
    SELECT u.id, u.username, u.display_name, u.role, '!', NULL, 0, NULL, COALESCE(u.active, true),
           COALESCE(u.created_at, now()), COALESCE(me, u.created_from_station)
    FROM json_to_recordset(copies) AS u(id integer, username text, display_name text, role text, active boolean,
                                        created_at timestamptz, created_from_station text)
    ON CONFLICT (id) DO NOTHING;
  GET DIAGNOSTICS added = ROW_COUNT;
  RETURN added;
END $$
"""

# A station's admin disabled someone: central stops them everywhere if it knows that admin as
# an active admin it has confirmed. Disabling is all a station may do to a user.
RC_DISABLE_USER = f"""
CREATE OR REPLACE FUNCTION rc_disable_user(target integer, admin integer) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station();
BEGIN
{_NOBODY}
  UPDATE users SET active = false WHERE id = target AND EXISTS (
    SELECT 1 FROM users a WHERE a.id = admin AND a.active AND a.role = 'admin' AND a.created_from_station IS NULL);
  RETURN FOUND;
END $$
"""

# Every row a station inserts or updates must be its own: the station a row belongs to is
# TG_ARGV[0], an expression over the row `a`. Statement-level, over the transition tables, so a
# COPY of thousands of rows costs one query. Central's own sessions are not checked.
RC_OWN_ROWS = f"""
CREATE OR REPLACE FUNCTION rc_own_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station(); claimed text; found_row boolean;
BEGIN
  IF me IS NULL THEN
    RETURN NULL;
  END IF;
{_NOBODY}
  EXECUTE format('SELECT %s FROM added AS a WHERE (%s) IS DISTINCT FROM $1 LIMIT 1', TG_ARGV[0], TG_ARGV[0])
    INTO claimed USING me;
  GET DIAGNOSTICS found_row = ROW_COUNT;
  IF NOT found_row AND TG_OP = 'UPDATE' THEN
    EXECUTE format('SELECT %s FROM removed AS a WHERE (%s) IS DISTINCT FROM $1 LIMIT 1', TG_ARGV[0], TG_ARGV[0])
      INTO claimed USING me;
    GET DIAGNOSTICS found_row = ROW_COUNT;
  END IF;
  IF found_row THEN
    RAISE EXCEPTION 'station % may not write % of station %', me, TG_TABLE_NAME, COALESCE(claimed, '(none)')
      USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'rc_own_rows';
  END IF;
  RETURN NULL;
END $$
"""

# (table, the station a row belongs to, whether stations may update it)
OWNED = (
    ("stations", "a.id", True),
    ("parcel_receipts", "a.station_id", True),
    ("receipt_rmas", "(SELECT r.station_id FROM parcel_receipts r WHERE r.id = a.receipt_id)", True),
    ("item_scans", "(SELECT r.station_id FROM parcel_receipts r WHERE r.id = a.receipt_id)", True),
    ("inspections", "a.station_id", True),
    ("dispositions", "a.station_id", True),
    ("decisions", "a.station_id", False),
    ("decision_lines", "(SELECT d.station_id FROM decisions d WHERE d.id = a.decision_id)", False),
    ("deductions", "(SELECT d.station_id FROM decisions d WHERE d.id = a.decision_id)", False),
    ("sync_conflicts", "a.station_id", False),
)

# Audit rows: a station writes only its own chain; a row at a position central already holds
# with another hash (or under an id central holds for another row) is kept aside as a collision,
# never silently skipped; the same row again is a no-op. `audit verify --central` shows both.
AUDIT_DOOR = """
CREATE OR REPLACE FUNCTION audit_events_door() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station(); held record;
BEGIN
  IF me IS NOT NULL AND NEW.station_id IS DISTINCT FROM me THEN
    INSERT INTO station_refusals (id, kind, station_id, pushed_by, table_name, row_key, seq, sent, detected_at)
      VALUES (gen_random_uuid(), 'other_station', NEW.station_id, me, 'audit_events', NEW.id::text, NEW.seq,
              row_to_json(NEW), now());
    RETURN NULL;
  END IF;
  SELECT id, hash INTO held FROM audit_events WHERE station_id = NEW.station_id AND seq = NEW.seq;
  IF NOT FOUND THEN
    SELECT id, hash INTO held FROM audit_events WHERE id = NEW.id;
  END IF;
  IF FOUND THEN
    IF held.id = NEW.id AND held.hash = NEW.hash THEN
      RETURN NULL;
    END IF;
    INSERT INTO station_refusals (id, kind, station_id, pushed_by, table_name, row_key, seq, sent, detected_at)
      SELECT gen_random_uuid(), 'audit_collision', NEW.station_id, me, 'audit_events', NEW.id::text, NEW.seq,
             row_to_json(NEW), now()
      WHERE NOT EXISTS (SELECT 1 FROM station_refusals s WHERE s.kind = 'audit_collision'
                        AND s.row_key = NEW.id::text AND s.sent::text = row_to_json(NEW)::text);
    RETURN NULL;
  END IF;
  RETURN NEW;
END $$
"""

# Central's verdict on an approval, whoever wrote it: refused (with the reason, flagged for
# review) when central's own users say the approver may not settle the case, else it settles
# the case as the approval says (status, amounts), checked against what was paid. Stations have
# no UPDATE on decisions: this is the only way a case waiting for review is settled.
APPROVALS_CENTRAL = """
CREATE OR REPLACE FUNCTION approvals_central() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  me text := rc_station(); approver record; decision record; earlier record; who text; reason text;
  settles json := NEW.settles; item record; lines_total bigint := 0; line_count integer := 0;
  new_amount bigint; new_kind text; new_bonus bigint;
BEGIN
  IF NEW.refused_reason IS NOT NULL THEN
    RETURN NEW;  -- a record of a refusal (the pushing code flags it), not a verdict
  END IF;
  IF EXISTS (SELECT 1 FROM approvals a WHERE a.id = NEW.id) THEN
    RETURN NEW;  -- sent again: the row stands as it is (ON CONFLICT skips this one), nothing settled twice
  END IF;
  SELECT username, role, active, created_from_station INTO approver FROM users WHERE id = NEW.supervisor_id;
  who := COALESCE(approver.username, 'user ' || NEW.supervisor_id);
  SELECT * INTO decision FROM decisions WHERE id = NEW.decision_id FOR UPDATE;
  SELECT a.id, u.username INTO earlier FROM approvals a JOIN users u ON u.id = a.supervisor_id
    WHERE a.decision_id = NEW.decision_id AND a.refused_reason IS NULL AND a.id <> NEW.id LIMIT 1;
  IF approver.username IS NULL THEN
    reason := format('approval refused: %s is unknown at central, not an active supervisor', who);
  ELSIF approver.created_from_station IS NOT NULL THEN
    reason := format('approval refused: %s is known to central only from station %s''s copy; an admin must '
                     'confirm them first', who, approver.created_from_station);
  ELSIF NOT approver.active OR approver.role NOT IN ('supervisor', 'admin') THEN
    reason := format('approval refused: %s is %s, not an active supervisor', who,
                     CASE WHEN NOT approver.active THEN 'disabled at central' ELSE 'a ' || approver.role || ' at central' END);
  ELSIF decision.decided_by_id = NEW.supervisor_id THEN
    reason := format('approval refused: %s made this decision (four eyes)', who);
  ELSIF EXISTS (SELECT 1 FROM decision_lines l JOIN return_items i ON i.id = l.return_item_id
                JOIN parcel_receipts r ON r.id = i.receipt_id
                WHERE l.decision_id = NEW.decision_id AND r.user_id = NEW.supervisor_id) THEN
    reason := format('approval refused: %s received this parcel (four eyes)', who);
  ELSIF earlier.id IS NOT NULL THEN
    reason := format('approval refused: %s had already settled this case (approval %s); %s''s verdict reached '
                     'central later', earlier.username, earlier.id, who);
  ELSIF decision.status <> 'pending_review' AND me IS NOT NULL THEN
    -- (Central's own sessions settle a case themselves first: the review service run there.)
    reason := format('approval refused: the case is %s at central, not waiting for review', decision.status);
  END IF;
  IF reason IS NULL AND NEW.verdict <> 'rejected' AND me IS NOT NULL
     AND (settles IS NULL OR settles -> 'lines' IS NULL) THEN
    reason := 'approval refused: it does not say what it refunds for each unit of the case';
  END IF;
  IF reason IS NULL AND NEW.verdict <> 'rejected' AND settles IS NOT NULL THEN
    -- What the approval settles must add up and never pay a unit more than was paid for it.
    FOR item IN SELECT key::integer AS item_id, value::bigint AS refund FROM json_each_text(settles -> 'lines') LOOP
      line_count := line_count + 1;
      IF item.refund < 0 OR NOT EXISTS (SELECT 1 FROM decision_lines l WHERE l.decision_id = NEW.decision_id
                                         AND l.return_item_id = item.item_id AND l.active
                                         AND item.refund <= l.paid_minor) THEN
        reason := format('approval refused: it refunds %s for return item %s, which is not a unit of this '
                         'case or more than was paid for it', item.refund, item.item_id);
        EXIT;
      END IF;
      lines_total := lines_total + item.refund;
    END LOOP;
    new_amount := COALESCE((settles ->> 'amount_minor')::bigint, NEW.amount_minor, decision.amount_minor);
    IF reason IS NULL AND line_count <> (SELECT count(*) FROM decision_lines l
                                         WHERE l.decision_id = NEW.decision_id AND l.active) THEN
      reason := 'approval refused: it does not name every unit of the case once';
    END IF;
    IF reason IS NULL AND new_amount <> lines_total + decision.shipping_refund_minor THEN
      reason := format('approval refused: its amount %s is not the sum of its units'' refunds and shipping (%s)',
                       new_amount, lines_total + decision.shipping_refund_minor);
    END IF;
    new_kind := COALESCE(settles ->> 'kind', decision.kind);
    IF reason IS NULL AND new_kind <> decision.kind
       AND NOT (decision.kind = 'full_refund' AND new_kind = 'partial_refund') THEN
      reason := format('approval refused: a verdict may not turn a %s into a %s', decision.kind, new_kind);
    END IF;
    new_bonus := COALESCE((settles ->> 'store_credit_bonus_minor')::bigint, decision.store_credit_bonus_minor);
    IF reason IS NULL AND (new_bonus < 0 OR new_bonus > decision.store_credit_bonus_minor) THEN
      reason := 'approval refused: it raises the store-credit bonus';
    END IF;
  END IF;
  IF reason IS NOT NULL THEN
    NEW.refused_reason := reason;
    INSERT INTO sync_conflicts (id, kind, decision_id, approval_id, station_id, event_id, reason, detected_at)
      VALUES (gen_random_uuid(), 'approval_refused', NEW.decision_id, NEW.id,
              COALESCE(NULLIF(me, ''), decision.station_id), NEW.id, reason, now());
    RETURN NEW;
  END IF;
  IF decision.status IS DISTINCT FROM 'pending_review' THEN
    RETURN NEW;
  ELSIF NEW.verdict = 'rejected' THEN
    UPDATE decisions SET status = 'rejected' WHERE id = NEW.decision_id;
  ELSE
    UPDATE decisions SET status = 'approved',
      amount_minor = COALESCE((settles ->> 'amount_minor')::bigint, amount_minor),
      kind = COALESCE(settles ->> 'kind', kind),
      store_credit_bonus_minor = COALESCE((settles ->> 'store_credit_bonus_minor')::bigint, store_credit_bonus_minor)
      WHERE id = NEW.decision_id;
    UPDATE decision_lines l SET refund_minor = s.value::bigint
      FROM json_each_text(settles -> 'lines') AS s
      WHERE settles IS NOT NULL AND l.decision_id = NEW.decision_id AND l.return_item_id = s.key::integer
        AND l.refund_minor <> s.value::bigint;
  END IF;
  RETURN NEW;
END $$
"""

# A decision that arrives already approved although its own review reasons say it needed a
# supervisor (an outbox edited by hand) waits for review at central instead: only an approval
# central accepts settles such a case. The pull brings the status back to the station.
DECISIONS_CENTRAL_REVIEW = """
CREATE OR REPLACE FUNCTION decisions_central_review() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  UPDATE decisions d SET status = 'pending_review' FROM added a
    WHERE d.id = a.id AND a.status = 'approved' AND json_array_length(COALESCE(a.review_reasons, '[]'::json)) > 0;
  RETURN NULL;
END $$
"""


def pinned(sql: str) -> str:
    """A function of central's own runs with central's schema and the catalog first and the
    session's temporary schema last: a station's temporary table named like one of central's
    (or like pg_auth_members) is never what central's functions read."""
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one()
    quoted = '"' + str(schema).replace('"', '""') + '"'
    return sql.replace("SET search_path FROM CURRENT", f"SET search_path = pg_catalog, {quoted}, pg_temp")


def upgrade() -> None:
    with op.batch_alter_table('approvals') as batch:
        # What the verdict sets on its case: status, kind, amount, bonus and each unit's refund.
        batch.add_column(sa.Column('settles', sa.JSON(), nullable=True))
    op.create_table(
        'station_credentials',
        sa.Column('role_name', sa.String(length=63), nullable=False),
        sa.Column('station_id', sa.String(length=40), nullable=False),
        sa.Column('issued_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('role_name', name=op.f('pk_station_credentials')),
    )
    op.create_index('ix_station_credentials_station_id', 'station_credentials', ['station_id'])
    op.create_table(
        'station_refusals',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('station_id', sa.String(length=40), nullable=False),
        sa.Column('pushed_by', sa.String(length=40), nullable=True),
        sa.Column('table_name', sa.String(length=40), nullable=False),
        sa.Column('row_key', sa.String(length=60), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=True),
        sa.Column('sent', sa.JSON(), nullable=False),
        sa.Column('detected_at', UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('other_station', 'audit_collision')", name=op.f('ck_station_refusals_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_station_refusals')),
    )
    op.create_index('ix_station_refusals_station_id', 'station_refusals', ['station_id', 'seq'])
    if op.get_bind().dialect.name != 'postgresql':
        return
    for sql in (RC_STATION, RC_CLAIM_EVENTS, RC_FILL_USERS, RC_DISABLE_USER, RC_OWN_ROWS, AUDIT_DOOR,
                APPROVALS_CENTRAL, DECISIONS_CENTRAL_REVIEW):
        op.execute(pinned(sql))
    for table, owner, updatable in OWNED:
        quoted = owner.replace("'", "''")
        op.execute(f"CREATE TRIGGER {table}_own_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS added "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION rc_own_rows('{quoted}')")
        if updatable:
            op.execute(f"CREATE TRIGGER {table}_own_update AFTER UPDATE ON {table} "
                       f"REFERENCING OLD TABLE AS removed NEW TABLE AS added "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION rc_own_rows('{quoted}')")
    op.execute("CREATE TRIGGER decisions_central_review AFTER INSERT ON decisions REFERENCING NEW TABLE AS added "
               "FOR EACH STATEMENT EXECUTE FUNCTION decisions_central_review()")
    op.execute("CREATE TRIGGER audit_events_door BEFORE INSERT ON audit_events "
               "FOR EACH ROW EXECUTE FUNCTION audit_events_door()")
    # Named to sort before approvals_four_eyes (0005), which then sees central's refusal.
    op.execute("CREATE TRIGGER approvals_central BEFORE INSERT ON approvals "
               "FOR EACH ROW EXECUTE FUNCTION approvals_central()")
    for name in ("rc_claim_events(json)", "rc_fill_users(json)", "rc_disable_user(integer, integer)",
                 "rc_station()"):
        op.execute(f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS approvals_central ON approvals")
        op.execute("DROP TRIGGER IF EXISTS audit_events_door ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS decisions_central_review ON decisions")
        for table, _, _ in OWNED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_own_insert ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_own_update ON {table}")
        for name in ("decisions_central_review()", "approvals_central()", "audit_events_door()", "rc_own_rows()", "rc_disable_user(integer, integer)",
                     "rc_fill_users(json)", "rc_claim_events(json)", "rc_station()"):
            op.execute(f"DROP FUNCTION IF EXISTS {name}")
    op.drop_index('ix_station_refusals_station_id', table_name='station_refusals')
    op.drop_table('station_refusals')
    op.drop_index('ix_station_credentials_station_id', table_name='station_credentials')
    op.drop_table('station_credentials')
    # As in 0004 and 0008: dropped in place (SQLite 3.35+); recreating approvals would reflect,
    # and break, the tables its foreign keys refer to.
    bind = op.get_bind()
    old_sqlite = bind.dialect.name == 'sqlite' and (bind.dialect.server_version_info or (0,)) < (3, 35)
    with op.batch_alter_table('approvals', recreate='auto' if old_sqlite else 'never') as batch:
        batch.drop_column('settles')
