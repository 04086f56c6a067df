"""A checked order export loaded into central (``central import-orders``): the batch, and the load.

``console.order_import`` reads and checks the file into an ``OrderBatch``; this module writes it.
Loading is one transaction. Orders whose number central already holds are skipped, so importing
the same export again is harmless, except where central holds the order only as a station's copy:
the export replaces that (prices, lines, shipments); customers are matched by e-mail. Central's own
id sequences hand out every id, so a sync or another import never gets the same id, and imports
take turns on a transaction-level advisory lock, so two of them never both decide that an order or
a customer is new. On PostgreSQL the rows travel by COPY into temporary staging tables and land
with INSERT ... SELECT; a SQLite central (demos) gets executemany under SQLite's write lock.

The columns the rows land in come from the models' metadata (``_columns``): a column added to
``customers``, ``orders``, ``order_lines`` or ``shipments`` stops the import until this module says
whether the import fills it or leaves it to its default, rather than rows landing without it.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Table, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator

from console.errors import EnvironmentProblem, InvalidInput
from db.errors import translate
from db.models import Customer, Order, OrderLine, Shipment

MAX_SHOWN = 50
# Imports into one central database take turns on this lock (pg_advisory_xact_lock): "RETURN".
ADVISORY_LOCK_ID = 0x5245_5455_524E

# The batch's tuples, field by field (see OrderBatch). A field named as a column of its table
# lands in that column; the others (the order's customer, the line's order, the shipment's place
# in the file) tie the rows together.
CUSTOMER_FIELDS = ("email", "name", "phone", "country", "address")
ORDER_FIELDS = ("number", "customer_key", "channel", "currency", "placed_at", "order_discount_minor",
                "shipping_minor", "shipping_tax_minor", "payment_brand", "payment_last4")
LINE_FIELDS = ("order_number", "line_no", "sku", "gtin", "title", "category", "quantity", "unit_price_minor",
               "line_discount_minor", "tax_minor", "weight_g", "serial_numbers")
SHIPMENT_FIELDS = ("order_number", "carrier", "tracking_number", "shipped_at", "delivered_at", "status",
                   "weight_g", "place")


# --- the batch and what loading it says ------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    location: str  # "line 7, quantity" or "orders[3].lines[1].quantity"
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class BadRows(InvalidInput):
    """The file (or what it would do to central) is wrong in places; nothing was loaded."""

    def __init__(self, source: str, problems: list[Problem], total: int, bad_rows: int, unit: str) -> None:
        super().__init__(f"{source}: {total} problem{'s' if total != 1 else ''} in {bad_rows} "
                         f"{unit}{'s' if bad_rows != 1 else ''}; nothing was imported — fix the export "
                         "and import it again")
        self.problems = problems  # the first MAX_SHOWN
        self.total = total
        self.bad_rows = bad_rows


@dataclass(frozen=True)
class ImportReport:
    orders: int
    lines: int
    customers_new: int
    shipments: int
    already_present: int
    seconds: float
    # Orders central held only as a station's copy (migration 0013), now the order system's.
    station_copies_replaced: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OrderBatch:
    """A validated file, as plain tuples (a million lines must not become a million objects).

    customers: e-mail key (lower case) -> CUSTOMER_FIELDS (email, name, phone, country, address),
               first seen wins
    orders:    ORDER_FIELDS (number, customer key, channel, currency, placed_at, order_discount_minor,
               shipping_minor, shipping_tax_minor, payment_brand, payment_last4)
    lines:     LINE_FIELDS (order number, line_no, sku, gtin, title, category, quantity, unit_price_minor,
               line_discount_minor, tax_minor, weight_g, serial numbers as a JSON list)
    shipments: SHIPMENT_FIELDS (order number, carrier, tracking_number, shipped_at, delivered_at, status,
               weight_g, where the file names it)
    """

    source: str
    unit: str
    customers: dict[str, tuple[Any, ...]]
    orders: list[tuple[Any, ...]]
    lines: list[tuple[Any, ...]]
    shipments: list[tuple[Any, ...]]


# --- the columns, from the models ------------------------------------------------------------------
def _columns(table: Table, fields: Iterable[str], *, loader: Iterable[str] = (),
             default: Iterable[str] = ()) -> tuple[str, ...]:
    """The columns of ``table`` an import writes, in the models' order: those the batch carries
    (``fields``) and those the loader fills (``loader``: ids, counters); ``default``: left to their
    defaults. A column that is none of these (one added to the models since) is refused here, when
    the module is imported, not found missing in central afterwards."""
    names = [c.name for c in table.columns]
    filled, left = set(loader), set(default)
    if unknown := (filled | left) - set(names):
        raise RuntimeError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    if missed := [n for n in names if n not in set(fields) | filled | left]:
        raise RuntimeError(f"{table.name}.{missed[0]}: the order import neither fills it nor leaves it to its "
                           "default; say which in db/order_load.py")
    return tuple(n for n in names if n not in left)


_CUSTOMERS_T, _ORDERS_T = Customer.__table__, Order.__table__
_LINES_T, _SHIPMENTS_T = OrderLine.__table__, Shipment.__table__
CUSTOMER_COLUMNS = _columns(_CUSTOMERS_T, CUSTOMER_FIELDS,
                            loader=("id", "loyalty_tier", "orders_count", "returns_count", "created_at"))
# payment_token: the order system's exports carry none; from_station: the order system's own order.
ORDER_COLUMNS = _columns(_ORDERS_T, ORDER_FIELDS, loader=("id", "customer_id"),
                         default=("payment_token", "from_station"))
LINE_COLUMNS = _columns(_LINES_T, LINE_FIELDS, loader=("id", "order_id"), default=("from_station",))
SHIPMENT_COLUMNS = _columns(_SHIPMENTS_T, SHIPMENT_FIELDS, loader=("id", "order_id"))
# What a new customer starts with (SQL for PostgreSQL's INSERT ... SELECT, values for SQLite's).
_NEW_CUSTOMER_SQL = {"loyalty_tier": "'standard'", "orders_count": "0", "returns_count": "0", "created_at": "now()"}


# --- the whole load --------------------------------------------------------------------------------
def load_orders(engine: Engine, batch: OrderBatch) -> ImportReport:
    """Everything in ``batch`` that central lacks, in one transaction; ``BadRows`` (and nothing
    loaded) if a new order's tracking number already ships another order in central."""
    started = time.perf_counter()
    with engine.connect() as conn:
        backend = conn.dialect.name
        if backend == "postgresql":
            with conn.begin():
                counts = _load_postgresql(conn, batch)
        elif backend == "sqlite":
            # The write lock from BEGIN on: nobody else writes until this import commits, so
            # max(id) + 1 ... are free ids.
            conn.execution_options(sqlite_begin="immediate")
            with conn.begin():
                counts = _load_sqlite(conn, batch)
        else:
            raise EnvironmentProblem(f"cannot import orders into a {backend} database")
    return ImportReport(**counts, seconds=round(time.perf_counter() - started, 3))


