"""Orders from the order system's export, read and checked for central (``central import-orders``).

Reading checks the whole file before anything is written. Every bad row is reported with its
place in the file (a CSV line as a person counts it, the header being line 1; a JSON path such as
``orders[3].lines[1].quantity``, counted from 0 as jq counts) and what is wrong with it; if any row
is bad, nothing is loaded. What reading makes, an ``OrderBatch`` of plain tuples, is loaded by
``db.order_load`` (one transaction; see there); ``import_orders`` does both.
"""
from __future__ import annotations

import csv
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.engine import Engine

from console.card_numbers import card_spans, mask_card_numbers, maybe_card_number
from console.checkdigits import gs1_check_digit
from console.errors import InvalidInput
from db.order_load import MAX_SHOWN, BadRows, ImportReport, OrderBatch, Problem, load_orders

__all__ = ["CSV_COLUMNS", "FORMATS", "MAX_SHOWN", "BadRows", "ImportReport", "OrderBatch", "Problem", "format_of",
           "import_orders", "read_orders"]

FORMATS = ("csv", "json")

_BIGINT_MAX = 2**63 - 1
_INT_MAX = 2**31 - 1

# The CSV columns in the documented order; the value says whether every row must carry it.
CSV_COLUMNS: dict[str, bool] = {
    "order_number": True, "placed_at": True, "currency": True, "channel": False,
    "customer_email": True, "customer_name": True, "customer_phone": False, "customer_country": False,
    "customer_address": False, "order_discount_minor": True, "shipping_minor": True,
    "shipping_tax_minor": False, "payment_brand": False, "payment_last4": False,
    "line_no": True, "sku": True, "gtin": False, "title": True, "category": True, "quantity": True,
    "unit_price_minor": True, "line_discount_minor": True, "tax_minor": True, "weight_g": False,
    "serial_numbers": False, "carrier": False, "tracking_number": False, "shipped_at": False,
    "delivered_at": False,
}
_COLUMNS = tuple(CSV_COLUMNS)
_ORDER_KEYS = ("order_number", "placed_at", "currency", "channel", "customer", "order_discount_minor",
               "shipping_minor", "shipping_tax_minor", "payment_brand", "payment_last4", "lines", "shipments")
_CUSTOMER_KEYS = ("email", "name", "phone", "country", "address")
_LINE_KEYS = ("line_no", "sku", "gtin", "title", "category", "quantity", "unit_price_minor", "line_discount_minor",
              "tax_minor", "weight_g", "serial_numbers")
_SHIPMENT_KEYS = ("carrier", "tracking_number", "shipped_at", "delivered_at", "weight_g")
_NO_SERIALS = "[]"
_json_string: Callable[[str], str] = json.encoder.encode_basestring


# --- the whole command ----------------------------------------------------------------------------
def import_orders(engine: Engine, path: Path, fmt: str | None = None) -> ImportReport:
    started = time.perf_counter()
    batch = read_orders(path, fmt)
    report = load_orders(engine, batch)
    return ImportReport(**{**report.to_dict(), "seconds": round(time.perf_counter() - started, 3)})


def read_orders(path: Path, fmt: str | None = None) -> OrderBatch:
    """The file, checked through; ``BadRows`` if any row is wrong, ``InvalidInput`` if the file
    as a whole cannot be read (missing, not UTF-8, empty, no header, not JSON)."""
    fmt = fmt or format_of(path)
    if fmt == "csv":
        return _read_csv(path)
    if fmt == "json":
        return _read_json(path)
    raise InvalidInput(f"unknown format {fmt!r}: choose csv or json")


def format_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise InvalidInput(f"cannot tell the format of {path} from its name; add --format csv or --format json")


# --- checking values -------------------------------------------------------------------------------
class _Bad(Exception):
    """A value is wrong; the message says how, in words that follow the field's name."""


_BAD: Any = object()  # a value that was wrong (already reported)

# Full card numbers in any column are found (in any digits and formatting) by console.card_numbers.
_CARD_NUMBER = "holds what looks like a full card number; the export must never carry one"


