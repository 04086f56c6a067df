"""central holds the money: refunds within what was paid, a claim's verdict and a user's disabling
signed by whoever made them, one station per public key

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 13:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

STANDING = "('approved', 'pending_review')"

# What a station sends about money is checked against central's own orders, whatever the station
# computed: per order line no more standing refunds than units shipped, no unit paid more than its
# share of what the line cost (its net, less its share of the order's discount, plus its tax), and
# every unit of the decision's own order. A line's share of the order discount is at least the
# floor of its proportion (console.money.allocate gives the floor or one more), and a unit's share
# at most the ceiling of the line's over its units (split_even), so the cap is never below what an
# honest station computes. Statement-level over the transition table: one query per COPY. The
# unit count is reported as the item conflict it is (two stations refunding the same shipped unit
# offline: db.push keeps the later one as a conflict); the rest refuse the event.
RC_REFUNDS_WITHIN_PAID = f"""
CREATE OR REPLACE FUNCTION rc_refunds_within_paid() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station(); bad record;
BEGIN
  IF me IS NULL THEN
    RETURN NULL;
  END IF;
  -- One pass over the lines written: a unit of another order than its decision's is refused.
  SELECT a.decision_id, a.return_item_id, i.order_line_id, ol.order_id AS unit_order, d.order_id INTO bad
    FROM added a JOIN return_items i ON i.id = a.return_item_id JOIN order_lines ol ON ol.id = i.order_line_id
    JOIN decisions d ON d.id = a.decision_id
    WHERE ol.order_id IS DISTINCT FROM d.order_id LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'refused: decision % refunds return item %, which is not of its order', bad.decision_id,
      bad.return_item_id USING ERRCODE = 'check_violation', CONSTRAINT = 'rc_refunds_within_paid';
  END IF;
  WITH touched AS (
    SELECT DISTINCT i.order_line_id AS id FROM added a JOIN return_items i ON i.id = a.return_item_id WHERE a.active
  ), nets AS (
    SELECT ol.id, ol.order_id, ol.quantity, ol.tax_minor,
           greatest(0, ol.quantity::bigint * ol.unit_price_minor - ol.line_discount_minor) AS net
    FROM order_lines ol
    WHERE ol.order_id IN (SELECT x.order_id FROM order_lines x JOIN touched t ON t.id = x.id)
  ), caps AS (
    SELECT n.id, n.quantity,
           n.net - CASE WHEN tot.total > 0 THEN o.order_discount_minor * n.net / tot.total ELSE 0 END
             + n.tax_minor AS cap
    FROM nets n JOIN orders o ON o.id = n.order_id
    JOIN (SELECT order_id, sum(net)::bigint AS total FROM nets GROUP BY order_id) tot ON tot.order_id = n.order_id
    WHERE n.id IN (SELECT id FROM touched)
  ), standing AS (
    SELECT i.order_line_id AS id, count(*) AS units, max(l.paid_minor) AS most_paid
    FROM decision_lines l JOIN decisions d ON d.id = l.decision_id JOIN return_items i ON i.id = l.return_item_id
    WHERE l.active AND d.status IN {STANDING} AND i.order_line_id IN (SELECT id FROM touched)
    GROUP BY i.order_line_id
  )
  -- A unit's share is at most the ceiling of the line's cost over its units (split_even); two
  -- stations that each refunded one unit offline may both have given the larger share, so the
  -- units' sum is bounded by count and share, not by the cost itself (within a unit's rounding).
  SELECT c.id, c.quantity, c.cap, (c.cap + c.quantity - 1) / c.quantity AS share, s.units, s.most_paid INTO bad
    FROM caps c JOIN standing s ON s.id = c.id
    WHERE s.units > c.quantity OR s.most_paid > (c.cap + c.quantity - 1) / c.quantity
    LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  ELSIF bad.units > bad.quantity THEN
    RAISE EXCEPTION 'refused: order line % shipped % unit(s), and % standing refunds name it', bad.id,
      bad.quantity, bad.units USING ERRCODE = 'unique_violation', CONSTRAINT = 'rc_order_line_units';
  ELSE
    RAISE EXCEPTION 'refused: a unit of order line % cost at most % (% for % unit(s)), but a decision says it was '
      'paid %', bad.id, bad.share, bad.cap, bad.quantity, bad.most_paid
      USING ERRCODE = 'check_violation', CONSTRAINT = 'rc_refunds_within_paid';
  END IF;