def _conflicts(batch: OrderBatch, found: Iterable[tuple[str, str, str]]) -> BadRows | None:
    """``found``: (where in the file, tracking number, the central order it ships)."""
    problems = []
    for where, tracking, other in found:
        location = f"{where}, tracking_number" if batch.unit == "line" else f"{where}.tracking_number"
        problems.append(Problem(location, f"{tracking} already ships order {other} in central; a tracking number "
                                          "belongs to one order"))
    # Each conflict is one problem in one row.
    return BadRows(batch.source, problems[:MAX_SHOWN], len(problems), len(problems), batch.unit) \
        if problems else None


# --- PostgreSQL: COPY into staging, then INSERT ... SELECT -----------------------------------------
def _pg_type(table: Table, field: str) -> str:
    """The staging column's type for a field of the batch: its model column's, where it has one."""
    if field == "seq":  # the row's place in the file: new ids are handed out in that order
        return "int4"
    if field not in table.c:
        return "text"  # keys that tie the rows together, and where in the file a row was
    kind = table.c[field].type
    if isinstance(kind, TypeDecorator):  # UTCDateTime
        kind = kind.impl_instance
    if isinstance(kind, BigInteger):
        return "int8"
    if isinstance(kind, Integer):
        return "int4"
    if isinstance(kind, DateTime):
        return "timestamptz"
    if isinstance(kind, (String, JSON)):  # JSON (serial numbers): staged as text, cast where it lands
        return "text"
    raise RuntimeError(f"{table.name}.{field}: no staging type for {kind!r}")


