"""an approval proves who made it: approvers' public keys (confirmed at central), the sealed private
halves at the station, each approval's signature, and central verifying it (PostgreSQL)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# RFC 8032, section 7.1, test 1: central checks once that it can verify a signature at all.
_RFC8032_KEY = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
_RFC8032_SIG = ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd2"
                "5bf5f0595bbe24655141438e7a100b")

# What stations pull from here on, besides 0006's and 0008's tables (db.pull holds the whole list).
FEED_TABLES = (("approver_keys", "id"),)

NO_PLPYTHON = ("central verifies approvals' signatures with PL/Python and the cryptography package, which this "
               "PostgreSQL server lacks: on the database server install postgresql-plpython3-{major} and "
               "python3-cryptography (Debian, Ubuntu: apt-get install postgresql-plpython3-{major} "
               "python3-cryptography), then run `returns-console central init` again")

# Ed25519 in the database, by the cryptography package (PostgreSQL has no Ed25519 of its own, and
# a signature checked anywhere else would be a station's word again).
RC_ED25519_VERIFY = """
CREATE OR REPLACE FUNCTION rc_ed25519_verify(public_key bytea, message bytea, signature bytea) RETURNS boolean
LANGUAGE plpython3u IMMUTABLE STRICT AS $$
try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:
    plpy.error("central cannot verify signatures: python3-cryptography is not installed for PostgreSQL's Python")
try:
    Ed25519PublicKey.from_public_bytes(bytes(public_key)).verify(bytes(signature), bytes(message))
except (InvalidSignature, ValueError):
    return False
return True
$$
"""

# A key reaches central on a station's word only: central keeps it unconfirmed (an admin confirms
# it with `central keys confirm`), stamps when it arrived, and never takes a station's
# confirmation or revocation.
APPROVER_KEYS_DOOR = """
CREATE OR REPLACE FUNCTION approver_keys_door() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF rc_station() IS NOT NULL THEN
    NEW.confirmed_at := NULL;
    NEW.confirmed_by := NULL;
    NEW.revoked_at := NULL;
    NEW.enrolled_at := now();
  END IF;
  RETURN NEW;
END $$
"""

# All a station may change of a key central holds: retire it (a new PIN or badge replaced it), once.
APPROVER_KEYS_RETIRE = """
CREATE OR REPLACE FUNCTION approver_keys_retire() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF rc_station() IS NOT NULL THEN
    NEW.id := OLD.id;
    NEW.user_id := OLD.user_id;
    NEW.station_id := OLD.station_id;
    NEW.method := OLD.method;
    NEW.public_key := OLD.public_key;
    NEW.enrolled_at := OLD.enrolled_at;
    NEW.confirmed_at := OLD.confirmed_at;
    NEW.confirmed_by := OLD.confirmed_by;
    NEW.revoked_at := OLD.revoked_at;
    NEW.retired_at := COALESCE(OLD.retired_at, NEW.retired_at);
  END IF;
  RETURN NEW;
