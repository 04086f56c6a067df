"""The domain schema, shared by every station's SQLite database and the central database.

Reference data (customers, orders, shipments, RMAs) carries integer ids assigned centrally;
everything a station creates (receipts, inspections, decisions, ...) carries a client-generated
UUID so that it can be written offline and pushed to central idempotently.
Money columns are integer minor units beside a currency; times are UTC (see ``UTCDateTime``).
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    true,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.types import UTCDateTime, utcnow

# Stable constraint names: Alembic's batch mode on SQLite needs them to alter tables.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

GRADES = ("A", "B", "C", "D", "F")
ROLES = ("clerk", "associate", "supervisor", "admin")
DECISION_KINDS = ("full_refund", "partial_refund", "store_credit", "exchange", "deny")
DECISION_STATUSES = ("approved", "pending_review", "rejected", "superseded", "conflict")
DISPOSITIONS = ("restock", "refurbish", "outlet", "return_to_vendor", "recycle", "quarantine")
RMA_STATUSES = ("authorized", "received", "pending_review", "closed", "canceled", "expired")
RECEPTION_STATUSES = ("awaiting", "received", "missing", "not_required", "lost_in_transit")
ACCEPTANCE_STATUSES = ("pending", "accepted", "rejected", "manual_review")
CHANNELS = ("mail", "drop_off", "in_store", "keep_it")
CLAIM_KINDS = ("not_received", "damaged_in_transit", "missing_item", "wrong_item")
# waiting: to be sent (again) once next_attempt_at has passed; sending: handed to the printer
# now; printed; failed: the printer refused it for a reason retrying cannot fix (settings);
# uncertain: the console stopped while sending, so it may or may not have printed — only a
# person can tell, and only a person reprints it; cancelled.
PRINT_JOB_STATUSES = ("waiting", "sending", "printed", "failed", "uncertain", "cancelled")
# What central found when it applied a station's event (see db.push): a decision for an item
# another decision already settled (two stations deciding offline), or an approval central refused
# (four eyes, or an approver without the role at central).
SYNC_CONFLICT_KINDS = ("item_already_decided", "approval_refused")
APPROVER_ROLES = ("supervisor", "admin")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}
    if TYPE_CHECKING:
        # DeclarativeBase types it as any FromClause (a class may be mapped to a join or a select);
        # every model here names a __tablename__ and none inherits another, so each maps a Table.
        __table__: ClassVar[Table]


class Station(Base):
    __tablename__ = "stations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    site: Mapped[str] = mapped_column(String(40), default="WH1")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    last_synced_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    badge_hash: Mapped[str | None] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Central side: set when central first heard of the user from a station's event (which only
    # carries users so that the rows naming them can land). Such a copy is nobody central has
    # confirmed: it cannot approve anything until an admin does.
    created_from_station: Mapped[str | None] = mapped_column(String(40))


class Customer(Base):
    __tablename__ = "customers"
    # Linked identities: several accounts behind one delivery address (risk engine).
    __table_args__ = (Index("ix_customers_address_lower", func.lower(text("address"))),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), index=True)
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    loyalty_tier: Mapped[str] = mapped_column(String(20), default="standard")
    country: Mapped[str] = mapped_column(String(2), default="US")
    # Delivery address as printed, one line per line (for claim packets and exchange slips).
    address: Mapped[str | None] = mapped_column(Text)
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    returns_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("order_discount_minor >= 0 AND shipping_minor >= 0 AND shipping_tax_minor >= 0",
                        name="amounts"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="web")
    currency: Mapped[str] = mapped_column(String(3))
    placed_at: Mapped[datetime]
    order_discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_tax_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    payment_brand: Mapped[str | None] = mapped_column(String(20))
    payment_last4: Mapped[str | None] = mapped_column(String(4))
    # The payment processor's token for the card or wallet — never a card number. Several
    # accounts paying with one token are linked identities.
    payment_token: Mapped[str | None] = mapped_column(String(64), index=True)
    # Central side: the station whose copy this is, when central had no such order from the order
    # system (migration 0013); a decision refunding against it waits for a supervisor there.
    from_station: Mapped[str | None] = mapped_column(String(40))

    customer: Mapped[Customer] = relationship(lazy="joined")
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", order_by="OrderLine.line_no")
    shipments: Mapped[list[Shipment]] = relationship(back_populates="order")


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0 AND unit_price_minor >= 0 AND line_discount_minor >= 0 "
                        "AND tax_minor >= 0 AND weight_g >= 0", name="amounts"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(40))
    gtin: Mapped[str | None] = mapped_column(String(14))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    line_discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    weight_g: Mapped[int] = mapped_column(Integer, default=0)
    # Serial numbers shipped on this line, in unit order; matched when the units come back.
    serial_numbers: Mapped[list[Any]] = mapped_column(default=list)
    from_station: Mapped[str | None] = mapped_column(String(40))  # central side: as Order.from_station

    order: Mapped[Order] = relationship(back_populates="lines")


class Shipment(Base):
    __tablename__ = "shipments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(20))
    tracking_number: Mapped[str] = mapped_column(String(40), unique=True)
    shipped_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="delivered")
    weight_g: Mapped[int] = mapped_column(Integer, default=0)

    order: Mapped[Order] = relationship(back_populates="shipments")
    events: Mapped[list[CarrierEvent]] = relationship(order_by="CarrierEvent.occurred_at")


class CarrierEvent(Base):
    __tablename__ = "carrier_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    occurred_at: Mapped[datetime]
    code: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(120))


class ReturnAuthorization(Base):
    __tablename__ = "return_authorizations"
    __table_args__ = (
        CheckConstraint(_in("status", RMA_STATUSES), name="status"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="mail")
    status: Mapped[str] = mapped_column(String(20), default="authorized")
    reason_code: Mapped[str] = mapped_column(String(40))
    customer_comment: Mapped[str | None] = mapped_column(Text)
    return_carrier: Mapped[str | None] = mapped_column(String(20))
    return_tracking_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    # In-store returns: how the counter found the order — "code" (the receipt's or e-mail's code
    # scanned), "number" (typed from the receipt) or "search" (by e-mail, phone or name: the
    # customer had no receipt). None for returns by mail.
    order_found_by: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # When a station last changed the row: central takes a station's copy only if it is not older
    # than what it holds (an event sent late must not undo a later change from another bench).
    updated_at: Mapped[datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)

    order: Mapped[Order] = relationship()
    items: Mapped[list[ReturnItem]] = relationship(back_populates="rma", order_by="ReturnItem.id")
    closed_by: Mapped[User | None] = relationship()


class ReturnItem(Base):
    """One returned unit of an order line: received, accepted and reimbursed separately."""

    __tablename__ = "return_items"
    __table_args__ = (
        CheckConstraint(_in("reception_status", RECEPTION_STATUSES), name="reception_status"),
        CheckConstraint(_in("acceptance_status", ACCEPTANCE_STATUSES), name="acceptance_status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rma_id: Mapped[int] = mapped_column(ForeignKey("return_authorizations.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    reason_code: Mapped[str] = mapped_column(String(40))
    reception_status: Mapped[str] = mapped_column(String(20), default="awaiting")
    acceptance_status: Mapped[str] = mapped_column(String(20), default="pending")
    receipt_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("parcel_receipts.id"))
    received_serial: Mapped[str | None] = mapped_column(String(60))
    lpn: Mapped[str | None] = mapped_column(String(20), unique=True)
    updated_at: Mapped[datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)  # as the RMA's

    rma: Mapped[ReturnAuthorization] = relationship(back_populates="items")
    order_line: Mapped[OrderLine] = relationship(lazy="joined")


class ParcelReceipt(Base):
    __tablename__ = "parcel_receipts"
    __table_args__ = (
        CheckConstraint("weight_g IS NULL OR weight_g >= 0", name="weight"),
        # Today's parcels at a station (the history screen [F7]), without reading the whole table.
        Index("ix_parcel_receipts_station_received", "station_id", "received_at"),
        # The shelf of unidentified parcels: quarantined and not yet matched to an RMA.
        Index("ix_parcel_receipts_unidentified", "received_at",
              sqlite_where=text("quarantined_at IS NOT NULL AND identified_at IS NULL"),
              postgresql_where=text("quarantined_at IS NOT NULL AND identified_at IS NULL")),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    scanned_code: Mapped[str] = mapped_column(String(100))
    weight_g: Mapped[int | None] = mapped_column(Integer)
    weight_source: Mapped[str | None] = mapped_column(String(10))
    weight_reason: Mapped[str | None] = mapped_column(String(200))
    expected_weight_g: Mapped[int | None] = mapped_column(Integer)
    # The scale's division (its smallest step): the weight tolerance is at least two of them.
    scale_division_g: Mapped[int | None] = mapped_column(Integer)
    # Set when the parcel belongs to an order but to no RMA (returned to sender, say).
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    note: Mapped[str | None] = mapped_column(Text)
    # Paths of photos of the parcel as the station camera wrote them (unidentified parcels).
    photos: Mapped[list[Any] | None]
    # A parcel nothing could be found for waits in quarantine until it is matched to an RMA;
    # both times stay, so the row shows that it was once unidentified.
    quarantined_at: Mapped[datetime | None]
    identified_at: Mapped[datetime | None]

    @property
    def in_quarantine(self) -> bool:
        return self.quarantined_at is not None and self.identified_at is None


class ReceiptRma(Base):
    """One parcel may carry items of several RMAs (and so of several orders)."""

    __tablename__ = "receipt_rmas"
    receipt_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parcel_receipts.id"), primary_key=True)
    rma_id: Mapped[int] = mapped_column(ForeignKey("return_authorizations.id"), primary_key=True)


class ItemScan(Base):
    __tablename__ = "item_scans"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    receipt_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parcel_receipts.id"), index=True)
    return_item_id: Mapped[int | None] = mapped_column(ForeignKey("return_items.id"))
    code: Mapped[str] = mapped_column(String(100))
    result: Mapped[str] = mapped_column(String(30))
    message: Mapped[str | None] = mapped_column(String(300))
    scanned_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Taken back at the bench (Ctrl+Z) before the parcel was decided: kept, but no longer counts.
    undone_at: Mapped[datetime | None]


class Inspection(Base):
    __tablename__ = "inspections"
    __table_args__ = (CheckConstraint(_in("grade", GRADES), name="grade"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    return_item_id: Mapped[int] = mapped_column(ForeignKey("return_items.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    grade: Mapped[str] = mapped_column(String(1))
    checklist: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[Any]] = mapped_column(default=list)
    inspected_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Taken back at the bench (Ctrl+Z): the unit's grade is the latest inspection not undone.
    undone_at: Mapped[datetime | None]


class RiskAssessment(Base):
    __tablename__ = "risk_assessments"
    __table_args__ = (CheckConstraint("score BETWEEN 0 AND 100", name="score"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    rma_id: Mapped[int] = mapped_column(ForeignKey("return_authorizations.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    # [{"code": ..., "weight": ..., "message": "parcel weighs 120 g, expected 1,480 g"}]
    signals: Mapped[list[Any]] = mapped_column(default=list)
    rules_version: Mapped[str] = mapped_column(String(40))
    assessed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decision_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    outcome: Mapped[str | None] = mapped_column(String(20))  # auto | review | suggest_deny
    policy_version: Mapped[str | None] = mapped_column(String(40))
    # Every fact the signals were computed from (console.risk.RiskFacts): a later policy can be
    # back-tested on what was known at the bench, not on what the database says today.
    facts: Mapped[dict[str, Any] | None]


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_decided_by_at", "decided_by_id", "decided_at"),
        CheckConstraint(_in("kind", DECISION_KINDS), name="kind"),
        CheckConstraint(_in("status", DECISION_STATUSES), name="status"),
        CheckConstraint("amount_minor >= 0 AND store_credit_bonus_minor >= 0 AND shipping_refund_minor >= 0",
                        name="amounts"),
    )
    # Generated on the station: the idempotency key of every write that carries it.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    rma_id: Mapped[int | None] = mapped_column(ForeignKey("return_authorizations.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    store_credit_bonus_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Original outbound shipping paid back (policy: only when the return is the retailer's fault).
    shipping_refund_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    refund_method: Mapped[str | None] = mapped_column(String(30))
    exchange_sku: Mapped[str | None] = mapped_column(String(40))
    policy_version: Mapped[str] = mapped_column(String(40))
    # SHA-256 of the policy text it was decided under: central holds a decision whose text is not
    # the one central published under that version (migration 0010).
    policy_sha256: Mapped[str | None] = mapped_column(String(64))
    # What the policy proposed; a kind that differs is the clerk's override (employee-fraud signal).
    policy_kind: Mapped[str | None] = mapped_column(String(20))
    review_reasons: Mapped[list[Any]] = mapped_column(default=list)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("decisions.id"))
    note: Mapped[str | None] = mapped_column(Text)

    lines: Mapped[list[DecisionLine]] = relationship(back_populates="decision", cascade="all, delete-orphan")
    deductions: Mapped[list[Deduction]] = relationship(back_populates="decision", cascade="all, delete-orphan")
    decided_by: Mapped[User] = relationship()


class DecisionLine(Base):
    """What a decision does for one return item. ``active`` lines are the item's standing outcome:
    the partial unique index makes a second standing refund for the same item impossible."""

    __tablename__ = "decision_lines"
    __table_args__ = (
        CheckConstraint("paid_minor >= 0 AND refund_minor >= 0 AND refund_minor <= paid_minor", name="amounts"),
        Index("uq_decision_lines_active_item", "return_item_id", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )
    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decisions.id"), primary_key=True)
    return_item_id: Mapped[int] = mapped_column(ForeignKey("return_items.id"), primary_key=True)
    paid_minor: Mapped[int] = mapped_column(BigInteger)
    refund_minor: Mapped[int] = mapped_column(BigInteger)
    grade: Mapped[str | None] = mapped_column(String(1))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    decision: Mapped[Decision] = relationship(back_populates="lines")


class Deduction(Base):
    __tablename__ = "deductions"
    __table_args__ = (CheckConstraint("amount_minor >= 0", name="amount"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decisions.id"), index=True)
    return_item_id: Mapped[int | None] = mapped_column(ForeignKey("return_items.id"))
    code: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    decision: Mapped[Decision] = relationship(back_populates="deductions")


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (CheckConstraint(_in("verdict", ("approved", "partial", "rejected")), name="verdict"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decisions.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    verdict: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by central when it refuses the approval (then it has no effect); a trigger enforces four
    # eyes and the approver's role on every approval that is not refused (migration 0005).
    refused_reason: Mapped[str | None] = mapped_column(Text)
    # What the verdict sets on its case — status, kind, amount_minor, store_credit_bonus_minor and
    # each unit's refund ("lines": {return item id: minor}): central settles the case from this
    # (migration 0009), checked against what was paid; stations never update a decision there.
    settles: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The approver's proof (console.approval_signing): {"key": approver key id, "signed": the
    # canonical text of what the verdict says, "sig": its Ed25519 signature, base64}. Central
    # verifies it against the public key it confirmed (migration 0011).
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)


SIGNING_METHODS = ("pin", "badge")


class ApproverKey(Base):
    """A supervisor's public signing key, one per station and way of signing in (PIN or badge):
    enrolled at the station when that secret first opens nothing, sent to central, where it signs
    nothing until a central admin confirms it (``central keys confirm``)."""

    __tablename__ = "approver_keys"
    # One public key, one holder: a station that copies another's key (the feed serves them all)
    # under an id of its own is refused, and never stands in the way of confirming the real one.
    __table_args__ = (CheckConstraint(_in("method", SIGNING_METHODS), name="method"),
                      Index("uq_approver_keys_public_key", "public_key", unique=True))
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    method: Mapped[str] = mapped_column(String(10))
    public_key: Mapped[str] = mapped_column(String(64))  # raw Ed25519 public key, base64
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]  # station side: replaced (a new PIN or badge), its seal deleted
    # Central side, never taken from a station: who confirmed the key, and when it was revoked.
    confirmed_at: Mapped[datetime | None]
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]


class SealedKey(Base):
    """Station side only, never sent: an approver key's private half, sealed (ChaCha20-Poly1305)
    under a key derived from the PIN or badge with Argon2id. Without the secret it is noise."""

    __tablename__ = "sealed_keys"
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("approver_keys.id"), primary_key=True)
    seal: Mapped[dict[str, Any]] = mapped_column(JSON)


class SyncConflict(Base):
    """Central side: an event that could not be applied as the station meant it. The station's rows
    are kept (a losing decision as ``conflict``, its lines inactive) and the case waits for review."""

    __tablename__ = "sync_conflicts"
    __table_args__ = (
        CheckConstraint(_in("kind", SYNC_CONFLICT_KINDS), name="kind"),
        Index("ix_sync_conflicts_open", "detected_at", sqlite_where=text("resolved_at IS NULL"),
              postgresql_where=text("resolved_at IS NULL")),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(30))
    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decisions.id"), index=True)
    return_item_id: Mapped[int | None] = mapped_column(ForeignKey("return_items.id"))
    # The decision that already holds the item (item_already_decided).
    other_decision_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    approval_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    station_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(Text)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (CheckConstraint(_in("kind", CLAIM_KINDS), name="kind"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id"))
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="open")
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outcome: Mapped[str | None] = mapped_column(String(20))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The supervisor's verdict (console.claim_review); never the person who made the claim
    # (a trigger holds that, migration 0008). A user id without a foreign key, as in the audit
    # trail: SQLite could then not drop the column again on a downgrade without rebuilding claims.
    settled_by_id: Mapped[int | None] = mapped_column(Integer)
    settled_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    # The supervisor's proof of the verdict (console.approval_signing), which central checks
    # (migration 0012): key, signed text, signature.
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Disposition(Base):
    __tablename__ = "dispositions"
    __table_args__ = (CheckConstraint(_in("kind", DISPOSITIONS), name="kind"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    return_item_id: Mapped[int] = mapped_column(ForeignKey("return_items.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    lpn: Mapped[str] = mapped_column(String(20))
    bin_hint: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only; each row's hash covers the previous row's, so an edited history shows."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("station_id", "seq", name="uq_audit_events_station_seq"),
                      Index("ix_audit_events_station_action_seq", "station_id", "action", "seq"))
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Position in this station's chain; central holds every station's chain side by side.
    seq: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    station_id: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(60))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class RiskBaseline(Base):
    """A figure over all customers that a signal compares one customer with (the return rate of
    the last twelve months): counting it reads every order, so it is computed at most once a day
    and kept here instead of on every assessment."""

    __tablename__ = "risk_baselines"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    numerator: Mapped[int] = mapped_column(BigInteger)
    denominator: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime]


class ReviewLimit(Base):
    """Station side: the policy's always-review amount per currency, as the station runs it; a
    trigger (migration 0008) refuses an approved refund at or above it written without review."""

    __tablename__ = "review_limits"
    station_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    policy_version: Mapped[str] = mapped_column(String(40))


class PolicyVersion(Base):
    __tablename__ = "policy_versions"
    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    activated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Central side, set only for a version central published (``central publish-policy``): the
    # text's SHA-256 and the rules central re-decides review by (migration 0010).
    sha256: Mapped[str | None] = mapped_column(String(64))
    review_limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # always-review amount per currency
    review_at_or_above: Mapped[int | None] = mapped_column(Integer)  # the risk score that needs review


class OutboxRow(Base):
    """Station side: what still has to reach central. Written in the same transaction as the
    change it carries; marked sent only after central has committed it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "id", sqlite_where=text("sent_at IS NULL"),
                            postgresql_where=text("sent_at IS NULL")),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(40))
    aggregate_id: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]