_STAGED = {
    "import_customers": (_CUSTOMERS_T, ("seq", "email_key") + CUSTOMER_FIELDS),
    "import_orders": (_ORDERS_T, ("seq",) + ORDER_FIELDS),
    "import_lines": (_LINES_T, LINE_FIELDS),
    "import_shipments": (_SHIPMENTS_T, SHIPMENT_FIELDS),
}
_PG_TYPES = {name: tuple(_pg_type(table, f) for f in fields) for name, (table, fields) in _STAGED.items()}
_PG_STAGING = "".join(
    f"CREATE TEMP TABLE {name} ({', '.join(f'{f} {t}' for f, t in zip(fields, _PG_TYPES[name]))}) ON COMMIT DROP;\n"
    for name, (_table, fields) in _STAGED.items()
) + "CREATE TEMP TABLE import_order_ids (number text PRIMARY KEY, id integer, customer_id integer) ON COMMIT DROP;\n"


def _from(columns: tuple[str, ...], alias: str, given: Mapping[str, str]) -> tuple[str, str]:
    """The column list of an INSERT (every column but the id, which the sequence hands out) and the
    SELECT list that fills it: ``given`` where the loader says, else the staged field of that name."""
    names = [c for c in columns if c != "id"]
    return ", ".join(names), ", ".join(given.get(c, f"{alias}.{c}") for c in names)


def _set(columns: tuple[str, ...], keys: tuple[str, ...], alias: str, given: Mapping[str, str],
         *also: str) -> str:
    """An UPDATE's SET list: every column the import writes but the id and ``keys``."""
    return ", ".join([f"{c} = {given.get(c, f'{alias}.{c}')}" for c in columns if c != "id" and c not in keys]
                     + list(also))


def _insert_select(table: str, columns: tuple[str, ...], alias: str, given: Mapping[str, str]) -> str:
    names, values = _from(columns, alias, given)
    return f"INSERT INTO {table} ({names}) SELECT {values} "


_INSERT_CUSTOMERS = _insert_select("customers", CUSTOMER_COLUMNS, "c", _NEW_CUSTOMER_SQL)
_INSERT_ORDERS = _insert_select("orders", ORDER_COLUMNS, "s", {"customer_id": "c.id"})
_LINE_SQL = {"serial_numbers": "l.serial_numbers::json"}
_INSERT_LINES = _insert_select("order_lines", LINE_COLUMNS, "l", {**_LINE_SQL, "order_id": "m.id"})
_INSERT_SHIPMENTS = _insert_select("shipments", SHIPMENT_COLUMNS, "s", {"order_id": "m.id"})
# Over a station's copy (_replace_station_copies): what the export says, and the copy no longer the station's.
_REPLACE_ORDER = _set(ORDER_COLUMNS, ("number",), "s", {"customer_id": "c.id"}, "from_station = NULL")
_REPLACE_LINE = _set(LINE_COLUMNS, ("order_id", "line_no"), "l", _LINE_SQL, "from_station = NULL")
_REPLACE_SHIPMENT = _set(SHIPMENT_COLUMNS, ("order_id", "tracking_number"), "s", {})
_ADD_LINES = _insert_select("order_lines", LINE_COLUMNS, "l", {**_LINE_SQL, "order_id": "r.id"})
_ADD_SHIPMENTS = _insert_select("shipments", SHIPMENT_COLUMNS, "s", {"order_id": "r.id"})


