"""Find what a scanned parcel code refers to: an RMA, a return or outbound tracking number, an order.

One indexed statement answers every kind of code at once (a UNION ALL of four index probes,
each joined to its order and RMAs), so a scan costs one round trip; the benchmark ``lookup``
compares it with the same statement run through the sqlite3 module directly.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Integer, String, bindparam, cast, literal_column, null, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from console.barcodes import interpret
from console.codes import looks_like_rma, normalize, parse_order_number, parse_rma
from console.errors import InvalidInput, NotFound
from db.models import Order, ReturnAuthorization, Shipment


@dataclass(frozen=True)
class RmaRef:
    id: int
    number: str
    status: str


@dataclass(frozen=True)
class CodeMatch:
    code: str
    kind: str  # rma | order | return_tracking | outbound_tracking
    order_id: int
    order_number: str
    rmas: list[RmaRef] = field(default_factory=list)
    shipment_id: int | None = None
    carrier: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def open_rmas(self) -> list[RmaRef]:
        return [r for r in self.rmas if r.status in ("authorized", "received")]


def _columns(kind: str, shipment: bool = False) -> tuple[Any, ...]:
    rma, order = ReturnAuthorization, Order
    return (literal_column(repr(kind)).label("kind"), order.id.label("order_id"), order.number.label("order_number"),
            rma.id.label("rma_id"), rma.number.label("rma_number"), rma.status.label("rma_status"),
            # Typed NULLs: PostgreSQL (asked when a code is not local) types each UNION column.
            (Shipment.id if shipment else cast(null(), Integer)).label("shipment_id"),
            (Shipment.carrier if shipment else cast(null(), String)).label("carrier"))


_R, _O, _S = ReturnAuthorization, Order, Shipment
LOOKUP = union_all(
    select(*_columns("rma")).join_from(_R, _O, _O.id == _R.order_id)
    .where(_R.number == bindparam("rma", type_=String)),
    select(*_columns("order")).select_from(_O).outerjoin(_R, _R.order_id == _O.id)
    .where(_O.number == bindparam("order", type_=String)),
    select(*_columns("return_tracking")).join_from(_R, _O, _O.id == _R.order_id)
    .where(_R.return_tracking_number == bindparam("code", type_=String)),
    select(*_columns("outbound_tracking", shipment=True)).join_from(_S, _O, _O.id == _S.order_id)
    .outerjoin(_R, _R.order_id == _O.id).where(_S.tracking_number == bindparam("code", type_=String)),
)
# Which reading wins when a code matches more than one kind.
_PRIORITY = ("rma", "order", "return_tracking", "outbound_tracking")


def lookup_params(raw: str) -> dict[str, str | None]:
    """The statement's parameters for a scanned string; raises when it cannot be a parcel code."""
    code = normalize(raw)
    if code[:1] == "]" or code.startswith("420") or "\x1d" in raw or "#" in code:
        # A symbology identifier, a USPS routing prefix or GS1 data: let the interpreter find the
        # parcel code inside. Plain codes skip it, which keeps the lookup within 3x of raw SQL.
        reading = interpret(raw)
        if not reading.valid and reading.kind in ("rma", "tracking", "sscc", "gtin"):
            raise InvalidInput(reading.message)
        if reading.kind in ("rma", "order", "tracking", "lpn"):
            code = reading.value
        elif reading.aim_id:
            code = normalize(raw.strip()[len(reading.aim_id):])
    if not code:
        raise InvalidInput("Nothing was scanned: scan the parcel's RMA, tracking or order barcode.")
    if len(code) > 60:
        raise InvalidInput(f"'{code[:20]}…' is too long to be a parcel code: rescan the label.")
    rma = parse_rma(code)
    if rma is None and looks_like_rma(code):
        raise InvalidInput(f"'{code}' looks like an RMA number but its check character is wrong: "
                           "rescan the label or type it again.")
    return {"rma": rma, "order": parse_order_number(code), "code": code}


def find_code(db: Session | Connection, raw: str) -> CodeMatch:
    params = lookup_params(raw)
    rows = db.execute(LOOKUP, params).all()
    code = params["code"]
    assert code is not None
    if not rows:
        if params["rma"]:
            raise NotFound(f"RMA {params['rma']} is not known at this station: check the number, or sync and try again.")
        if params["order"]:
            raise NotFound(f"Order {params['order']} is not known at this station: check the number.")
        raise NotFound(f"No RMA, tracking number or order matches '{code}'. Scan the RMA label if the parcel "
                       "has one, or look the order up by its number.")
    kind = min((r.kind for r in rows), key=_PRIORITY.index)
    chosen = [r for r in rows if r.kind == kind]
    first = chosen[0]
    rmas = sorted({RmaRef(r.rma_id, r.rma_number, r.rma_status) for r in chosen if r.rma_id is not None},
                  key=lambda ref: ref.id)
    return CodeMatch(code, kind, first.order_id, first.order_number, rmas, first.shipment_id, first.carrier)