def _show(raw: Any) -> str:
    """A wrong value quoted in a message: never a card number, never a page of text."""
    if isinstance(raw, str):
        shown = mask_card_numbers(raw)
        return repr(shown if len(shown) <= 40 else shown[:37] + "...")
    if isinstance(raw, datetime):
        return raw.isoformat()
    if raw is None:
        return "nothing"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (int, float)):
        return mask_card_numbers(repr(raw))
    return "a list" if isinstance(raw, list) else "an object"


def _text(max_len: int) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        if raw.__class__ is not str:
            raise _Bad(f"must be text, not {_show(raw)}")
        if len(raw) > max_len:
            raise _Bad(f"is {len(raw)} characters long; at most {max_len} fit")
        if "\x00" in raw:
            raise _Bad("contains a NUL character")
        return raw
    return parse


_SIGNED_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+[.,][0-9]*|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?[0-9]+[eE][+-]?[0-9]+")


def _integer(low: int, high: int, *, money: bool = False) -> Callable[[Any], int]:
    decimals = ("must be whole minor units (1250 for 12.50), not " if money else "must be a whole number, not ")

    def parse(raw: Any) -> int:
        if raw.__class__ is str:
            if raw.isascii() and raw.isdigit():
                value = int(raw)
            elif _SIGNED_INT.fullmatch(raw):
                value = int(raw)
            elif _DECIMAL.fullmatch(raw):
                raise _Bad(decimals + _show(raw))
            else:
                raise _Bad(f"must be a whole number, not {_show(raw)}")
        elif raw.__class__ is int:
            value = raw
        elif raw.__class__ is float:
            raise _Bad(decimals + _show(raw))
        else:
            raise _Bad(f"must be a whole number, not {_show(raw)}")
        if value < low:
            raise _Bad("must not be negative" if low == 0 else f"must be at least {low}, not {_show(value)}")
        if value > high:
            raise _Bad(f"is too large (at most {high})")
        return value
    return parse


def _when(raw: Any) -> datetime:
    if raw.__class__ is not str:
        raise _Bad(f"must be an ISO 8601 time in text, not {_show(raw)}")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _Bad(f"{_show(raw)} is not an ISO 8601 time like 2024-05-01T10:00:00+02:00") from None
    if value.utcoffset() is None:
        raise _Bad(f"{_show(raw)} has no UTC offset; write it like 2024-05-01T10:00:00+02:00 "
                   "or 2024-05-01T08:00:00Z")
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise _Bad(f"{_show(raw)} is out of range") from None


_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _currency(raw: Any) -> str:
    if raw.__class__ is not str or not _CURRENCY.fullmatch(raw):
        raise _Bad(f"must be an ISO 4217 code of 3 upper-case letters such as USD, not {_show(raw)}")
    return sys.intern(raw)


def _country(raw: Any) -> str:
    if raw.__class__ is not str or not _COUNTRY.fullmatch(raw):
        raise _Bad(f"must be a 2-letter ISO 3166 country code such as US, not {_show(raw)}")
    return sys.intern(raw.upper())


def _email(raw: Any) -> str:
    value = _text(200)(raw)
    if not _EMAIL.fullmatch(value):
        raise _Bad(f"{_show(raw)} is not an e-mail address")
    return value


def _last4(raw: Any) -> str:
    if raw.__class__ is not str:
        raise _Bad(f"must be 4 digits in text (a number loses leading zeros), not {_show(raw)}")
    if len(raw) == 4 and raw.isascii() and raw.isdigit():
        return raw
    if card_spans(raw):
        raise _Bad("holds what looks like a full card number; the export must carry only the last 4 digits")
    raise _Bad(f"must be exactly 4 digits, not {_show(raw)}")


@lru_cache(maxsize=4096)
def _gtin_check_digit(body: str) -> int:
    # An export names the same products over and over: check each GTIN once.
    return gs1_check_digit(body)


def _gtin(raw: Any) -> str:
    if raw.__class__ is not str or not (raw.isascii() and raw.isdigit()) or len(raw) not in (8, 12, 13, 14):
        raise _Bad(f"{_show(raw)} is not a GTIN (8, 12, 13 or 14 digits)")
    expected = _gtin_check_digit(raw[:-1])
    if int(raw[-1]) != expected:
        raise _Bad(f"{raw} has a wrong check digit (the last digit should be {expected})")
    return sys.intern(raw)