def _copy(cur: Any, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_PG_TYPES[table])
        write = copy.write_row
        for row in rows:
            write(row)


def _catch_up_sequence(cur: Any, table: str) -> None:
    """Central's ids come from the table's sequence (migration 0001 made them serial). Rows
    written with explicit ids (a station's own demo data pushed up, say) may have left the
    sequence behind; then move it past them rather than collide."""
    sequence = cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
    if sequence is None:
        raise EnvironmentProblem(f"central's {table} table hands out no ids (its id has no sequence); "
                                 "prepare central with `returns-console central init`")
    last, called = cur.execute(f"SELECT last_value, is_called FROM {sequence}").fetchone()
    highest = cur.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
    if highest is not None and highest >= (last + 1 if called else last):
        cur.execute("SELECT setval(%s, %s)", (sequence, highest))


def _load_postgresql(conn: Connection, batch: OrderBatch) -> dict[str, int]:
    import psycopg

    try:
        return _load_postgresql_staged(conn, batch)
    except psycopg.Error as exc:
        # The driver's own errors (COPY runs beneath SQLAlchemy): still one line, not a crash.
        raise translate(exc, "central database", failing="stopped the import", then="nothing was imported") from None


def _load_postgresql_staged(conn: Connection, batch: OrderBatch) -> dict[str, int]:
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        # Staging first: COPY needs no lock, so concurrent imports overlap here.
        cur.execute(_PG_STAGING)
        _copy(cur, "import_customers", ((seq, key) + c for seq, (key, c) in enumerate(batch.customers.items())))
        _copy(cur, "import_orders", ((seq,) + o for seq, o in enumerate(batch.orders)))
        _copy(cur, "import_lines", batch.lines)
        _copy(cur, "import_shipments", batch.shipments)
        cur.execute("ANALYZE import_customers, import_orders, import_lines, import_shipments")

        # From here on, one import at a time: "is it new?" and "insert it" must not interleave.
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_ID,))
        # An order central holds only as a station's word (migration 0013: a station filled it in,
        # or added a line to it) is replaced by the order system's: then its refunds are checked
        # against what was really paid, and the stations pull the real prices.
        cur.execute(
            "CREATE TEMP TABLE import_replaced ON COMMIT DROP AS "
            "SELECT s.number, o.id FROM import_orders s JOIN orders o ON o.number = s.number "
            "WHERE o.from_station IS NOT NULL "
            "OR EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.from_station IS NOT NULL)")
        already = cur.execute(
            "DELETE FROM import_orders s USING orders o WHERE o.number = s.number "
            "AND NOT EXISTS (SELECT 1 FROM import_replaced r WHERE r.number = s.number)").rowcount
        conflicts = cur.execute(
            "SELECT s.place, s.tracking_number, o.number FROM import_shipments s "
            "JOIN import_orders n ON n.number = s.order_number "
            "JOIN shipments x ON x.tracking_number = s.tracking_number JOIN orders o ON o.id = x.order_id "
            "WHERE o.number <> n.number"
        ).fetchall()
        if (refused := _conflicts(batch, conflicts)) is not None:
            raise refused
        for table in ("customers", "orders", "order_lines", "shipments"):
            _catch_up_sequence(cur, table)
        customers_new = cur.execute(
            _INSERT_CUSTOMERS + "FROM import_customers c "
            "WHERE c.email_key IN (SELECT customer_key FROM import_orders) "
            "AND NOT EXISTS (SELECT 1 FROM customers x WHERE lower(x.email) = c.email_key) "
            "ORDER BY c.seq").rowcount
        cur.execute(
            "CREATE TEMP TABLE import_customer_ids ON COMMIT DROP AS "
            "SELECT lower(x.email) AS email_key, min(x.id) AS id FROM customers x "
            "WHERE lower(x.email) IN (SELECT customer_key FROM import_orders) GROUP BY 1")
        orders = cur.execute(
            "WITH inserted AS (" + _INSERT_ORDERS
            + "FROM import_orders s JOIN import_customer_ids c ON c.email_key = s.customer_key "
            "WHERE NOT EXISTS (SELECT 1 FROM import_replaced r WHERE r.number = s.number) ORDER BY s.seq "
            "RETURNING id, number, customer_id) "
            "INSERT INTO import_order_ids SELECT number, id, customer_id FROM inserted").rowcount
        replaced = _replace_station_copies(cur)
        expected = len(batch.orders) - already - replaced
        if orders != expected:  # every new order has its customer by now; anything else is a bug
            raise RuntimeError(f"inserted {orders} orders, expected {expected}")
        lines = cur.execute(
            _INSERT_LINES + "FROM import_lines l JOIN import_order_ids m ON m.number = l.order_number").rowcount
        shipments = cur.execute(
            _INSERT_SHIPMENTS + "FROM import_shipments s JOIN import_order_ids m ON m.number = s.order_number"
        ).rowcount
        cur.execute(
            "UPDATE customers c SET orders_count = c.orders_count + n.orders "
            "FROM (SELECT customer_id, count(*) AS orders FROM import_order_ids GROUP BY customer_id) n "
            "WHERE c.id = n.customer_id")
    return {"orders": orders, "lines": lines, "customers_new": customers_new, "shipments": shipments,
            "already_present": already, "station_copies_replaced": replaced}


