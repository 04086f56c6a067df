"""the station's print queue; customers' delivery addresses

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

STATUSES = "status IN ('waiting', 'sending', 'printed', 'failed', 'uncertain', 'cancelled')"


def upgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('address', sa.Text(), nullable=True))
    op.create_table(
        'print_jobs',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('station_id', sa.String(length=40), nullable=False),
        sa.Column('document', sa.String(length=30), nullable=False),
        sa.Column('reference', sa.String(length=60), nullable=False),
        sa.Column('printer', sa.String(length=60), nullable=False),
        sa.Column('format', sa.String(length=10), nullable=False),
        sa.Column('payload', sa.LargeBinary(), nullable=False),
        sa.Column('copies', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('result', sa.String(length=200), nullable=True),
        sa.Column('requested_by_id', sa.Integer(), nullable=True),
        sa.Column('reprint_of', sa.Uuid(), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('printed_at', UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(STATUSES, name=op.f('ck_print_jobs_status')),
        sa.CheckConstraint('copies BETWEEN 1 AND 99', name=op.f('ck_print_jobs_copies')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_print_jobs')),
    )
    op.create_index(op.f('ix_print_jobs_reference'), 'print_jobs', ['reference'])
    op.create_index('ix_print_jobs_due', 'print_jobs', ['next_attempt_at'],
                    sqlite_where=sa.text("status = 'waiting'"), postgresql_where=sa.text("status = 'waiting'"))


def downgrade() -> None:
    op.drop_index('ix_print_jobs_due', table_name='print_jobs')
    op.drop_index(op.f('ix_print_jobs_reference'), table_name='print_jobs')
    op.drop_table('print_jobs')
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('address')
