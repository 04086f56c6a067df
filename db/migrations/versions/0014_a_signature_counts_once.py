"""a signed disabling counts once: the same signature sent again (after central enabled the user
again) stops nobody

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 16:40:00
"""
from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# Central keeps every signature that changed something, with what it changed. A station (or
# anyone holding its login) that kept an admin's signed disabling could otherwise send it again
# after central enabled the user again, and stop them once more without the admin.
RC_USED_SIGNATURES = """
CREATE TABLE rc_used_signatures (
  signature text PRIMARY KEY,
  what text NOT NULL,
  subject text NOT NULL,
  station_id text NOT NULL,
  used_at timestamptz NOT NULL DEFAULT now()
)
"""

RC_DISABLE_USER = """
CREATE OR REPLACE FUNCTION rc_disable_user(target integer, admin integer, sig json) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station(); who record; reason text; signed jsonb;
BEGIN
  IF me = '' THEN
    RAISE EXCEPTION 'this login speaks for no station' USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT username, active, role, created_from_station INTO who FROM users WHERE id = admin FOR SHARE;
  IF who.username IS NULL OR NOT who.active OR who.role <> 'admin' OR who.created_from_station IS NOT NULL THEN
    reason := format('disabling refused: user %s is no active admin central confirmed', COALESCE(who.username, admin::text));
  ELSIF me IS NOT NULL THEN
    reason := rc_key_problem(admin, who.username, sig, 'disabling refused');
    IF reason IS NULL THEN
      BEGIN
        signed := (sig ->> 'signed')::jsonb;
        IF jsonb_typeof(signed) <> 'object' OR signed -> 'v' IS DISTINCT FROM '1'::jsonb
           OR signed ->> 'what' IS DISTINCT FROM 'user_disabled' OR signed -> 'user' IS DISTINCT FROM to_jsonb(target)
           OR signed -> 'admin' IS DISTINCT FROM to_jsonb(admin) OR signed ->> 'station' IS DISTINCT FROM me THEN
          reason := format('disabling refused: what it says is not what %s signed', who.username);
        END IF;
      EXCEPTION WHEN data_exception OR invalid_text_representation THEN
        reason := format('disabling refused: its signature of %s cannot be read', who.username);
      END;
    END IF;
    IF reason IS NULL THEN
      INSERT INTO rc_used_signatures (signature, what, subject, station_id)
        VALUES (sig ->> 'sig', 'user_disabled', target::text, me) ON CONFLICT (signature) DO NOTHING;
      IF NOT FOUND THEN
        reason := format('disabling refused: %s''s signature of it was used at %s already; an admin who wants '
                         'the user stopped again signs a new disabling', who.username,
                         (SELECT to_char(used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
                            FROM rc_used_signatures u WHERE u.signature = sig ->> 'sig'));
      END IF;
    END IF;
  END IF;
  IF reason IS NOT NULL THEN
    IF me IS NOT NULL THEN
      INSERT INTO refused_verdicts (id, subject, subject_key, station_id, reason, sent, detected_at)
        VALUES (gen_random_uuid(), 'user_disabled', target::text, me, reason,
                json_build_object('user', target, 'admin', admin, 'signature', sig), now());
    END IF;
    RETURN false;
  END IF;
  UPDATE users SET active = false WHERE id = target;
  RETURN FOUND;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    from importlib import import_module

    pinned = import_module("db.migrations.versions.0009_central_authority").pinned
    op.execute(RC_USED_SIGNATURES)
    # The disablings central already carried out: their signatures are in the audit rows that came
    # with them (console.users_admin), so a replay of one of those is refused as well.
    op.execute("""
        INSERT INTO rc_used_signatures (signature, what, subject, station_id, used_at)
        SELECT DISTINCT ON (details -> 'signature' ->> 'sig') details -> 'signature' ->> 'sig', 'user_disabled',
               entity_id, station_id, occurred_at
        FROM audit_events
        WHERE action = 'user_disabled' AND details -> 'signature' ->> 'sig' IS NOT NULL
        ORDER BY details -> 'signature' ->> 'sig', occurred_at
        ON CONFLICT DO NOTHING""")
    op.execute(pinned(RC_DISABLE_USER))
    op.execute("REVOKE ALL ON FUNCTION rc_disable_user(integer, integer, json) FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    from importlib import import_module

    pinned = import_module("db.migrations.versions.0009_central_authority").pinned
    previous = import_module("db.migrations.versions.0012_central_holds_the_money").RC_DISABLE_USER
    op.execute(pinned(previous))
    op.execute("DROP TABLE IF EXISTS rc_used_signatures")