def _replace_station_copies(cur: Any) -> int:
    """The export's order, lines and shipments over a station's copy (``import_replaced``), in
    place: the decisions, items and RMAs that name them keep their ids. A line the station added
    that the export lacks stays the station's word, so its order's refunds keep waiting for a
    supervisor (central's rc_station_orders)."""
    replaced = cur.execute(
        f"UPDATE orders o SET {_REPLACE_ORDER} "
        "FROM import_replaced r JOIN import_orders s ON s.number = r.number "
        "JOIN import_customer_ids c ON c.email_key = s.customer_key WHERE o.id = r.id").rowcount
    cur.execute(
        f"UPDATE order_lines x SET {_REPLACE_LINE} "
        "FROM import_lines l JOIN import_replaced r ON r.number = l.order_number "
        "WHERE x.order_id = r.id AND x.line_no = l.line_no")
    cur.execute(
        _ADD_LINES + "FROM import_lines l JOIN import_replaced r ON r.number = l.order_number "
        "WHERE NOT EXISTS (SELECT 1 FROM order_lines x WHERE x.order_id = r.id AND x.line_no = l.line_no)")
    cur.execute(
        f"UPDATE shipments x SET {_REPLACE_SHIPMENT} "
        "FROM import_shipments s JOIN import_replaced r ON r.number = s.order_number "
        "WHERE x.order_id = r.id AND x.tracking_number = s.tracking_number")
    cur.execute(
        _ADD_SHIPMENTS + "FROM import_shipments s JOIN import_replaced r ON r.number = s.order_number "
        "WHERE NOT EXISTS (SELECT 1 FROM shipments x WHERE x.order_id = r.id AND x.tracking_number = s.tracking_number)")
    return int(replaced)