def _serial_list(serials: list[Any]) -> str:
    seen: set[str] = set()
    for s in serials:
        if s.__class__ is not str or not s.strip():
            raise _Bad(f"must be a list of serial numbers in text; {_show(s)} is not one")
        s = s.strip()
        if len(s) > 60:
            raise _Bad(f"has a serial number of {len(s)} characters; at most 60 fit")
        if "\x00" in s:
            raise _Bad("contains a NUL character")
        if card_spans(s):
            raise _Bad(_CARD_NUMBER)
        if s in seen:
            raise _Bad(f"lists serial number {_show(s)} twice")
        seen.add(s)
    return "[" + ", ".join(map(_json_string, (s.strip() for s in serials))) + "]"


def _serials_csv(raw: str) -> str:
    parts = raw.split("|")
    if any(not p.strip() for p in parts):
        raise _Bad(f"{_show(raw)} has an empty entry; separate serial numbers with a single '|'")
    return _serial_list(parts)


def _serials_json(raw: Any) -> str:
    if raw.__class__ is not list:
        raise _Bad(f"must be a list of serial numbers, not {_show(raw)}")
    return _serial_list(raw) if raw else _NO_SERIALS


def _interned(max_len: int) -> Callable[[Any], str]:
    parse = _text(max_len)
    return lambda raw: sys.intern(parse(raw))


_ORDER_NUMBER = _text(40)
_CHANNEL = _interned(20)
# Every order keeps its customer's fields (its lines must agree on them): one string per customer.
_NAME = _interned(200)
_PHONE = _interned(40)
_ADDRESS = _interned(2000)
_BRAND = _interned(20)
_MONEY = _integer(0, _BIGINT_MAX, money=True)
_LINE_NO = _integer(1, _INT_MAX)
_QUANTITY = _integer(1, _INT_MAX)
_WEIGHT = _integer(0, _INT_MAX)
# Interned: an export names the same products again and again, and a million lines are kept.
_SKU = _interned(40)
_TITLE = _interned(200)
_CATEGORY = _interned(40)
_CARRIER = _interned(20)
_TRACKING = _text(40)