END $$
"""

# A decision's own sums, once its lines are in: its amount is its units' refunds plus shipping,
# in its order's currency, of its RMA's order, and the shipping its order's decisions refund is no
# more than the order's shipping. The lines arrive after the decision (a statement of their own),
# so the check waits for the end of the transaction (or db.push's check after each event): each
# INSERT of decisions notes its decisions in one row of rc_sums_due, and a deferred trigger on that
# row checks them all at once — one check per statement, not one per decision.
RC_SUMS_DUE = f"""
CREATE OR REPLACE FUNCTION rc_sums_due() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF rc_station() IS NOT NULL THEN
    INSERT INTO rc_sums_due (decisions)
      SELECT array_agg(a.id) FROM added a WHERE a.status IN {STANDING} HAVING count(*) > 0;
  END IF;
  RETURN NULL;
END $$
"""

RC_DECISION_SUMS = f"""
CREATE OR REPLACE FUNCTION rc_decision_sums() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE bad record;
BEGIN
  DELETE FROM rc_sums_due WHERE id = NEW.id;
  SELECT d.id, d.currency, o.currency AS paid_in, o.number INTO bad FROM decisions d JOIN orders o ON o.id = d.order_id
    WHERE d.id = ANY(NEW.decisions) AND d.currency IS DISTINCT FROM o.currency LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'refused: decision % pays in %, but its order % was paid in %', bad.id, bad.currency,
      bad.number, bad.paid_in USING ERRCODE = 'check_violation', CONSTRAINT = 'rc_decision_sums';
  END IF;
  SELECT d.id, o.number INTO bad FROM decisions d JOIN orders o ON o.id = d.order_id
    JOIN return_authorizations r ON r.id = d.rma_id
    WHERE d.id = ANY(NEW.decisions) AND r.order_id IS DISTINCT FROM d.order_id LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'refused: decision % is of order %, but its RMA is of another order', bad.id, bad.number
      USING ERRCODE = 'check_violation', CONSTRAINT = 'rc_decision_sums';
  END IF;
  SELECT d.id, d.amount_minor, COALESCE(sum(l.refund_minor) FILTER (WHERE l.active), 0) + d.shipping_refund_minor AS due
    INTO bad FROM decisions d LEFT JOIN decision_lines l ON l.decision_id = d.id
    WHERE d.id = ANY(NEW.decisions) AND d.status IN {STANDING}
    GROUP BY d.id, d.amount_minor, d.shipping_refund_minor
    HAVING d.amount_minor <> COALESCE(sum(l.refund_minor) FILTER (WHERE l.active), 0) + d.shipping_refund_minor
    LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'refused: decision % pays %, but its units'' refunds and shipping come to %', bad.id,
      bad.amount_minor, bad.due USING ERRCODE = 'check_violation', CONSTRAINT = 'rc_decision_sums';
  END IF;
  -- An exchange or a denial pays nothing; a bonus comes only with store credit, and never more than
  -- the credit itself (policies give a tenth).
  SELECT d.id, d.kind, d.amount_minor, d.store_credit_bonus_minor AS bonus INTO bad FROM decisions d
    WHERE d.id = ANY(NEW.decisions) AND d.status IN {STANDING}
      AND ((d.kind IN ('exchange', 'deny') AND d.amount_minor <> 0)
           OR d.store_credit_bonus_minor > CASE WHEN d.kind = 'store_credit' THEN d.amount_minor ELSE 0 END)
    LIMIT 1;
  IF FOUND AND bad.kind IN ('exchange', 'deny') AND bad.amount_minor <> 0 THEN
    RAISE EXCEPTION 'refused: decision % (%) pays nothing, but says %', bad.id, bad.kind, bad.amount_minor
      USING ERRCODE = 'check_violation', CONSTRAINT = 'rc_decision_sums';
  ELSIF FOUND THEN
    RAISE EXCEPTION 'refused: decision % (%) adds a store-credit bonus of % to %', bad.id, bad.kind, bad.bonus,
      bad.amount_minor USING ERRCODE = 'check_violation', CONSTRAINT = 'rc_decision_sums';
  END IF;
  SELECT o.number, sum(d.shipping_refund_minor) AS refunded, o.shipping_minor + o.shipping_tax_minor AS charged
    INTO bad FROM orders o JOIN decisions d ON d.order_id = o.id AND d.status IN {STANDING}
    WHERE o.id IN (SELECT x.order_id FROM decisions x WHERE x.id = ANY(NEW.decisions) AND x.shipping_refund_minor > 0)
    GROUP BY o.id, o.number, o.shipping_minor, o.shipping_tax_minor
    HAVING sum(d.shipping_refund_minor) > o.shipping_minor + o.shipping_tax_minor LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'refused: the decisions of order % refund % of shipping, which cost %', bad.number,
      bad.refunded, bad.charged USING ERRCODE = 'check_violation', CONSTRAINT = 'rc_decision_sums';
  END IF;
  RETURN NULL;