class SyncCursor(Base):
    """Station side: how far the pull from central's change feed got, per table — the last
    (transaction id, key) applied. Written in the same transaction as the rows it covers, so a
    pull cut off by a crash resumes exactly where it stopped."""

    __tablename__ = "sync_cursors"
    table_name: Mapped[str] = mapped_column(String(60), primary_key=True)
    xid: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(80))
    pulled_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncRefetch(Base):
    """Station side: rows a pull passed over because the station had unpushed changes to them;
    read again by key from central once those changes have gone out (the cursor has moved on)."""

    __tablename__ = "sync_refetch"
    table_name: Mapped[str] = mapped_column(String(60), primary_key=True)
    key: Mapped[str] = mapped_column(String(80), primary_key=True)


class StationCredential(Base):
    """Central side: the database login role that speaks for a station (``central station add``).
    A revoked one can no longer log in; the row stays, so its past writes still name the station."""

    __tablename__ = "station_credentials"
    role_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(40), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


STATION_REFUSAL_KINDS = ("other_station", "audit_collision")


class StationRefusal(Base):
    """Central side: a row central would not take from a station, kept as sent: an audit row that
    claims another station's chain, or one at a position (or under an id) central already holds
    with another hash. ``audit verify --central`` reports them; real rows are never skipped."""

    __tablename__ = "station_refusals"
    __table_args__ = (CheckConstraint(_in("kind", STATION_REFUSAL_KINDS), name="kind"),
                      Index("ix_station_refusals_station_id", "station_id", "seq"))
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(30))
    station_id: Mapped[str] = mapped_column(String(40))  # whose row it claims to be
    pushed_by: Mapped[str | None] = mapped_column(String(40))  # the station whose session sent it
    table_name: Mapped[str] = mapped_column(String(40))
    row_key: Mapped[str] = mapped_column(String(60))
    seq: Mapped[int | None] = mapped_column(Integer)
    sent: Mapped[dict[str, Any]] = mapped_column(JSON)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)