class _Problems:
    def __init__(self, source: str, unit: str) -> None:
        self.source = source
        self.unit = unit
        self.shown: list[Problem] = []
        self.total = 0
        self.bad_rows = 0

    def add(self, location: str, message: str) -> None:
        self.total += 1
        if len(self.shown) < MAX_SHOWN:
            self.shown.append(Problem(location, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise BadRows(self.source, self.shown, self.total, self.bad_rows, self.unit)


class _Row:
    """One CSV line or one JSON object under check: parses its fields and files what is wrong."""

    __slots__ = ("problems", "prefix", "csv", "bad", "skip")

    def __init__(self, problems: _Problems, prefix: str, *, csv_line: bool) -> None:
        self.problems = problems
        self.prefix = prefix  # "line 7" or "orders[3].lines[1]"
        self.csv = csv_line  # CSV rows count as bad rows one by one; JSON counts bad orders
        self.bad = False
        self.skip: set[str] | None = None  # fields already reported (a card number): no second word

    def fail(self, name: str | None, message: str) -> None:
        if not self.bad:
            self.bad = True
            if self.csv:
                self.problems.bad_rows += 1
        if name is None:
            location = self.prefix
        else:
            location = f"{self.prefix}, {name}" if self.csv else f"{self.prefix}.{name}"
        self.problems.add(location, message)

    def get(self, name: str, raw: Any, parse: Callable[[Any], Any], required: bool = False) -> Any:
        if self.skip is not None and name in self.skip:
            return _BAD
        if raw.__class__ is str:
            raw = raw.strip()
            if raw and not self.csv and parse is not _gtin and card_spans(raw):
                # (A CSV line is scanned whole, at once; a valid GTIN is a GTIN.)
                self.fail(name, _CARD_NUMBER)
                return _BAD
        elif raw.__class__ is int and raw >= 10**13 and card_spans(str(raw)):
            self.fail(name, _CARD_NUMBER)
            return _BAD
        if raw is None or raw == "":
            if required:
                self.fail(name, "is missing")
                return _BAD
            return None
        try:
            return parse(raw)
        except _Bad as exc:
            self.fail(name, str(exc))
            return _BAD


class _Collector:
    """What CSV and JSON reading share: orders, customers, lines and shipments met so far, and
    the checks that span rows (an order's fields agree, no line or tracking number twice)."""

    # Where something is in the file: a CSV line number (an int is smaller than "line 7", and a
    # million lines are remembered) or a JSON path.
    def __init__(self, problems: _Problems) -> None:
        self.problems = problems
        # order number -> [order fields, where first seen, {tracking: [carrier, shipped, delivered,
        # weight, where]} or None, the order number (one string for all its lines), the order's
        # place in the file (x 2**31: line keys are one int, not a tuple, per line)]
        self.orders: dict[str, list[Any]] = {}
        self.customers: dict[str, tuple[Any, ...]] = {}
        self.lines: list[tuple[Any, ...]] = []
        self.line_keys: dict[int, int | str] = {}
        self.trackings: dict[str, str] = {}  # tracking number -> order number

    def order(self, row: _Row, number: Any, fields: tuple[Any, ...], customer: tuple[Any, ...],
              where: int | str, names: tuple[str, ...]) -> list[Any] | None:
        """Register (or, for a further line of it, compare) the order's fields; its state."""
        if number is None or number is _BAD:
            return None
        state = self.orders.get(number)
        if state is None:
            state = [fields, where, None, number, len(self.orders) << 31]
            self.orders[number] = state
            key = fields[3]
            if key is not None and key is not _BAD and key not in self.customers and _BAD not in customer:
                self.customers[key] = customer
            return state
        first = state[0]
        if first != fields:
            for name, a, b in zip(names, first, fields):
                if a is not _BAD and b is not _BAD and a != b:
                    row.fail(name, f"{_show(b)} disagrees with {_show(a)} on {_place(state[1])} "
                                   f"(order {number}); "
                                   "every line of an order must carry the same order fields")
        return state

    def line(self, row: _Row, state: list[Any] | None, line_no: Any, where: int | str,
             values: tuple[Any, ...]) -> None:
        if state is None or line_no is _BAD:
            return
        number = state[3]
        first = self.line_keys.setdefault(state[4] | line_no, where)  # line_no < 2**31
        if first != where:
            row.fail("line_no", f"order {number} has a line {line_no} already, on {_place(first)}")
        elif not self.problems.total:
            # Once anything is wrong nothing will be loaded: stop keeping rows.
            self.lines.append((number, line_no) + values)

    def shipment(self, row: _Row, number: Any, state: list[Any] | None, tracking: str, values: list[Any],
                 where: int | str, *, repeated: bool) -> list[Any] | None:
        """Register shipment ``tracking`` of order ``number`` (``values``: carrier, shipped_at,
        delivered_at, weight_g) or, where the format repeats it (a CSV line per order line),
        compare it with what was said before; its state."""
        if state is None:
            return None
        ships = state[2]
        if ships is None:
            ships = state[2] = {}
        ship = ships.get(tracking)
        if ship is None:
            owner = self.trackings.setdefault(tracking, number)
            if owner != number:
                first = self.orders[owner][2][tracking][-1]
                row.fail("tracking_number", f"{tracking} already ships order {owner} ({_place(first)}); "
                                            "a tracking number belongs to one order")
                return None
            ship = ships[tracking] = values + [where]
            return ship
        if not repeated:
            row.fail("tracking_number", f"{tracking} is listed twice for order {number} "
                                        f"(first at {_place(ship[-1])})")
            return None
        for name, a, b in zip(("carrier", "shipped_at", "delivered_at"), ship, values):
            if a is not _BAD and b is not _BAD and a != b:
                row.fail(name, f"{_show(b)} disagrees with {_show(a)} for shipment {tracking} on "
                               f"{_place(ship[-1])}")
        return ship

    def batch(self, source: str, unit: str) -> OrderBatch:
        self.problems.raise_if_any()
        if not self.orders:
            raise InvalidInput(f"{source} holds no orders; check that it is the right export")
        self.line_keys.clear()
        self.trackings.clear()
        orders: list[tuple[Any, ...]] = []
        shipments: list[tuple[Any, ...]] = []
        for number in list(self.orders):
            fields, _where, ships, _, _ = self.orders.pop(number)  # (freed as the tuples are made)
            placed, currency, channel, key, disc, ship_fee, ship_tax, brand, last4 = fields[:9]
            orders.append((number, key, channel, currency, placed, disc, ship_fee, ship_tax, brand, last4))
            for tracking, (carrier, shipped, delivered, weight, where) in (ships or {}).items():
                status = "delivered" if delivered is not None else "in_transit"
                shipments.append((number, carrier, tracking, shipped, delivered, status, weight, _place(where)))
        return OrderBatch(source, unit, self.customers, orders, self.lines, shipments)


def _place(where: int | str) -> str:
    return f"line {where}" if where.__class__ is int else str(where)


# --- CSV -------------------------------------------------------------------------------------------
def _open_text(path: Path) -> TextIO:
    try:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is no part of the first column name.
        return path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist; check the path of the export") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder; give the export file itself") from None
    except PermissionError:
        raise InvalidInput(f"{path} cannot be read (permission denied); check its permissions") from None


def _not_utf8(path: Path, where: str) -> InvalidInput:
    return InvalidInput(f"{path} is not UTF-8 text ({where}); export it as UTF-8 (in Excel: "
                        "'CSV UTF-8') and import it again")


def _header(path: Path, cells: list[str]) -> list[int]:
    names = [c.strip().lower() for c in cells]
    doubled = sorted({n for n in names if names.count(n) > 1 and n})
    if doubled:
        raise InvalidInput(f"{path}: the header names column {', '.join(doubled)} twice")
    missing = [n for n, required in CSV_COLUMNS.items() if required and n not in names]
    if missing:
        raise InvalidInput(f"{path}: the header (line 1) lacks the required column{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)}; see 'Importing orders' in the README for the columns")
    unknown = [c for c in names if c not in CSV_COLUMNS]
    if unknown:
        raise InvalidInput(f"{path}: unknown column{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(repr(c) for c in unknown)} in the header (line 1); the columns are "
                           f"{', '.join(_COLUMNS)}")
    return [names.index(c) if c in names else -1 for c in _COLUMNS]


def _read_csv(path: Path) -> OrderBatch:
    problems = _Problems(str(path), "line")
    collect = _Collector(problems)
    repeat = _CsvRepeat()
    with _open_text(path) as fh:
        reader = csv.reader(fh, strict=True)
        index: list[int] | None = None
        end = 0  # the physical line the previous record ended on
        try:
            for cells in reader:
                line, end = end + 1, reader.line_num
                if not any(c.strip() for c in cells):
                    continue  # a blank line, or one of only commas
                if index is None:
                    index = _header(path, cells)
                    width = len(cells)
                    gtin_at = index[_COLUMNS.index("gtin")]
                    continue
                if len(cells) != width:
                    problems.bad_rows += 1
                    problems.add(f"line {line}", f"has {len(cells)} fields but the header has {width}; "
                                                 "is a comma or a quote out of place?")
                    continue
                _csv_row(collect, repeat, line, cells, index, gtin_at)
        except UnicodeDecodeError:
            raise _not_utf8(path, f"a byte that is not UTF-8 near line {reader.line_num + 1}") from None
        except csv.Error as exc:
            raise InvalidInput(f"{path}, line {reader.line_num}: the CSV is malformed ({exc}); check the "
                               "quotes on that line") from None
    if index is None:
        raise InvalidInput(f"{path} is empty; export the orders again (a header line, then one line per order line)")
    if not collect.orders and not problems.total:
        raise InvalidInput(f"{path} has a header but no order lines; check that it is the right export")
    return collect.batch(str(path), "line")


_CSV_ORDER_NAMES = ("placed_at", "currency", "channel", "customer_email", "order_discount_minor", "shipping_minor",
                    "shipping_tax_minor", "payment_brand", "payment_last4", "customer_name", "customer_phone",
                    "customer_country", "customer_address")
_CSV_SHIP_NAMES = ("carrier", "tracking_number", "shipped_at", "delivered_at")


class _CsvRepeat:
    """The previous line's order and shipment cells and what they were found to be. Exports list
    an order's lines one after the other, each repeating the order's fields: a line whose cells
    repeat the line before's is not parsed again (and a bad value is reported once, not per line)."""

    __slots__ = ("order_cells", "number", "state", "ship_cells", "tracking", "ship")

    def __init__(self) -> None:
        self.order_cells: list[str | None] | None = None
        self.number: Any = None
        self.state: list[Any] | None = None
        self.ship_cells: list[str | None] | None = None
        self.tracking: Any = None
        self.ship: list[Any] | None = None


def _csv_row(collect: _Collector, repeat: _CsvRepeat, line: int, cells: list[str], index: list[int],
             gtin_at: int) -> None:
    row = _Row(collect.problems, f"line {line}", csv_line=True)
    if maybe_card_number("\x1f".join(cells)):
        # The GTIN is checked as a GTIN (a valid one may happen to pass Luhn too).
        for i, cell in enumerate(cells):
            if i != gtin_at and card_spans(cell):
                column = _COLUMNS[index.index(i)]
                row.fail(column, _CARD_NUMBER)
                row.skip = (row.skip or set()) | {column}
    values = [cells[i] if i >= 0 else None for i in index]
    get = row.get
    order_cells = values[:14]
    if row.skip is None and order_cells == repeat.order_cells:
        number, state = repeat.number, repeat.state
    else:
        (number, placed, currency, channel, email, name, phone, country, address, disc, ship_fee, ship_tax, brand,
         last4) = order_cells
        number = get("order_number", number, _ORDER_NUMBER, True)
        email = get("customer_email", email, _email, True)
        key = email.lower() if email is not None and email is not _BAD else email
        fields = (get("placed_at", placed, _when, True), get("currency", currency, _currency, True),
                  get("channel", channel, _CHANNEL) or "web", key,
                  get("order_discount_minor", disc, _MONEY, True), get("shipping_minor", ship_fee, _MONEY, True),
                  get("shipping_tax_minor", ship_tax, _MONEY) or 0, get("payment_brand", brand, _BRAND),
                  get("payment_last4", last4, _last4))
        customer = (email, get("customer_name", name, _NAME, True), get("customer_phone", phone, _PHONE),
                    get("customer_country", country, _country) or "US",
                    get("customer_address", address, _ADDRESS))
        state = collect.order(row, number, fields + customer[1:], customer, line, _CSV_ORDER_NAMES)
        if state is not None:
            number = state[3]
        repeat.order_cells, repeat.number, repeat.state = order_cells, number, state
        repeat.ship_cells = None

    (line_no, sku, gtin, title, category, quantity, price, line_disc, tax, weight, serials, carrier, tracking,
     shipped, delivered) = values[14:]
    line_no = get("line_no", line_no, _LINE_NO, True)
    quantity = get("quantity", quantity, _QUANTITY, True)
    weight_g = get("weight_g", weight, _WEIGHT) or 0
    serial_json = get("serial_numbers", serials, _serials_csv) or _NO_SERIALS
    if serial_json is not _BAD and serial_json is not _NO_SERIALS and quantity is not _BAD:
        assert serials is not None  # a cell that parsed to serial numbers held text
        count = serials.count("|") + 1
        if count > quantity:
            row.fail("serial_numbers", f"lists {count} serial numbers but the quantity is {quantity}")
    line_values = (get("sku", sku, _SKU, True), get("gtin", gtin, _gtin), get("title", title, _TITLE, True),
                   get("category", category, _CATEGORY, True), quantity,
                   get("unit_price_minor", price, _MONEY, True),
                   get("line_discount_minor", line_disc, _MONEY, True), get("tax_minor", tax, _MONEY, True),
                   weight_g, serial_json)

    ship_cells = values[25:]
    if row.skip is None and ship_cells == repeat.ship_cells:
        tracking, ship = repeat.tracking, repeat.ship
    else:
        ship = None
        tracking = get("tracking_number", tracking, _TRACKING)
        if tracking is None:
            given = [n for n, v in zip(("carrier", "shipped_at", "delivered_at"), (carrier, shipped, delivered))
                     if v is not None and v.strip()]
            if given:
                row.fail("tracking_number", f"is missing but {', '.join(given)} "
                                            f"{'is' if len(given) == 1 else 'are'} given; a shipment needs "
                                            "its tracking number")
        elif tracking is not _BAD:
            found = [get("carrier", carrier, _CARRIER, True), get("shipped_at", shipped, _when, True),
                     get("delivered_at", delivered, _when)]
            if found[1] is not _BAD and found[2] is not None and found[2] is not _BAD and found[2] < found[1]:
                row.fail("delivered_at", "is before shipped_at")
            ship = collect.shipment(row, number, state, tracking, found + [0], line, repeated=True)
        repeat.ship_cells, repeat.tracking, repeat.ship = ship_cells, tracking, ship
    if ship is not None and quantity is not _BAD and weight_g is not _BAD:
        ship[3] += quantity * weight_g  # the shipment weighs what its lines weigh
    collect.line(row, state, line_no, line, line_values)


# --- JSON ------------------------------------------------------------------------------------------
_JSON_ORDER_NAMES = ("placed_at", "currency", "channel", "customer.email", "order_discount_minor", "shipping_minor",
                     "shipping_tax_minor", "payment_brand", "payment_last4", "customer.name", "customer.phone",
                     "customer.country", "customer.address")


def _read_json(path: Path) -> OrderBatch:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist; check the path of the export") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder; give the export file itself") from None
    except PermissionError:
        raise InvalidInput(f"{path} cannot be read (permission denied); check its permissions") from None
    if not data.strip():
        raise InvalidInput(f"{path} is empty; export the orders again")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, f"byte {exc.start + 1} is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                           "export it again or fix it there") from None
    except RecursionError:
        raise InvalidInput(f"{path} is nested too deeply to be an order export") from None
    orders = doc.get("orders") if isinstance(doc, dict) else doc
    if not isinstance(orders, list):
        raise InvalidInput(f"{path} must hold a list of orders, or an object with an \"orders\" list; "
                           "see 'Importing orders' in the README")
    if not orders:
        raise InvalidInput(f"{path} holds no orders; check that it is the right export")
    problems = _Problems(str(path), "order")
    collect = _Collector(problems)
    for i, order in enumerate(orders):
        before = problems.total
        _json_order(collect, f"orders[{i}]", order)
        if problems.total > before:
            problems.bad_rows += 1
    return collect.batch(str(path), "order")