END $$
"""

# Why a station's approval (as JSON: the row, or the row a push is about to write) does not count
# for want of its approver's proof: a signature made with a key central holds for them, from that
# station, confirmed, neither retired nor revoked, over exactly what the row says; NULL when it
# counts, for central's own (trusted) sessions, and when the approver is no active supervisor at
# central (approvals_central refuses that itself, saying why). The push asks this before it
# applies an event (db.push), so a refused verdict changes nothing else of its case either; the
# trigger asks again. The approver's row is locked, so both see the same approver.
RC_SIGNATURE_PROBLEM = """
CREATE OR REPLACE FUNCTION rc_signature_problem(a json) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  me text := rc_station(); sig json; signed jsonb; k record; approver record; who text; currency text;
BEGIN
  IF me IS NULL THEN
    RETURN NULL;
  END IF;
  BEGIN  -- whatever the station sent: a text PostgreSQL cannot read is a refusal, not a failed push
    SELECT username, active, role, created_from_station INTO approver FROM users
      WHERE id = (a ->> 'supervisor_id')::integer FOR SHARE;
    IF approver.username IS NULL OR NOT approver.active OR approver.role NOT IN ('supervisor', 'admin')
       OR approver.created_from_station IS NOT NULL THEN
      RETURN NULL;
    END IF;
    who := approver.username;
    SELECT d.currency INTO currency FROM decisions d WHERE d.id = (a ->> 'decision_id')::uuid;
    IF currency IS NULL THEN
      RETURN NULL;  -- asked before the case itself reached central: the trigger asks again once it has
    END IF;
    sig := a -> 'signature';
    IF sig IS NULL OR json_typeof(sig) <> 'object' OR sig ->> 'key' IS NULL OR sig ->> 'signed' IS NULL
       OR sig ->> 'sig' IS NULL THEN
      RETURN format('approval refused: it carries no signature of %s, which only their PIN or badge can make', who);
    END IF;
    SELECT * INTO k FROM approver_keys WHERE id = (sig ->> 'key')::uuid FOR SHARE;
    IF NOT FOUND OR k.user_id <> (a ->> 'supervisor_id')::integer THEN
      RETURN format('approval refused: it is signed with a key central does not hold for %s', who);
    ELSIF k.station_id <> me THEN
      RETURN format('approval refused: it is signed with %s''s key of station %s, but station %s sent it',
                    who, k.station_id, me);
    ELSIF k.revoked_at IS NOT NULL THEN
      RETURN format('approval refused: %s''s signing key from station %s was revoked at central', who, k.station_id);
    ELSIF k.retired_at IS NOT NULL THEN
      RETURN format('approval refused: %s''s signing key from station %s was replaced (a new PIN or badge) before '
                    'this verdict reached central', who, k.station_id);
    ELSIF k.confirmed_at IS NULL THEN
      RETURN format('approval refused: %s''s signing key from station %s (%s, fingerprint %s) is not confirmed at '
                    'central: a central admin confirms it with `returns-console central keys confirm %s '
                    '--fingerprint %s`, then %s settles the case again', who, k.station_id, k.method,
                    rc_fingerprint(k.public_key), who, rc_fingerprint(k.public_key), who);
    END IF;
    signed := (sig ->> 'signed')::jsonb;
    IF NOT rc_ed25519_verify(decode(k.public_key, 'base64'), convert_to(sig ->> 'signed', 'UTF8'),
                             decode(sig ->> 'sig', 'base64')) THEN
      RETURN format('approval refused: its signature does not verify with %s''s key', who);
    END IF;
    IF jsonb_typeof(signed) <> 'object' OR signed -> 'v' IS DISTINCT FROM '1'::jsonb
       OR signed ->> 'what' IS DISTINCT FROM 'approval'
       OR signed ->> 'approval' IS DISTINCT FROM a ->> 'id'
       OR signed ->> 'decision' IS DISTINCT FROM a ->> 'decision_id'
       OR signed -> 'supervisor' IS DISTINCT FROM (a -> 'supervisor_id')::jsonb
       OR signed ->> 'station' IS DISTINCT FROM me
       OR signed ->> 'verdict' IS DISTINCT FROM a ->> 'verdict'
       OR signed -> 'amount_minor' IS DISTINCT FROM COALESCE((a -> 'amount_minor')::jsonb, 'null'::jsonb)
       OR signed ->> 'currency' IS DISTINCT FROM currency
       OR signed -> 'settles' IS DISTINCT FROM COALESCE((a -> 'settles')::jsonb, 'null'::jsonb)
       OR signed ->> 'note_sha256' IS DISTINCT FROM encode(sha256(convert_to(a ->> 'note', 'UTF8')), 'hex')
       OR signed ->> 'decided_at' IS NULL OR a ->> 'decided_at' IS NULL
       OR abs(extract(epoch FROM (signed ->> 'decided_at')::timestamptz - (a ->> 'decided_at')::timestamptz)) > 0.001
    THEN
      RETURN format('approval refused: what it says is not what %s signed', who);
    END IF;
  EXCEPTION WHEN data_exception OR invalid_text_representation THEN
    RETURN format('approval refused: its signature of %s cannot be read', COALESCE(who, 'the approver'));
  END;
  RETURN NULL;