# --- SQLite: executemany under the write lock ------------------------------------------------------
def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _next_id(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def _insert_many(conn: Connection, table: Table, columns: tuple[str, ...], rows: Iterable[Mapping[str, Any]]) -> int:
    """``rows`` keyed by field or column name: each row's ``columns`` (all of them) land."""
    count = 0
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append({c: row[c] for c in columns})
        if len(chunk) >= 5000:
            conn.execute(table.insert(), chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        conn.execute(table.insert(), chunk)
        count += len(chunk)
    return count


def _load_sqlite(conn: Connection, batch: OrderBatch) -> dict[str, int]:
    customers_t, orders_t, lines_t, shipments_t = _CUSTOMERS_T, _ORDERS_T, _LINES_T, _SHIPMENTS_T
    present: set[str] = set()
    for chunk in _chunks([o[0] for o in batch.orders]):
        present.update(conn.execute(select(orders_t.c.number).where(orders_t.c.number.in_(chunk))).scalars())
    new_orders = [o for o in batch.orders if o[0] not in present]
    new_numbers = {o[0] for o in new_orders}
    new_shipments = [s for s in batch.shipments if s[0] in new_numbers]
    places = {s[2]: s[7] for s in new_shipments}
    found = []
    for chunk in _chunks(list(places)):
        for tracking, other in conn.execute(
                select(shipments_t.c.tracking_number, orders_t.c.number)
                .join(orders_t, orders_t.c.id == shipments_t.c.order_id)
                .where(shipments_t.c.tracking_number.in_(chunk))):
            found.append((places[tracking], tracking, other))
    if (refused := _conflicts(batch, found)) is not None:
        raise refused

    # Python's lower() on both sides: SQLite's lower() knows only ASCII.
    known: dict[str, int] = {}
    for cid, email in conn.execute(select(customers_t.c.id, customers_t.c.email).order_by(customers_t.c.id)):
        known.setdefault(email.lower(), cid)
    wanted = {o[1] for o in new_orders}
    customer_id = _next_id(conn, customers_t)
    now = datetime.now(timezone.utc)
    new_customers = []
    for key, customer in batch.customers.items():
        if key in wanted and key not in known:
            known[key] = customer_id
            new_customers.append({**dict(zip(CUSTOMER_FIELDS, customer)), "id": customer_id,
                                  "loyalty_tier": "standard", "orders_count": 0, "returns_count": 0,
                                  "created_at": now})
            customer_id += 1
    _insert_many(conn, customers_t, CUSTOMER_COLUMNS, new_customers)

    order_id = _next_id(conn, orders_t)
    ids: dict[str, int] = {}
    per_customer: dict[int, int] = {}
    order_rows = []
    for o in new_orders:
        row = dict(zip(ORDER_FIELDS, o))
        ids[row["number"]] = order_id
        cid = row["customer_id"] = known[row["customer_key"]]
        per_customer[cid] = per_customer.get(cid, 0) + 1
        row["id"] = order_id
        order_rows.append(row)
        order_id += 1
    orders = _insert_many(conn, orders_t, ORDER_COLUMNS, order_rows)
    first_line = _next_id(conn, lines_t)
    lines = _insert_many(
        conn, lines_t, LINE_COLUMNS,
        ({**dict(zip(LINE_FIELDS, ln)), "id": first_line + n, "order_id": ids[ln[0]],
          "serial_numbers": json.loads(ln[11])}
         for n, ln in enumerate(ln for ln in batch.lines if ln[0] in ids)))
    first_ship = _next_id(conn, shipments_t)
    shipments = _insert_many(
        conn, shipments_t, SHIPMENT_COLUMNS,
        ({**dict(zip(SHIPMENT_FIELDS, s)), "id": first_ship + n, "order_id": ids[s[0]]}
         for n, s in enumerate(new_shipments)))
    if per_customer:
        conn.execute(text("UPDATE customers SET orders_count = orders_count + :n WHERE id = :id"),
                     [{"id": cid, "n": n} for cid, n in per_customer.items()])
    return {"orders": orders, "lines": lines, "customers_new": len(new_customers), "shipments": shipments,
            "already_present": len(batch.orders) - len(new_orders)}
