"""central owns the policy: versions it publishes (their text's SHA-256 and review rules), the text
each decision was made under, and central re-deciding what needs review (PostgreSQL)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# A decision that arrives approved waits for review at central instead when central's own rules
# say it needed a supervisor: its own review reasons say so; or central publishes its policy and
# did not publish this version with this text; or it refunds at or above the always-review
# amount of the version central published. The reason is added to the decision's review reasons,
# for the supervisor. (Replaces 0009's function of the same name.)
DECISIONS_CENTRAL_REVIEW = """
CREATE OR REPLACE FUNCTION decisions_central_review() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  UPDATE decisions d SET status = 'pending_review',
         review_reasons = (COALESCE(d.review_reasons, '[]'::json)::jsonb || to_jsonb(h.why))::json
    FROM (SELECT a.id, CASE
            WHEN json_array_length(COALESCE(a.review_reasons, '[]'::json)) > 0 THEN
              'held at central: approved at the bench although it waits for a supervisor''s review'
            WHEN p.version IS NULL AND EXISTS (SELECT 1 FROM policy_versions q WHERE q.sha256 IS NOT NULL) THEN
              format('held at central: policy %s is not a version central published', a.policy_version)
            WHEN p.version IS NOT NULL AND a.policy_sha256 IS DISTINCT FROM p.sha256 THEN
              format('held at central: the station''s policy %s is not the text central published', a.policy_version)
            WHEN a.kind IN ('full_refund', 'partial_refund', 'store_credit')
                 AND (p.review_limits ->> a.currency)::bigint <= a.amount_minor THEN
              format('held at central: %s %s is at or above the always-review amount of policy %s',
                     a.currency, a.amount_minor, a.policy_version)
          END AS why
          FROM added a LEFT JOIN policy_versions p ON p.version = a.policy_version AND p.sha256 IS NOT NULL
          WHERE a.status = 'approved') AS h
    WHERE d.id = h.id AND h.why IS NOT NULL;
  RETURN NULL;
END $$
"""

# The station's risk score at or above the review threshold of the version central published,
# on a decision approved at the bench that no accepted approval settled: central holds it too.
RISK_CENTRAL_REVIEW = """
CREATE OR REPLACE FUNCTION risk_central_review() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  UPDATE decisions d SET status = 'pending_review',
         review_reasons = (COALESCE(d.review_reasons, '[]'::json)::jsonb || to_jsonb(format(
           'held at central: risk %s is at or above the review threshold %s of policy %s',
           r.score, p.review_at_or_above, p.version)))::json
    FROM added r JOIN policy_versions p ON p.version = r.policy_version AND p.sha256 IS NOT NULL
    WHERE d.id = r.decision_id AND d.status = 'approved' AND r.score >= p.review_at_or_above
      AND NOT EXISTS (SELECT 1 FROM approvals x WHERE x.decision_id = d.id AND x.refused_reason IS NULL);
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    with op.batch_alter_table('policy_versions') as batch:
        # Set only where central published the version (`central publish-policy`).
        batch.add_column(sa.Column('sha256', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('review_limits', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('review_at_or_above', sa.Integer(), nullable=True))
    with op.batch_alter_table('decisions') as batch:
        batch.add_column(sa.Column('policy_sha256', sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name != 'postgresql':
        return
    from importlib import import_module

    pinned = import_module("db.migrations.versions.0009_central_authority").pinned
    op.execute(pinned(DECISIONS_CENTRAL_REVIEW))
    op.execute(pinned(RISK_CENTRAL_REVIEW))
    op.execute("CREATE TRIGGER risk_assessments_central_review AFTER INSERT ON risk_assessments "
               "REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION risk_central_review()")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS risk_assessments_central_review ON risk_assessments")
        op.execute("DROP FUNCTION IF EXISTS risk_central_review()")
        # 0009's rule again: the decision's own review reasons only.
        op.execute("""
CREATE OR REPLACE FUNCTION decisions_central_review() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  UPDATE decisions d SET status = 'pending_review' FROM added a
    WHERE d.id = a.id AND a.status = 'approved' AND json_array_length(COALESCE(a.review_reasons, '[]'::json)) > 0;
  RETURN NULL;
END $$""")
    old_sqlite = bind.dialect.name == 'sqlite' and (bind.dialect.server_version_info or (0,)) < (3, 35)
    with op.batch_alter_table('decisions', recreate='auto' if old_sqlite else 'never') as batch:
        batch.drop_column('policy_sha256')
    with op.batch_alter_table('policy_versions', recreate='auto' if old_sqlite else 'never') as batch:
        batch.drop_column('review_at_or_above')
        batch.drop_column('review_limits')
        batch.drop_column('sha256')