END $$
"""

# A key's fingerprint, as central shows it and the supervisor reads it at their station: the first
# 80 bits of the SHA-256 of the raw public key, hex in groups of four (console.approval_signing).
RC_FINGERPRINT = """
CREATE OR REPLACE FUNCTION rc_fingerprint(public_key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog AS $$
  SELECT array_to_string(ARRAY(SELECT substr(h, i, 4) FROM generate_series(1, 17, 4) AS i), '-')
  FROM (SELECT upper(encode(sha256(decode(public_key, 'base64')), 'hex')) AS h) AS x
$$
"""

# The trigger: the same question for every approval a station inserts; a refusal is flagged.
APPROVALS_ATTESTED = """
CREATE OR REPLACE FUNCTION approvals_attested() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station(); reason text; case_station text;
BEGIN
  IF me IS NULL OR NEW.refused_reason IS NOT NULL OR EXISTS (SELECT 1 FROM approvals a WHERE a.id = NEW.id) THEN
    RETURN NEW;
  END IF;
  reason := rc_signature_problem(row_to_json(NEW));
  IF reason IS NOT NULL THEN
    SELECT d.station_id INTO case_station FROM decisions d WHERE d.id = NEW.decision_id;
    NEW.refused_reason := reason;
    INSERT INTO sync_conflicts (id, kind, decision_id, approval_id, station_id, event_id, reason, detected_at)
      VALUES (gen_random_uuid(), 'approval_refused', NEW.decision_id, NEW.id,
              COALESCE(NULLIF(me, ''), case_station), NEW.id, reason, now());
  END IF;
  RETURN NEW;
END $$
"""


def _rc_station(*, live_only: bool) -> str:
    from importlib import import_module

    sql: str = import_module("db.migrations.versions.0009_central_authority").RC_STATION
    if live_only:
        old = "WHERE c.role_name = session_user::text)"
        assert old in sql
        sql = sql.replace(old, "WHERE c.role_name = session_user::text AND c.revoked_at IS NULL)")
    return sql


def upgrade() -> None:
    with op.batch_alter_table('approvals') as batch:
        batch.add_column(sa.Column('signature', sa.JSON(), nullable=True))
    op.create_table(
        'approver_keys',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('station_id', sa.String(length=40), nullable=False),
        sa.Column('method', sa.String(length=10), nullable=False),
        sa.Column('public_key', sa.String(length=64), nullable=False),
        sa.Column('enrolled_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('retired_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('confirmed_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('confirmed_by', sa.String(length=64), nullable=True),
        sa.Column('revoked_at', UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("method IN ('pin', 'badge')", name=op.f('ck_approver_keys_method')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_approver_keys_user_id_users')),
        sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_approver_keys_station_id_stations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_approver_keys')),
    )
    op.create_index(op.f('ix_approver_keys_user_id'), 'approver_keys', ['user_id'])
    op.create_table(
        'sealed_keys',
        sa.Column('key_id', sa.Uuid(), nullable=False),
        sa.Column('seal', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['key_id'], ['approver_keys.id'], name=op.f('fk_sealed_keys_key_id_approver_keys')),
        sa.PrimaryKeyConstraint('key_id', name=op.f('pk_sealed_keys')),
    )
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    from importlib import import_module

    pinned = import_module("db.migrations.versions.0009_central_authority").pinned
    major = bind.exec_driver_sql("SHOW server_version_num").scalar_one()[:-4]
    if bind.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'plpython3u'").first() is None:
        raise RuntimeError(NO_PLPYTHON.format(major=major))
    bind.exec_driver_sql("SELECT pg_advisory_xact_lock(7302, 1)")  # the extension is the database's, not the schema's
    bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS plpython3u")
    op.execute(RC_ED25519_VERIFY)
    works = bind.exec_driver_sql(
        f"SELECT rc_ed25519_verify(decode('{_RFC8032_KEY}', 'hex'), ''::bytea, decode('{_RFC8032_SIG}', 'hex'))"
        f" AND NOT rc_ed25519_verify(decode('{_RFC8032_KEY}', 'hex'), 'x'::bytea, decode('{_RFC8032_SIG}', 'hex'))"
    ).scalar_one()
    if not works:
        raise RuntimeError(NO_PLPYTHON.format(major=major))
    # A revoked credential speaks for no station (its role is NOLOGIN and its sessions were ended
    # as well; this holds even for a session that outlived the revocation).
    op.execute(pinned(_rc_station(live_only=True)))
    op.execute(pinned(APPROVER_KEYS_DOOR))
    op.execute(RC_FINGERPRINT)
    op.execute(pinned(RC_SIGNATURE_PROBLEM))
    op.execute(pinned(APPROVALS_ATTESTED))
    op.execute("CREATE TRIGGER approver_keys_door BEFORE INSERT ON approver_keys "
               "FOR EACH ROW EXECUTE FUNCTION approver_keys_door()")
    op.execute(pinned(APPROVER_KEYS_RETIRE))
    op.execute("CREATE TRIGGER approver_keys_retire BEFORE UPDATE ON approver_keys "
               "FOR EACH ROW EXECUTE FUNCTION approver_keys_retire()")
    op.execute("CREATE TRIGGER approver_keys_own_insert AFTER INSERT ON approver_keys REFERENCING NEW TABLE AS added "
               "FOR EACH STATEMENT EXECUTE FUNCTION rc_own_rows('a.station_id')")
    op.execute("CREATE TRIGGER approver_keys_own_update AFTER UPDATE ON approver_keys "
               "REFERENCING OLD TABLE AS removed NEW TABLE AS added "
               "FOR EACH STATEMENT EXECUTE FUNCTION rc_own_rows('a.station_id')")
    op.execute("CREATE TRIGGER approvals_attested BEFORE INSERT ON approvals "
               "FOR EACH ROW EXECUTE FUNCTION approvals_attested()")
    op.execute("REVOKE ALL ON FUNCTION rc_signature_problem(json) FROM PUBLIC")
    for table, key in FEED_TABLES:  # as 0006 and 0008 do
        op.execute(f"ALTER TABLE {table} ADD COLUMN change_xid xid8")
        op.execute(f"UPDATE {table} SET change_xid = pg_current_xact_id()")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN change_xid SET NOT NULL")
        op.execute(f"CREATE INDEX ix_{table}_change ON {table} (change_xid, {key})")
        op.execute(f"CREATE TRIGGER {table}_change_xid BEFORE INSERT OR UPDATE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION stamp_change_xid()")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS approver_keys_change_xid ON approver_keys")
        op.execute("DROP TRIGGER IF EXISTS approvals_attested ON approvals")
        op.execute("DROP TRIGGER IF EXISTS approver_keys_own_insert ON approver_keys")
        op.execute("DROP TRIGGER IF EXISTS approver_keys_door ON approver_keys")
        op.execute("DROP TRIGGER IF EXISTS approver_keys_retire ON approver_keys")
        op.execute("DROP TRIGGER IF EXISTS approver_keys_own_update ON approver_keys")
        for name in ("approvals_attested()", "rc_signature_problem(json)", "rc_fingerprint(text)",
                     "approver_keys_retire()", "approver_keys_door()", "rc_ed25519_verify(bytea, bytea, bytea)"):
            op.execute(f"DROP FUNCTION IF EXISTS {name}")
        from importlib import import_module

        pinned = import_module("db.migrations.versions.0009_central_authority").pinned
        op.execute(pinned(_rc_station(live_only=False)))
        # (plpython3u stays: an extension is the database's, and other schemas may use it.)
    op.drop_table('sealed_keys')
    op.drop_index(op.f('ix_approver_keys_user_id'), table_name='approver_keys')
    op.drop_table('approver_keys')
    old_sqlite = bind.dialect.name == 'sqlite' and (bind.dialect.server_version_info or (0,)) < (3, 35)
    with op.batch_alter_table('approvals', recreate='auto' if old_sqlite else 'never') as batch:
        batch.drop_column('signature')