END $$
"""

# Whether a signature (a row's ``signature`` JSON: key, signed text, sig) is the user's own: made
# with a key central holds for them, from the sending station, confirmed, neither retired nor
# revoked, and verifying. The reason it is not (prefixed with ``label``), or NULL. What the text
# says is for the caller to compare. The key row is locked, as in rc_signature_problem (0011).
RC_KEY_PROBLEM = """
CREATE OR REPLACE FUNCTION rc_key_problem(signer integer, who text, sig json, label text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station(); k record;
BEGIN
  IF sig IS NULL OR json_typeof(sig) <> 'object' OR sig ->> 'key' IS NULL OR sig ->> 'signed' IS NULL
     OR sig ->> 'sig' IS NULL THEN
    RETURN format('%s: it carries no signature of %s, which only their PIN or badge can make', label, who);
  END IF;
  SELECT * INTO k FROM approver_keys WHERE id = (sig ->> 'key')::uuid FOR SHARE;
  IF NOT FOUND OR k.user_id <> signer THEN
    RETURN format('%s: it is signed with a key central does not hold for %s', label, who);
  ELSIF k.station_id <> me THEN
    RETURN format('%s: it is signed with %s''s key of station %s, but station %s sent it', label, who,
                  k.station_id, me);
  ELSIF k.revoked_at IS NOT NULL THEN
    RETURN format('%s: %s''s signing key from station %s was revoked at central', label, who, k.station_id);
  ELSIF k.retired_at IS NOT NULL THEN
    RETURN format('%s: %s''s signing key from station %s was replaced (a new PIN or badge) before this reached '
                  'central', label, who, k.station_id);
  ELSIF k.confirmed_at IS NULL THEN
    RETURN format('%s: %s''s signing key from station %s (%s, fingerprint %s) is not confirmed at central: a '
                  'central admin confirms it with `returns-console central keys confirm %s --fingerprint %s`',
                  label, who, k.station_id, k.method, rc_fingerprint(k.public_key), who, rc_fingerprint(k.public_key));
  END IF;
  IF NOT rc_ed25519_verify(decode(k.public_key, 'base64'), convert_to(sig ->> 'signed', 'UTF8'),
                           decode(sig ->> 'sig', 'base64')) THEN
    RETURN format('%s: its signature does not verify with %s''s key', label, who);
  END IF;
  RETURN NULL;
EXCEPTION WHEN data_exception OR invalid_text_representation THEN
  RETURN format('%s: its signature of %s cannot be read', label, who);
END $$
"""

# A claim's verdict pays money as an approval does: from a station it counts only signed by its
# supervisor (console.claim_review), over exactly what the row says; never more than was claimed,
# never by whoever made the claim (0008 holds that too). A claim a station sends settled without
# that proof stays (or arrives) waiting for review, and the refusal is kept in refused_verdicts;
# the pull brings central's claim back to the station. A settled claim stays as central settled
# it, and what a claim is about (its order, kind, currency, maker) is never a station's to change.
CLAIMS_CENTRAL = """
CREATE OR REPLACE FUNCTION claims_central() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me text := rc_station(); approver record; reason text; signed jsonb; claimed bigint;
BEGIN
  IF me IS NULL THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF OLD.status NOT IN ('open', 'pending_review') THEN
      RETURN OLD;  -- settled at central: nothing of it changes again
    END IF;
    NEW.id := OLD.id;
    NEW.order_id := OLD.order_id;
    NEW.shipment_id := OLD.shipment_id;
    NEW.kind := OLD.kind;
    NEW.currency := OLD.currency;
    NEW.created_by_id := OLD.created_by_id;
    NEW.created_at := OLD.created_at;
    claimed := OLD.amount_minor;
    IF NEW.status IN ('open', 'pending_review') THEN
      NEW.amount_minor := OLD.amount_minor;  -- the claimed amount is the claim's, not a station's edit
    END IF;
  ELSE
    claimed := NEW.amount_minor;
  END IF;
  IF NEW.status IN ('open', 'pending_review') THEN
    NEW.settled_by_id := NULL;
    NEW.settled_at := NULL;
    NEW.signature := NULL;
    RETURN NEW;
  END IF;
  SELECT username, active, role, created_from_station INTO approver FROM users WHERE id = NEW.settled_by_id FOR SHARE;
  IF approver.username IS NULL OR NOT approver.active OR approver.role NOT IN ('supervisor', 'admin')
     OR approver.created_from_station IS NOT NULL THEN
    reason := format('claim verdict refused: user %s is no active supervisor central confirmed',
                     COALESCE(approver.username, NEW.settled_by_id::text, '(nobody)'));
  ELSE
    reason := rc_key_problem(NEW.settled_by_id, approver.username, NEW.signature, 'claim verdict refused');
  END IF;
  IF reason IS NULL THEN
    BEGIN
      signed := (NEW.signature ->> 'signed')::jsonb;
      IF jsonb_typeof(signed) <> 'object' OR signed -> 'v' IS DISTINCT FROM '1'::jsonb
         OR signed ->> 'what' IS DISTINCT FROM 'claim_verdict'
         OR signed ->> 'claim' IS DISTINCT FROM NEW.id::text
         OR signed -> 'supervisor' IS DISTINCT FROM to_jsonb(NEW.settled_by_id)
         OR signed ->> 'station' IS DISTINCT FROM me
         OR signed ->> 'status' IS DISTINCT FROM NEW.status
         OR signed -> 'amount_minor' IS DISTINCT FROM to_jsonb(NEW.amount_minor)
         OR signed ->> 'currency' IS DISTINCT FROM NEW.currency
         OR signed ->> 'note_sha256' IS DISTINCT FROM encode(sha256(convert_to(COALESCE(NEW.review_note, ''), 'UTF8')), 'hex')
         OR signed ->> 'settled_at' IS NULL OR NEW.settled_at IS NULL
         OR abs(extract(epoch FROM (signed ->> 'settled_at')::timestamptz - NEW.settled_at)) > 0.001 THEN
        reason := format('claim verdict refused: what it says is not what %s signed', approver.username);
      END IF;
    EXCEPTION WHEN data_exception OR invalid_text_representation THEN
      reason := format('claim verdict refused: its signature of %s cannot be read', approver.username);
    END;
  END IF;
  IF reason IS NULL AND NEW.amount_minor > claimed THEN
    reason := format('claim verdict refused: it pays %s, more than the %s claimed', NEW.amount_minor, claimed);
  END IF;
  IF reason IS NULL THEN
    RETURN NEW;
  END IF;
  INSERT INTO refused_verdicts (id, subject, subject_key, station_id, reason, sent, detected_at)
    VALUES (gen_random_uuid(), 'claim', NEW.id::text, me, reason, row_to_json(NEW)::jsonb::json, now());
  IF TG_OP = 'UPDATE' THEN
    RETURN OLD;
  END IF;
  NEW.status := 'pending_review';
  NEW.outcome := NULL;
  NEW.settled_by_id := NULL;
  NEW.settled_at := NULL;
  NEW.review_note := NULL;
  NEW.signature := NULL;
  RETURN NEW;
END $$
"""

# A station's admin disabled someone: central stops them everywhere if the admin, in central's
# own view, is an active admin it confirmed, and signed the disabling with their own key at the
# station that sends it (console.users_admin). Otherwise nothing changes, and the refusal is kept.
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
    copied = op.get_bind().exec_driver_sql(
        "SELECT public_key FROM approver_keys GROUP BY public_key HAVING count(*) > 1 LIMIT 1").first()
    if copied is not None:
        raise RuntimeError("two approver keys share one public key (a station copied another's): revoke the copy "
                           "(`returns-console central keys list` shows both; keep the one its supervisor confirmed), "
                           "delete its row, then run `returns-console central init` again")
    op.create_index('uq_approver_keys_public_key', 'approver_keys', ['public_key'], unique=True)
    with op.batch_alter_table('claims') as batch:
        batch.add_column(sa.Column('signature', sa.JSON(), nullable=True))
    op.create_table(
        'refused_verdicts',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('subject', sa.String(length=20), nullable=False),
        sa.Column('subject_key', sa.String(length=60), nullable=False),
        sa.Column('station_id', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('sent', sa.JSON(), nullable=False),
        sa.Column('detected_at', UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("subject IN ('claim', 'user_disabled')", name=op.f('ck_refused_verdicts_subject')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refused_verdicts')),
    )
    op.create_index('ix_refused_verdicts_detected_at', 'refused_verdicts', ['detected_at'])
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    from importlib import import_module

    pinned = import_module("db.migrations.versions.0009_central_authority").pinned
    # Central's own bookkeeping of the decisions whose sums are yet to be checked (see RC_SUMS_DUE):
    # rows live only inside the transaction that wrote them.
    op.execute("CREATE TABLE rc_sums_due (id bigserial PRIMARY KEY, decisions uuid[] NOT NULL)")
    for sql in (RC_REFUNDS_WITHIN_PAID, RC_SUMS_DUE, RC_DECISION_SUMS, RC_KEY_PROBLEM, CLAIMS_CENTRAL,
                RC_DISABLE_USER):
        op.execute(pinned(sql))
    op.execute("DROP FUNCTION IF EXISTS rc_disable_user(integer, integer)")
    op.execute("REVOKE ALL ON FUNCTION rc_disable_user(integer, integer, json) FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION rc_key_problem(integer, text, json, text) FROM PUBLIC")
    op.execute("CREATE TRIGGER decision_lines_within_paid AFTER INSERT ON decision_lines REFERENCING NEW TABLE AS added "
               "FOR EACH STATEMENT EXECUTE FUNCTION rc_refunds_within_paid()")
    op.execute("CREATE TRIGGER decision_lines_within_paid_update AFTER UPDATE ON decision_lines "
               "REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION rc_refunds_within_paid()")
    op.execute("CREATE TRIGGER decisions_sums_due AFTER INSERT ON decisions REFERENCING NEW TABLE AS added "
               "FOR EACH STATEMENT EXECUTE FUNCTION rc_sums_due()")
    op.execute("CREATE CONSTRAINT TRIGGER rc_decision_sums AFTER INSERT ON rc_sums_due DEFERRABLE INITIALLY DEFERRED "
               "FOR EACH ROW EXECUTE FUNCTION rc_decision_sums()")
    # Named to sort before claims_change_xid and claims_four_eyes, which see what it leaves.
    op.execute("CREATE TRIGGER claims_central BEFORE INSERT OR UPDATE ON claims "
               "FOR EACH ROW EXECUTE FUNCTION claims_central()")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        from importlib import import_module

        pinned = import_module("db.migrations.versions.0009_central_authority").pinned
        old = import_module("db.migrations.versions.0009_central_authority").RC_DISABLE_USER
        op.execute("DROP TRIGGER IF EXISTS claims_central ON claims")
        op.execute("DROP TRIGGER IF EXISTS decisions_sums_due ON decisions")
        op.execute("DROP TABLE IF EXISTS rc_sums_due")
        op.execute("DROP TRIGGER IF EXISTS decision_lines_within_paid_update ON decision_lines")
        op.execute("DROP TRIGGER IF EXISTS decision_lines_within_paid ON decision_lines")
        op.execute("DROP FUNCTION IF EXISTS rc_disable_user(integer, integer, json)")
        op.execute(pinned(old))
        op.execute("REVOKE ALL ON FUNCTION rc_disable_user(integer, integer) FROM PUBLIC")
        for name in ("claims_central()", "rc_key_problem(integer, text, json, text)", "rc_decision_sums()", "rc_sums_due()",
                     "rc_refunds_within_paid()"):
            op.execute(f"DROP FUNCTION IF EXISTS {name}")
    op.drop_index('ix_refused_verdicts_detected_at', table_name='refused_verdicts')
    op.drop_table('refused_verdicts')
    old_sqlite = bind.dialect.name == 'sqlite' and (bind.dialect.server_version_info or (0,)) < (3, 35)
    with op.batch_alter_table('claims', recreate='auto' if old_sqlite else 'never') as batch:
        batch.drop_column('signature')
    op.drop_index('uq_approver_keys_public_key', table_name='approver_keys')