def _unknown_keys(row: _Row, obj: dict[str, Any], known: tuple[str, ...], what: str) -> None:
    for key in obj:
        if key not in known:
            row.fail(str(key), f"is not a field of {what} (a typo?); the fields are {', '.join(known)}")


def _object(row: _Row, name: str | None, value: Any, what: str) -> dict[str, Any] | None:
    if value.__class__ is dict:
        return value
    row.fail(name, f"must be an object with the fields of {what}, not {_show(value)}")
    return None


def _json_order(collect: _Collector, where: str, raw: Any) -> None:
    row = _Row(collect.problems, where, csv_line=False)
    order = _object(row, None, raw, "an order")
    if order is None:
        return
    _unknown_keys(row, order, _ORDER_KEYS, "an order")
    get = row.get
    number = get("order_number", order.get("order_number"), _ORDER_NUMBER, True)
    if number is not None and number is not _BAD and number in collect.orders:
        row.fail("order_number", f"{number} is also the number of {collect.orders[number][1]}; "
                                 "list each order once")
        number = _BAD
    crow = _Row(collect.problems, f"{where}.customer", csv_line=False)
    customer_raw = order.get("customer")
    email = name = phone = country = address = _BAD
    if customer_raw is None:
        row.fail("customer", "is missing")
    elif (customer := _object(row, "customer", customer_raw, "a customer")) is not None:
        _unknown_keys(crow, customer, _CUSTOMER_KEYS, "a customer")
        email = crow.get("email", customer.get("email"), _email, True)
        name = crow.get("name", customer.get("name"), _NAME, True)
        phone = crow.get("phone", customer.get("phone"), _PHONE)
        country = crow.get("country", customer.get("country"), _country) or "US"
        address = crow.get("address", customer.get("address"), _ADDRESS)
    key = email.lower() if email is not None and email is not _BAD else email
    fields = (get("placed_at", order.get("placed_at"), _when, True),
              get("currency", order.get("currency"), _currency, True),
              get("channel", order.get("channel"), _CHANNEL) or "web", key,
              get("order_discount_minor", order.get("order_discount_minor"), _MONEY, True),
              get("shipping_minor", order.get("shipping_minor"), _MONEY, True),
              get("shipping_tax_minor", order.get("shipping_tax_minor"), _MONEY) or 0,
              get("payment_brand", order.get("payment_brand"), _BRAND),
              get("payment_last4", order.get("payment_last4"), _last4),
              name, phone, country, address)
    state = collect.order(row, number, fields, (email, name, phone, country, address), where, _JSON_ORDER_NAMES)
    if state is not None:
        number = state[3]

    lines = order.get("lines")
    if lines.__class__ is not list or not lines:
        row.fail("lines", "must be a list with at least one order line" if lines is None or lines.__class__ is list
                 else f"must be a list of order lines, not {_show(lines)}")
        lines = []
    for j, raw_line in enumerate(lines):
        lrow = _Row(collect.problems, f"{where}.lines[{j}]", csv_line=False)
        line = _object(lrow, None, raw_line, "an order line")
        if line is None:
            continue
        _unknown_keys(lrow, line, _LINE_KEYS, "an order line")
        lget = lrow.get
        line_no = lget("line_no", line.get("line_no"), _LINE_NO, True)
        quantity = lget("quantity", line.get("quantity"), _QUANTITY, True)
        serials = lget("serial_numbers", line.get("serial_numbers"), _serials_json) or _NO_SERIALS
        if serials is not _BAD and serials is not _NO_SERIALS and quantity is not _BAD:
            count = len(line["serial_numbers"])
            if count > quantity:
                lrow.fail("serial_numbers", f"lists {count} serial numbers but the quantity is {quantity}")
        values = (lget("sku", line.get("sku"), _SKU, True), lget("gtin", line.get("gtin"), _gtin),
                  lget("title", line.get("title"), _TITLE, True),
                  lget("category", line.get("category"), _CATEGORY, True), quantity,
                  lget("unit_price_minor", line.get("unit_price_minor"), _MONEY, True),
                  lget("line_discount_minor", line.get("line_discount_minor"), _MONEY, True),
                  lget("tax_minor", line.get("tax_minor"), _MONEY, True),
                  lget("weight_g", line.get("weight_g"), _WEIGHT) or 0, serials)
        collect.line(lrow, state, line_no, lrow.prefix, values)

    shipments = order.get("shipments")
    if shipments is None:
        shipments = []
    elif shipments.__class__ is not list:
        row.fail("shipments", f"must be a list of shipments, not {_show(shipments)}")
        shipments = []
    for k, raw_ship in enumerate(shipments):
        srow = _Row(collect.problems, f"{where}.shipments[{k}]", csv_line=False)
        ship = _object(srow, None, raw_ship, "a shipment")
        if ship is None:
            continue
        _unknown_keys(srow, ship, _SHIPMENT_KEYS, "a shipment")
        sget = srow.get
        tracking = sget("tracking_number", ship.get("tracking_number"), _TRACKING, True)
        ship_values = [sget("carrier", ship.get("carrier"), _CARRIER, True),
                       sget("shipped_at", ship.get("shipped_at"), _when, True),
                       sget("delivered_at", ship.get("delivered_at"), _when),
                       sget("weight_g", ship.get("weight_g"), _WEIGHT) or 0]
        if (ship_values[1] is not _BAD and ship_values[2] is not None and ship_values[2] is not _BAD
                and ship_values[2] < ship_values[1]):
            srow.fail("delivered_at", "is before shipped_at")
        if tracking is not _BAD:
            collect.shipment(srow, number, state, tracking, ship_values, srow.prefix, repeated=False)
