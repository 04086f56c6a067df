"""Small, explicit station databases for service tests (the demo generator is tested on its own)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from console.approval_signing import Signer, may_sign, new_signer
from console.context import Actor, StationContext
from console.policy import Policy, load_policy
from db.engine import make_engine
from db.migrate import upgrade
from db.models import Customer, Order, OrderLine, ReturnAuthorization, ReturnItem, Shipment, Station, User
from db.uow import UnitOfWork
from console.codes import rma_number

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    engine: Engine
    clock: Clock
    policy: Policy
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    actor: Actor = field(default_factory=lambda: Actor(1, "aiko", "Aiko", "clerk"))
    station_id: str = "WH1-01"

    def uow(self) -> UnitOfWork:
        return UnitOfWork.for_engine(self.engine)

    signers: dict[int, Signer] = field(default_factory=dict)

    def ctx(self, actor: Actor | None = None) -> StationContext:
        actor = actor or self.actor
        if actor.signer is None and may_sign(actor.role):
            # As if they had signed in with their PIN: an approver's key, one per person and world
            # (tests of the sign-in itself go through console.signin).
            signer = self.signers.setdefault(actor.user_id, new_signer(actor.user_id, self.station_id))
            actor = Actor(actor.user_id, actor.username, actor.display_name, actor.role, signer)
        return StationContext(self.station_id, self.zone, self.policy, actor, self.clock)


def make_world(path: Path, zone: str = "UTC", *, station_id: str = "WH1-01") -> World:
    engine = make_engine(str(path))
    upgrade(engine)
    world = World(engine, Clock(), load_policy(), ZoneInfo(zone), station_id=station_id)
    with world.uow() as uow:
        uow.session.add(Station(id=station_id, name="Bench 1" if station_id == "WH1-01" else f"Bench {station_id}",
                                time_zone=zone))
        uow.session.add_all([
            User(id=1, username="aiko", display_name="Aiko", role="clerk", password_hash="x"),
            User(id=2, username="mei", display_name="Mei", role="supervisor", password_hash="x"),
        ])
        uow.commit()
    return world


@dataclass(frozen=True)
class LineSpec:
    sku: str
    price: int
    quantity: int = 1
    category: str = "apparel"
    gtin: str | None = None
    discount: int = 0
    tax: int = 0
    weight_g: int = 500
    serials: tuple[str, ...] = ()


_counter = {"order": 0}


def add_order(world: World, lines: list[LineSpec], *, currency: str = "USD", tier: str = "standard",
              delivered_days_ago: int = 5, order_discount: int = 0, shipping: int = 0,
              tracking: str | None = None) -> Order:
    _counter["order"] += 1
    n = _counter["order"]
    with world.uow() as uow:
        s = uow.session
        # A customer of long standing with a phone of their own: the risk engine's "new account"
        # and "linked identities" signals stay quiet unless a test sets them up.
        customer = Customer(name=f"Customer {n}", email=f"c{n}@example.com", phone=f"+1 555 {n:07d}",
                            loyalty_tier=tier, orders_count=3, returns_count=0,
                            created_at=world.clock.now - timedelta(days=800))
        s.add(customer)
        s.flush()
        delivered = world.clock.now - timedelta(days=delivered_days_ago)
        order = Order(number=f"SO-{9000000 + n}", customer_id=customer.id, currency=currency,
                      placed_at=delivered - timedelta(days=3), order_discount_minor=order_discount,
                      shipping_minor=shipping)
        s.add(order)
        s.flush()
        for no, spec in enumerate(lines, 1):
            s.add(OrderLine(order_id=order.id, line_no=no, sku=spec.sku, gtin=spec.gtin, title=f"Item {spec.sku}",
                            category=spec.category, quantity=spec.quantity, unit_price_minor=spec.price,
                            line_discount_minor=spec.discount, tax_minor=spec.tax, weight_g=spec.weight_g,
                            serial_numbers=list(spec.serials)))
        s.add(Shipment(order_id=order.id, carrier="UPS", tracking_number=tracking or f"1ZTEST{n:012d}",
                       shipped_at=delivered - timedelta(days=2), delivered_at=delivered))
        uow.commit()
        return order


def add_rma(world: World, order: Order, units: dict[str, int] | None = None, *, status: str = "authorized",
            reason: str = "changed_mind", tracking: str | None = None) -> ReturnAuthorization:
    """An RMA for ``units`` (SKU -> quantity; default every unit of the order)."""
    with world.uow() as uow:
        s = uow.session
        lines = s.query(OrderLine).filter_by(order_id=order.id).order_by(OrderLine.line_no).all()
        next_id = (s.query(ReturnAuthorization).count()) + 1
        rma = ReturnAuthorization(id=next_id, number=rma_number(next_id), order_id=order.id, status=status,
                                  reason_code=reason, return_tracking_number=tracking,
                                  created_at=world.clock.now - timedelta(days=1))
        s.add(rma)
        s.flush()
        for line in lines:
            for _ in range((units or {}).get(line.sku, line.quantity if units is None else 0)):
                s.add(ReturnItem(rma_id=rma.id, order_line_id=line.id, reason_code=reason))
        uow.commit()
        return rma