REFUSED_VERDICT_SUBJECTS = ("claim", "user_disabled")


class RefusedVerdict(Base):
    """Central side: a claim's verdict or a user's disabling that a station sent without its
    maker's proof (or with one that does not hold), kept as sent with central's reason; central
    kept the claim waiting, the user as they were (migration 0012)."""

    __tablename__ = "refused_verdicts"
    __table_args__ = (CheckConstraint(_in("subject", REFUSED_VERDICT_SUBJECTS), name="subject"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subject: Mapped[str] = mapped_column(String(20))
    subject_key: Mapped[str] = mapped_column(String(60))  # the claim's id, the user's id
    station_id: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    sent: Mapped[dict[str, Any]] = mapped_column(JSON)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AppliedEvent(Base):
    """Central side: every outbox event applied, so a re-push of the same event is a no-op."""

    __tablename__ = "applied_events"
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40))
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)


class PrintJob(Base):
    """Station side: a document to print, stored before it is sent so that a dead printer or a
    restart never loses it, and stored with its bytes so that a reprint is the same document."""

    __tablename__ = "print_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", PRINT_JOB_STATUSES), name="status"),
        CheckConstraint("copies BETWEEN 1 AND 99", name="copies"),
        Index("ix_print_jobs_due", "next_attempt_at", sqlite_where=text("status = 'waiting'"),
              postgresql_where=text("status = 'waiting'")),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    station_id: Mapped[str] = mapped_column(String(40))
    document: Mapped[str] = mapped_column(String(30))  # disposition-label, lpn-sticker, ...
    reference: Mapped[str] = mapped_column(String(60), index=True)  # the LPN, RMA or claim it is for
    printer: Mapped[str] = mapped_column(String(60))
    format: Mapped[str] = mapped_column(String(10))  # pdf, zpl, escpos
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    copies: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(12), default="waiting")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(String(200))  # what the printer backend reported
    requested_by_id: Mapped[int | None] = mapped_column(Integer)
    reprint_of: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    printed_at: Mapped[datetime | None]
