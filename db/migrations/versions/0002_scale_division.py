"""parcel receipts keep the scale division their weight was read with

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('parcel_receipts') as batch:
        batch.add_column(sa.Column('scale_division_g', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('parcel_receipts') as batch:
        batch.drop_column('scale_division_g')
