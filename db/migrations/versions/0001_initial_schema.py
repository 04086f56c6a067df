"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 23:15:27.030143
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import db.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('applied_events',
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('station_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('applied_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_applied_events'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('occurred_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('station_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('entity', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.String(length=60), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('station_id', 'seq', name='uq_audit_events_station_seq')
    )
    op.create_table('customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('loyalty_tier', sa.String(length=20), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('orders_count', sa.Integer(), nullable=False),
    sa.Column('returns_count', sa.Integer(), nullable=False),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_phone'), ['phone'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('aggregate_id', sa.String(length=60), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_pending', ['id'], unique=False, sqlite_where=sa.text('sent_at IS NULL'), postgresql_where=sa.text('sent_at IS NULL'))

    op.create_table('policy_versions',
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('activated_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_policy_versions'))
    )
    op.create_table('stations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('last_synced_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stations'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('badge_hash', sa.String(length=200), nullable=True),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('clerk', 'associate', 'supervisor', 'admin')", name=op.f('ck_users_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('placed_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('order_discount_minor', sa.BigInteger(), nullable=False),
    sa.Column('shipping_minor', sa.BigInteger(), nullable=False),
    sa.Column('shipping_tax_minor', sa.BigInteger(), nullable=False),
    sa.Column('payment_brand', sa.String(length=20), nullable=True),
    sa.Column('payment_last4', sa.String(length=4), nullable=True),
    sa.CheckConstraint('order_discount_minor >= 0 AND shipping_minor >= 0 AND shipping_tax_minor >= 0', name=op.f('ck_orders_amounts')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_orders_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('number', name=op.f('uq_orders_number'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_customer_id'), ['customer_id'], unique=False)

    op.create_table('order_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=40), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_minor', sa.BigInteger(), nullable=False),
    sa.Column('line_discount_minor', sa.BigInteger(), nullable=False),
    sa.Column('tax_minor', sa.BigInteger(), nullable=False),
    sa.Column('weight_g', sa.Integer(), nullable=False),
    sa.Column('serial_numbers', sa.JSON(), nullable=False),
    sa.CheckConstraint('quantity > 0 AND unit_price_minor >= 0 AND line_discount_minor >= 0 AND tax_minor >= 0 AND weight_g >= 0', name=op.f('ck_order_lines_amounts')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_lines_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_lines'))
    )
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_lines_order_id'), ['order_id'], unique=False)

    op.create_table('parcel_receipts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('station_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('received_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('scanned_code', sa.String(length=100), nullable=False),
    sa.Column('weight_g', sa.Integer(), nullable=True),
    sa.Column('weight_source', sa.String(length=10), nullable=True),
    sa.Column('weight_reason', sa.String(length=200), nullable=True),
    sa.Column('expected_weight_g', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint('weight_g IS NULL OR weight_g >= 0', name=op.f('ck_parcel_receipts_weight')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_parcel_receipts_order_id_orders')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_parcel_receipts_station_id_stations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_parcel_receipts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parcel_receipts'))
    )
    op.create_table('return_authorizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason_code', sa.String(length=40), nullable=False),
    sa.Column('customer_comment', sa.Text(), nullable=True),
    sa.Column('return_carrier', sa.String(length=20), nullable=True),
    sa.Column('return_tracking_number', sa.String(length=40), nullable=True),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("channel IN ('mail', 'drop_off', 'in_store', 'keep_it')", name=op.f('ck_return_authorizations_channel')),
    sa.CheckConstraint("status IN ('authorized', 'received', 'pending_review', 'closed', 'canceled', 'expired')", name=op.f('ck_return_authorizations_status')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_return_authorizations_closed_by_id_users')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_return_authorizations_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_return_authorizations')),
    sa.UniqueConstraint('number', name=op.f('uq_return_authorizations_number')),
    sa.UniqueConstraint('return_tracking_number', name=op.f('uq_return_authorizations_return_tracking_number'))
    )
    with op.batch_alter_table('return_authorizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_authorizations_order_id'), ['order_id'], unique=False)

    op.create_table('shipments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('carrier', sa.String(length=20), nullable=False),
    sa.Column('tracking_number', sa.String(length=40), nullable=False),
    sa.Column('shipped_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('weight_g', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_shipments_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments')),
    sa.UniqueConstraint('tracking_number', name=op.f('uq_shipments_tracking_number'))
    )
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shipments_order_id'), ['order_id'], unique=False)

    op.create_table('carrier_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('location', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_carrier_events_shipment_id_shipments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carrier_events'))
    )
    with op.batch_alter_table('carrier_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_carrier_events_shipment_id'), ['shipment_id'], unique=False)

    op.create_table('claims',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('not_received', 'damaged_in_transit', 'missing_item', 'wrong_item')", name=op.f('ck_claims_kind')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_claims_created_by_id_users')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_claims_order_id_orders')),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_claims_shipment_id_shipments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claims'))
    )
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claims_order_id'), ['order_id'], unique=False)

    op.create_table('decisions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('rma_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('store_credit_bonus_minor', sa.BigInteger(), nullable=False),
    sa.Column('shipping_refund_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('refund_method', sa.String(length=30), nullable=True),
    sa.Column('exchange_sku', sa.String(length=40), nullable=True),
    sa.Column('policy_version', sa.String(length=40), nullable=False),
    sa.Column('review_reasons', sa.JSON(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=False),
    sa.Column('station_id', sa.String(length=40), nullable=False),
    sa.Column('decided_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('supersedes_id', sa.Uuid(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("kind IN ('full_refund', 'partial_refund', 'store_credit', 'exchange', 'deny')", name=op.f('ck_decisions_kind')),
    sa.CheckConstraint("status IN ('approved', 'pending_review', 'rejected', 'superseded', 'conflict')", name=op.f('ck_decisions_status')),
    sa.CheckConstraint('amount_minor >= 0 AND store_credit_bonus_minor >= 0 AND shipping_refund_minor >= 0', name=op.f('ck_decisions_amounts')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_decisions_decided_by_id_users')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_decisions_order_id_orders')),
    sa.ForeignKeyConstraint(['rma_id'], ['return_authorizations.id'], name=op.f('fk_decisions_rma_id_return_authorizations')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_decisions_station_id_stations')),
    sa.ForeignKeyConstraint(['supersedes_id'], ['decisions.id'], name=op.f('fk_decisions_supersedes_id_decisions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_decisions_rma_id'), ['rma_id'], unique=False)

    op.create_table('receipt_rmas',
    sa.Column('receipt_id', sa.Uuid(), nullable=False),
    sa.Column('rma_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['receipt_id'], ['parcel_receipts.id'], name=op.f('fk_receipt_rmas_receipt_id_parcel_receipts')),
    sa.ForeignKeyConstraint(['rma_id'], ['return_authorizations.id'], name=op.f('fk_receipt_rmas_rma_id_return_authorizations')),
    sa.PrimaryKeyConstraint('receipt_id', 'rma_id', name=op.f('pk_receipt_rmas'))
    )
    op.create_table('return_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rma_id', sa.Integer(), nullable=False),
    sa.Column('order_line_id', sa.Integer(), nullable=False),
    sa.Column('reason_code', sa.String(length=40), nullable=False),
    sa.Column('reception_status', sa.String(length=20), nullable=False),
    sa.Column('acceptance_status', sa.String(length=20), nullable=False),
    sa.Column('receipt_id', sa.Uuid(), nullable=True),
    sa.Column('received_serial', sa.String(length=60), nullable=True),
    sa.Column('lpn', sa.String(length=20), nullable=True),
    sa.CheckConstraint("acceptance_status IN ('pending', 'accepted', 'rejected', 'manual_review')", name=op.f('ck_return_items_acceptance_status')),
    sa.CheckConstraint("reception_status IN ('awaiting', 'received', 'missing', 'not_required', 'lost_in_transit')", name=op.f('ck_return_items_reception_status')),
    sa.ForeignKeyConstraint(['order_line_id'], ['order_lines.id'], name=op.f('fk_return_items_order_line_id_order_lines')),
    sa.ForeignKeyConstraint(['receipt_id'], ['parcel_receipts.id'], name=op.f('fk_return_items_receipt_id_parcel_receipts')),
    sa.ForeignKeyConstraint(['rma_id'], ['return_authorizations.id'], name=op.f('fk_return_items_rma_id_return_authorizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_return_items')),
    sa.UniqueConstraint('lpn', name=op.f('uq_return_items_lpn'))
    )
    with op.batch_alter_table('return_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_items_order_line_id'), ['order_line_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_return_items_rma_id'), ['rma_id'], unique=False)

    op.create_table('risk_assessments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('rma_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('signals', sa.JSON(), nullable=False),
    sa.Column('rules_version', sa.String(length=40), nullable=False),
    sa.Column('assessed_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score BETWEEN 0 AND 100', name=op.f('ck_risk_assessments_score')),
    sa.ForeignKeyConstraint(['rma_id'], ['return_authorizations.id'], name=op.f('fk_risk_assessments_rma_id_return_authorizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_assessments'))
    )
    with op.batch_alter_table('risk_assessments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_assessments_rma_id'), ['rma_id'], unique=False)

    op.create_table('approvals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('decision_id', sa.Uuid(), nullable=False),
    sa.Column('supervisor_id', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.String(length=20), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('decided_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("verdict IN ('approved', 'partial', 'rejected')", name=op.f('ck_approvals_verdict')),
    sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], name=op.f('fk_approvals_decision_id_decisions')),
    sa.ForeignKeyConstraint(['supervisor_id'], ['users.id'], name=op.f('fk_approvals_supervisor_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approvals'))
    )
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approvals_decision_id'), ['decision_id'], unique=False)

    op.create_table('decision_lines',
    sa.Column('decision_id', sa.Uuid(), nullable=False),
    sa.Column('return_item_id', sa.Integer(), nullable=False),
    sa.Column('paid_minor', sa.BigInteger(), nullable=False),
    sa.Column('refund_minor', sa.BigInteger(), nullable=False),
    sa.Column('grade', sa.String(length=1), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.CheckConstraint('paid_minor >= 0 AND refund_minor >= 0 AND refund_minor <= paid_minor', name=op.f('ck_decision_lines_amounts')),
    sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], name=op.f('fk_decision_lines_decision_id_decisions')),
    sa.ForeignKeyConstraint(['return_item_id'], ['return_items.id'], name=op.f('fk_decision_lines_return_item_id_return_items')),
    sa.PrimaryKeyConstraint('decision_id', 'return_item_id', name=op.f('pk_decision_lines'))
    )
    with op.batch_alter_table('decision_lines', schema=None) as batch_op:
        batch_op.create_index('uq_decision_lines_active_item', ['return_item_id'], unique=True, sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))

    op.create_table('deductions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('decision_id', sa.Uuid(), nullable=False),
    sa.Column('return_item_id', sa.Integer(), nullable=True),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_minor >= 0', name=op.f('ck_deductions_amount')),
    sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], name=op.f('fk_deductions_decision_id_decisions')),
    sa.ForeignKeyConstraint(['return_item_id'], ['return_items.id'], name=op.f('fk_deductions_return_item_id_return_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deductions'))
    )
    with op.batch_alter_table('deductions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deductions_decision_id'), ['decision_id'], unique=False)

    op.create_table('dispositions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('return_item_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('lpn', sa.String(length=20), nullable=False),
    sa.Column('bin_hint', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('station_id', sa.String(length=40), nullable=False),
    sa.Column('decided_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('restock', 'refurbish', 'outlet', 'return_to_vendor', 'recycle', 'quarantine')", name=op.f('ck_dispositions_kind')),
    sa.ForeignKeyConstraint(['return_item_id'], ['return_items.id'], name=op.f('fk_dispositions_return_item_id_return_items')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_dispositions_station_id_stations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_dispositions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispositions'))
    )
    with op.batch_alter_table('dispositions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispositions_return_item_id'), ['return_item_id'], unique=False)

    op.create_table('inspections',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('return_item_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('station_id', sa.String(length=40), nullable=False),
    sa.Column('grade', sa.String(length=1), nullable=False),
    sa.Column('checklist', sa.JSON(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('photos', sa.JSON(), nullable=False),
    sa.Column('inspected_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("grade IN ('A', 'B', 'C', 'D', 'F')", name=op.f('ck_inspections_grade')),
    sa.ForeignKeyConstraint(['return_item_id'], ['return_items.id'], name=op.f('fk_inspections_return_item_id_return_items')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_inspections_station_id_stations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_inspections_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspections'))
    )
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inspections_return_item_id'), ['return_item_id'], unique=False)

    op.create_table('item_scans',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('receipt_id', sa.Uuid(), nullable=False),
    sa.Column('return_item_id', sa.Integer(), nullable=True),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('result', sa.String(length=30), nullable=False),
    sa.Column('message', sa.String(length=300), nullable=True),
    sa.Column('scanned_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['receipt_id'], ['parcel_receipts.id'], name=op.f('fk_item_scans_receipt_id_parcel_receipts')),
    sa.ForeignKeyConstraint(['return_item_id'], ['return_items.id'], name=op.f('fk_item_scans_return_item_id_return_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_scans'))
    )
    with op.batch_alter_table('item_scans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_scans_receipt_id'), ['receipt_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('item_scans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_scans_receipt_id'))

    op.drop_table('item_scans')
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inspections_return_item_id'))

    op.drop_table('inspections')
    with op.batch_alter_table('dispositions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispositions_return_item_id'))

    op.drop_table('dispositions')
    with op.batch_alter_table('deductions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deductions_decision_id'))

    op.drop_table('deductions')
    with op.batch_alter_table('decision_lines', schema=None) as batch_op:
        batch_op.drop_index('uq_decision_lines_active_item', sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))

    op.drop_table('decision_lines')
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approvals_decision_id'))

    op.drop_table('approvals')
    with op.batch_alter_table('risk_assessments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_assessments_rma_id'))

    op.drop_table('risk_assessments')
    with op.batch_alter_table('return_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_items_rma_id'))
        batch_op.drop_index(batch_op.f('ix_return_items_order_line_id'))

    op.drop_table('return_items')
    op.drop_table('receipt_rmas')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_rma_id'))
        batch_op.drop_index(batch_op.f('ix_decisions_order_id'))

    op.drop_table('decisions')
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claims_order_id'))

    op.drop_table('claims')
    with op.batch_alter_table('carrier_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_carrier_events_shipment_id'))

    op.drop_table('carrier_events')
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shipments_order_id'))

    op.drop_table('shipments')
    with op.batch_alter_table('return_authorizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_authorizations_order_id'))

    op.drop_table('return_authorizations')
    op.drop_table('parcel_receipts')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_lines_order_id'))

    op.drop_table('order_lines')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_customer_id'))

    op.drop_table('orders')
    op.drop_table('users')
    op.drop_table('stations')
    op.drop_table('policy_versions')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending', sqlite_where=sa.text('sent_at IS NULL'), postgresql_where=sa.text('sent_at IS NULL'))

    op.drop_table('outbox')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_phone'))
        batch_op.drop_index(batch_op.f('ix_customers_email'))

    op.drop_table('customers')
    op.drop_table('audit_events')
    op.drop_table('applied_events')

