"""Deterministic demo data for a station database, and what is physically in a demo parcel.

``generate_demo`` writes customers, orders, shipments and RMAs that look like a real retailer's
(five countries and currencies, valid GTINs and carrier check digits, serial numbers on
electronics) so that the console, the clerk simulator and the benchmarks have something real to
chew on. The same seed and ``now`` give the same rows byte for byte.

Speed and safety: a million orders are built into ``<path>.building`` through a raw sqlite3
connection with the journal and fsyncs off, in batches, and only a finished, fsynced file is
renamed onto ``path``; an interrupted build leaves the old database (or nothing) in place.

``parcel_contents`` / ``plan_scans`` say what a simulated parcel holds (clean, empty box, a swapped
item, a serial never shipped, an extra item) from nothing but the RMA number and a seed.
"""
from __future__ import annotations

import bisect
import hashlib
import os
import random
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Table

from console.checkdigits import fedex12_check_digit, gs1_check_digit, mod7_check_digit, ups_check_digit
from console.codes import order_number, rma_number
from console.errors import EnvironmentProblem
from console.policy import load_policy
from console.passwords import password_hasher
from console.signin import badge_hash
from db.engine import make_engine, sqlite_url
from db.migrate import upgrade
from db.models import (
    CarrierEvent,
    Customer,
    Order,
    OrderLine,
    PolicyVersion,
    ReturnAuthorization,
    ReturnItem,
    Shipment,
    Station,
    User,
)

DEMO_PIN = "1234"


class DemoUser(NamedTuple):
    username: str
    display_name: str
    role: str


# Ids are positions + 1: the simulator and the factories rely on aiko being user 1.
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("aiko", "Aiko Tanaka", "clerk"),
    DemoUser("ben", "Ben Okafor", "clerk"),
    DemoUser("mei", "Mei Chen", "supervisor"),
    DemoUser("sam", "Sam Rivera", "supervisor"),
    DemoUser("admin", "Admin", "admin"),
)
# A badge per demo user, so a demo clerk can sign in with a scan. Real badge codes should be
# random; these spell their owner so that people trying the console can tell them apart.
DEMO_BADGES: dict[str, str] = {
    "aiko": "BADGE-AIKO-0001",
    "ben": "BADGE-BEN-0002",
    "mei": "BADGE-MEI-0003",
    "sam": "BADGE-SAM-0004",
    "admin": "BADGE-ADMIN-0005",
}

MAX_ORDERS = 5_000_000  # tracking-number and order-number bodies are sized for this
ORDERS_PER_BATCH = 8_000  # ~20k order lines per executemany
SITE = "WH1"

COUNTRIES = ("US", "JP", "CN", "DE", "GB")
COUNTRY_WEIGHTS = (45, 20, 10, 13, 12)
CURRENCIES = ("USD", "JPY", "CNY", "EUR", "GBP")  # by country index
TAX_BP = (800, 1000, 1300, 1900, 2000)
TIERS = ("standard", "silver", "gold", "platinum")
TIER_WEIGHTS = (60, 25, 12, 3)
CATEGORIES = ("electronics", "apparel", "footwear", "home", "beauty")
SHIPPING_FEE = (599, 550, 1000, 495, 399)
FREE_SHIPPING_FROM = (5000, 5000, 29900, 4900, 4000)
COUPON = (1000, 1500, 5000, 1000, 1000)
PACKAGING_G = (120, 260)  # outbound box and filling, a range

DAY = 86_400

# --- the product catalog ---------------------------------------------------------------------
# (item, base USD cents, unit weight g); a product is brand x item x variant.
_ITEMS: dict[str, list[tuple[str, int, int]]] = {
    "electronics": [("Wireless Earbuds", 7999, 60), ("Noise-Cancelling Headphones", 24999, 310),
                    ("Bluetooth Speaker", 5999, 560), ("Smartwatch", 19999, 80), ("Tablet 10-inch", 32999, 480),
                    ("E-reader", 12999, 200), ("Action Camera", 29999, 150), ("Portable SSD 1 TB", 10999, 60),
                    ("Mechanical Keyboard", 8999, 900), ("Wireless Mouse", 3499, 100),
                    ("USB-C Charger 65 W", 3999, 150), ("Smart Home Hub", 9999, 350), ("Mini Drone", 44999, 250),
                    ("Game Controller", 5999, 270)],
    "apparel": [("T-Shirt", 1999, 200), ("Hoodie", 4999, 600), ("Slim Jeans", 5999, 700), ("Rain Jacket", 8999, 500),
                ("Merino Sweater", 7999, 400), ("Chinos", 4999, 550), ("Wrap Dress", 6999, 350),
                ("Polo Shirt", 2999, 250), ("Down Vest", 9999, 450)],
    "footwear": [("Running Shoes", 11999, 750), ("Leather Boots", 15999, 1400), ("Canvas Sneakers", 7999, 800),
                 ("Sandals", 3999, 400), ("Trail Runners", 12999, 850), ("Penny Loafers", 9999, 900)],
    "home": [("Chef's Knife", 6999, 300), ("Cast-Iron Skillet", 4999, 2600), ("Cotton Sheet Set", 7999, 1500),
             ("Ceramic Mug Set", 2999, 1600), ("Desk Lamp", 3999, 1100), ("Throw Blanket", 4999, 1200),
             ("Pour-Over Coffee Maker", 3499, 700), ("Bath Towel Set", 3999, 1800)],
    "beauty": [("Face Serum", 3499, 120), ("Moisturizer", 2899, 200), ("Eau de Parfum 50 ml", 8999, 350),
               ("Shampoo", 1499, 450), ("Hair Dryer", 6999, 900), ("Lipstick", 1999, 50),
               ("Sunscreen SPF 50", 1899, 150),
               ("Electric Toothbrush", 7999, 400)],
}
_BRANDS = {
    "electronics": ["Kestrel", "Nordlight", "Sora", "Volta", "Heliox"],
    "apparel": ["Fieldhouse", "Aomori", "Linden & Co", "Marlow"],
    "footwear": ["Stride", "Hakone", "Brogue & Last"],
    "home": ["Hearth", "Kinoki", "Larsson"],
    "beauty": ["Lumière", "Hanami", "Verdant"],
}
_VARIANTS = {
    "electronics": ["Black", "White", "Graphite", "Silver", "Blue"],
    "apparel": ["Navy, S", "Navy, M", "Black, L", "Grey, M", "Olive, XL", "White, S", "Red, M"],
    "footwear": ["US 7", "US 8", "US 9", "US 10", "US 11"],
    "home": ["Natural", "Charcoal", "Sage", "Ivory"],
    "beauty": ["30 ml", "50 ml", "Travel size", "Classic"],
}
_CATEGORY_COUNTS = {"electronics": 60, "apparel": 80, "footwear": 50, "home": 60, "beauty": 50}
_SKU_PREFIX = {"electronics": "EL", "apparel": "AP", "footwear": "FW", "home": "HM", "beauty": "BT"}
_CATALOG_SEED = 20_261_120  # the catalog is the same for every demo build


@dataclass(frozen=True)
class Product:
    sku: str
    gtin: str
    title: str
    category: str
    weight_g: int
    prices: tuple[int, ...]  # minor units, by country index (USD, JPY, CNY, EUR, GBP)
    serial_prefix: str | None  # electronics carry a serial number per unit
    popularity: int


def _nice_prices(usd_cents: int) -> tuple[int, ...]:
    """Shelf prices the way each market writes them: $79.99, ¥11,980, ¥579.00, €73.99, £62.99."""
    def ninety_nine(cents: int) -> int:
        return max(99, cents // 100 * 100 - 1)
    jpy = max(100, (usd_cents * 150 // 100 + 50) // 100 * 100 - 20)
    cny = (usd_cents * 72 // 10 // 100 // 10 * 10 + 9) * 100
    return (ninety_nine(usd_cents), jpy, cny, ninety_nine(usd_cents * 92 // 100), ninety_nine(usd_cents * 79 // 100))


def _gtin(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:  # Japanese EAN-13 (GS1 Japan prefixes 45 and 49)
        body = rng.choice(("45", "49")) + f"{rng.randrange(10**10):010d}"
    elif kind < 0.65:  # 12-digit UPC-A
        body = "0" + f"{rng.randrange(10**10):010d}"
    else:  # EAN-13 from Germany, the UK and China
        body = rng.choice(("400", "412", "440", "500", "501", "690", "693")) + f"{rng.randrange(10**9):09d}"
    return body + str(gs1_check_digit(body))


@cache
def catalog() -> tuple[Product, ...]:
    rng = random.Random(_CATALOG_SEED)
    products: list[Product] = []
    gtins: set[str] = set()
    for category in CATEGORIES:
        seen: set[str] = set()
        skus = rng.sample(range(10_000, 99_999), _CATEGORY_COUNTS[category])
        while len(seen) < _CATEGORY_COUNTS[category]:
            item, base, weight = rng.choice(_ITEMS[category])
            title = f"{rng.choice(_BRANDS[category])} {item}, {rng.choice(_VARIANTS[category])}"
            if title in seen:
                continue
            seen.add(title)
            gtin = _gtin(rng)
            while gtin in gtins:
                gtin = _gtin(rng)
            gtins.add(gtin)
            usd = base * rng.randint(85, 115) // 100
            serial_prefix = None
            if category == "electronics":
                serial_prefix = rng.choice("ABCDEFGHJKLMNPQRSTUVW") + rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
            products.append(Product(
                sku=f"{_SKU_PREFIX[category]}-{skus[len(seen) - 1]}", gtin=gtin, title=title, category=category,
                weight_g=max(20, weight * rng.randint(90, 110) // 100), prices=_nice_prices(usd),
                serial_prefix=serial_prefix, popularity=rng.choice((1, 2, 3, 5, 8, 13))))
    return tuple(products)


@cache
def _catalog_by_gtin() -> dict[str, Product]:
    return {p.gtin: p for p in catalog()}


# --- people ----------------------------------------------------------------------------------
_JP_FAMILY = [("田中", "Tanaka"), ("佐藤", "Sato"), ("鈴木", "Suzuki"), ("高橋", "Takahashi"), ("伊藤", "Ito"),
              ("渡辺", "Watanabe"), ("山本", "Yamamoto"), ("中村", "Nakamura"), ("小林", "Kobayashi"),
              ("加藤", "Kato"), ("吉田", "Yoshida"), ("山田", "Yamada")]
_JP_GIVEN = [("愛子", "Aiko"), ("翔太", "Shota"), ("陽菜", "Hina"), ("蓮", "Ren"), ("結衣", "Yui"), ("大翔", "Hiroto"),
             ("美咲", "Misaki"), ("健太", "Kenta"), ("花子", "Hanako"), ("拓海", "Takumi"), ("さくら", "Sakura"),
             ("直樹", "Naoki")]
_CN_FAMILY = [("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"),
              ("黄", "Huang"), ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun")]
_CN_GIVEN = [("伟", "Wei"), ("芳", "Fang"), ("娜", "Na"), ("敏", "Min"), ("静", "Jing"), ("强", "Qiang"),
             ("磊", "Lei"), ("洋", "Yang"), ("艳", "Yan"), ("杰", "Jie"), ("秀英", "Xiuying"), ("建华", "Jianhua"),
             ("志强", "Zhiqiang"), ("晓明", "Xiaoming")]
_LATIN = {
    "US": (["James", "Mary", "Michael", "Patricia", "Robert", "Jennifer", "David", "Linda", "Maria", "Carlos",
            "Aisha", "Jamal", "Emily", "Daniel", "Sofia", "Priya", "Kevin", "Grace", "Olivia", "Ethan"],
           ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
            "Hernandez", "Lopez", "Wilson", "Anderson", "Nguyen", "Kim", "Patel", "O'Brien", "Thompson", "Rivera"]),
    "DE": (["Lukas", "Anna", "Jürgen", "Sophie", "Leon", "Marie", "Felix", "Lena", "Jonas", "Hannah",
            "Maximilian", "Katharina", "Günter", "Ursula"],
           ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
            "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter"]),
    "GB": (["Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Emily", "Charlotte", "Noah",
            "Freya", "Arthur", "Siobhan", "Rhys"],
           ["Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Roberts",
            "Walker", "Wright", "Hughes", "Patel"]),
}
_EMAIL_DOMAIN = {"US": "example.com", "JP": "example.jp", "CN": "example.cn", "DE": "example.de",
                 "GB": "example.co.uk"}
_US_AREAS = (212, 415, 312, 206, 617, 512, 303, 404, 702, 808)
_ASCII = str.maketrans({"ü": "ue", "ö": "oe", "ä": "ae", "ß": "ss", "'": ""})

# --- delivery addresses, written as each country writes them (one printed line per line) -------
_JP_PLACES = (("100-0005", "東京都千代田区丸の内"), ("150-0002", "東京都渋谷区渋谷"), ("530-0001", "大阪府大阪市北区梅田"),
              ("460-0008", "愛知県名古屋市中区栄"), ("060-0005", "北海道札幌市中央区北五条西"),
              ("810-0001", "福岡県福岡市中央区天神"), ("220-0012", "神奈川県横浜市西区みなとみらい"),
              ("604-8005", "京都府京都市中京区恵比須町"))
_JP_BUILDINGS = ("コーポ山田", "サンハイツ", "グリーンマンション", "メゾン桜", "パークハウス")
_CN_PLACES = (("200120", "上海市浦东新区", "世纪大道"), ("100020", "北京市朝阳区", "建国路"),
              ("518048", "广东省深圳市福田区", "深南大道"), ("510623", "广东省广州市天河区", "天河路"),
              ("310002", "浙江省杭州市上城区", "解放路"), ("610041", "四川省成都市武侯区", "人民南路"))
_US_PLACES = (("New York, NY", "100"), ("San Francisco, CA", "941"), ("Chicago, IL", "606"),
              ("Seattle, WA", "981"), ("Boston, MA", "021"), ("Austin, TX", "787"), ("Denver, CO", "802"),
              ("Atlanta, GA", "303"), ("Las Vegas, NV", "891"), ("Honolulu, HI", "968"))
_US_STREETS = ("Main St", "Oak Ave", "Maple Dr", "Washington Blvd", "Park Pl", "Cedar Ln", "Elm St", "Lake Rd")
_DE_PLACES = (("10115", "Berlin"), ("80331", "München"), ("20095", "Hamburg"), ("50667", "Köln"),
              ("60311", "Frankfurt am Main"), ("70173", "Stuttgart"))
_DE_STREETS = ("Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schulstraße", "Lindenallee", "Königsweg")
_GB_PLACES = (("London", "SW1A", "2AA"), ("Manchester", "M1", "1AE"), ("Birmingham", "B1", "1BB"),
              ("Leeds", "LS1", "4AP"), ("Glasgow", "G1", "1XQ"), ("Bristol", "BS1", "5TR"))
_GB_STREETS = ("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane", "Queen's Road")


def demo_payment_token(customer_id: int) -> str:
    """The processor's token for a customer's card: one per customer, except that in every 500
    customers three share one card (a small ring of linked accounts for the risk engine to find).
    Derived from the id, not drawn, so adding it left every other demo value as it was."""
    holder = customer_id - customer_id % 500 + 1 if customer_id % 500 in (1, 2, 3) else customer_id
    return f"tok_{holder * 2654435761 % 2**32:08x}"


def demo_address(country: str, rng: random.Random) -> str:
    """A plausible delivery address for ``country``, newline-separated as it is printed."""
    r, pick = rng.random, rng.choice
    if country == "JP":
        postcode, place = pick(_JP_PLACES)
        street = f"{place}{1 + int(r() * 4)}丁目{1 + int(r() * 20)}-{1 + int(r() * 30)}"
        lines = [f"〒{postcode}", street]
        if r() < 0.6:
            lines.append(f"{pick(_JP_BUILDINGS)} {1 + int(r() * 9)}0{1 + int(r() * 5)}号室")
        return "\n".join(lines)
    if country == "CN":
        postcode, district, road = pick(_CN_PLACES)
        return f"{district}{road}{1 + int(r() * 800)}号\n{1 + int(r() * 30)}栋{1 + int(r() * 20)}0{1 + int(r() * 4)}室\n邮编 {postcode}"
    if country == "US":
        city, zip3 = pick(_US_PLACES)
        lines = [f"{1 + int(r() * 9899)} {pick(_US_STREETS)}"]
        if r() < 0.3:
            lines.append(f"Apt {1 + int(r() * 30)}{'ABCD'[int(r() * 4)]}")
        lines.append(f"{city} {zip3}{int(r() * 100):02d}")
        return "\n".join(lines)
    if country == "DE":
        postcode, city = pick(_DE_PLACES)
        return f"{pick(_DE_STREETS)} {1 + int(r() * 120)}\n{postcode} {city}"
    city, outward, inward = pick(_GB_PLACES)
    return f"{1 + int(r() * 200)} {pick(_GB_STREETS)}\n{city}\n{outward} {inward}"


# --- carriers and places ---------------------------------------------------------------------
_CARRIERS = {  # by country index: (carrier, cumulative share)
    0: (("UPS", 0.45), ("FedEx", 0.75), ("USPS", 1.0)),
    1: (("Yamato", 0.65), ("Sagawa", 1.0)),
    2: (("UPS", 1.0),), 3: (("UPS", 1.0),), 4: (("UPS", 1.0),),
}
_HUBS = (("Louisville, KY, US", "Memphis, TN, US", "Chicago, IL, US"), ("Tokyo, JP", "Osaka, JP", "Nagoya, JP"),
         ("Shanghai, CN", "Shenzhen, CN", "Beijing, CN"), ("Cologne, DE", "Frankfurt, DE", "Hamburg, DE"),
         ("East Midlands, GB", "London, GB", "Manchester, GB"))
_UPS_SHIPPERS = ("A8V246", "0E97X3", "4Y1W52")
_UPS_RETURN_SHIPPER = "R7T90K"

# --- returns ---------------------------------------------------------------------------------
_REASONS_BY_CATEGORY = {
    "apparel": (("too_small", 30), ("too_large", 25), ("changed_mind", 20), ("not_as_described", 10),
                ("damaged", 5), ("wrong_item", 5), ("better_price", 3), ("arrived_late", 2)),
    "electronics": (("defective", 30), ("changed_mind", 20), ("not_as_described", 15), ("damaged", 12),
                    ("better_price", 10), ("wrong_item", 8), ("arrived_late", 5)),
    "home": (("changed_mind", 30), ("damaged", 25), ("not_as_described", 20), ("defective", 10),
             ("wrong_item", 8), ("better_price", 5), ("arrived_late", 2)),
    "beauty": (("changed_mind", 40), ("not_as_described", 20), ("damaged", 20), ("wrong_item", 10),
               ("arrived_late", 5), ("better_price", 5)),
}
_REASONS_BY_CATEGORY["footwear"] = _REASONS_BY_CATEGORY["apparel"]
_COMMENTS = {
    "too_small": ("Runs small, I need one size up.", "サイズが小さすぎました。"),
    "too_large": ("Too big around the shoulders.", "少し大きかったです。"),
    "defective": ("Stops charging after an hour.", "电源打不开。", "Does not turn on."),
    "damaged": ("Box was crushed and the item is scratched.", "箱が潰れていました。"),
    "not_as_described": ("Colour is different from the photos.", "颜色和图片不一样。"),
    "wrong_item": ("I received a different model.",),
    "changed_mind": ("No longer needed.",),
}
# (status, cumulative share) for RMAs on recent deliveries and on older ones.
_RECENT_STATUSES = (("authorized", 0.72), ("received", 0.79), ("pending_review", 0.85), ("closed", 0.90),
                    ("canceled", 1.0))
_OLD_STATUSES = (("authorized", 0.06), ("received", 0.09), ("pending_review", 0.12), ("closed", 0.67),
                 ("canceled", 0.77), ("expired", 1.0))
_ITEM_STATES = {"authorized": ("awaiting", "pending"), "received": ("received", "pending"),
                "pending_review": ("received", "manual_review"), "closed": ("received", "accepted"),
                "canceled": ("awaiting", "pending"), "expired": ("awaiting", "pending")}
_RECENT_DAYS = 28


@dataclass(frozen=True)
class DemoSummary:
    stations: int
    users: int
    policy_versions: int
    customers: int
    orders: int
    order_lines: int
    shipments: int
    carrier_events: int
    return_authorizations: int
    return_items: int
    seconds: float
    rma_statuses: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 2)
        return data


# --- small pure helpers --------------------------------------------------------------------------
def _pick(table: tuple[tuple[str, float], ...], x: float) -> str:
    for value, upto in table:
        if x < upto:
            return value
    return table[-1][0]


def _cumulative(weights: tuple[int, ...] | list[int]) -> list[float]:
    total = sum(weights)
    out, acc = [], 0
    for w in weights:
        acc += w
        out.append(acc / total)
    return out


def _scramble(n: int, modulus: int, mult: int, offset: int) -> int:
    """A bijection on [0, modulus): unique ids that do not look sequential."""
    return (n * mult + offset) % modulus


def _base36(n: int, width: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(digits[r])
    return "".join(reversed(out))


def ups_number(shipper: str, service: str, seq7: int) -> str:
    body = f"{shipper}{service}{seq7:07d}"
    return f"1Z{body}{ups_check_digit(body)}"


def usps_number(mailer: str, seq9: int) -> str:
    body = f"9400111{mailer}{seq9:09d}"
    return body + str(gs1_check_digit(body))


def fedex_number(seq10: int) -> str:
    body = f"7{seq10:010d}"
    return body + str(fedex12_check_digit(body))


def mod7_number(lead: str, seq10: int) -> str:
    body = f"{lead}{seq10:010d}"
    return body + str(mod7_check_digit(body))


class _Clock:
    """Epoch seconds to SQLAlchemy's SQLite text form, with a per-day cache (strftime is slow)."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def __call__(self, ts: int) -> str:
        day, sec = divmod(ts, DAY)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = datetime.fromtimestamp(day * DAY, timezone.utc).strftime("%Y-%m-%d ")
            self._days[day] = prefix
        return f"{prefix}{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.000000"


# --- the database build ------------------------------------------------------------------------
def _insert_sql(table: Table, *, leave_out: tuple[str, ...] = ()) -> str:
    """An INSERT of every column of ``table`` (in the models' order, the order the builders below
    make their tuples in) but those ``leave_out`` leaves NULL. A column added to the models makes
    every row of its table one value short, which ``_Build.insert`` refuses."""
    if unknown := set(leave_out) - set(table.c.keys()):
        raise RuntimeError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    names = [c.name for c in table.columns if c.name not in leave_out]
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({','.join('?' * len(names))})"


_SQL = {
    "stations": _insert_sql(Station.__table__),
    "users": _insert_sql(User.__table__, leave_out=("created_from_station",)),
    "policy_versions": _insert_sql(PolicyVersion.__table__, leave_out=("sha256", "review_limits",
                                                                       "review_at_or_above")),
    "customers": _insert_sql(Customer.__table__),
    "orders": _insert_sql(Order.__table__, leave_out=("from_station",)),
    "order_lines": _insert_sql(OrderLine.__table__, leave_out=("from_station",)),
    "shipments": _insert_sql(Shipment.__table__),
    "carrier_events": _insert_sql(CarrierEvent.__table__),
    "return_authorizations": _insert_sql(ReturnAuthorization.__table__, leave_out=("order_found_by", "updated_at")),
    "return_items": _insert_sql(ReturnItem.__table__, leave_out=("updated_at",)),
}
_WIDTH = {table: sql.count("?") for table, sql in _SQL.items()}


@cache
def _demo_badge_hash(code: str) -> str:
    # One slow hash per demo badge per process, however many demo databases a test run builds.
    return badge_hash(code)


class _Build:
    def __init__(self, conn: sqlite3.Connection, *, orders: int, seed: int, now: datetime, station_id: str,
                 station_name: str, time_zone: str) -> None:
        self.conn = conn
        self.n_orders = orders
        self.seed = seed
        self.now_ts = int(now.timestamp())
        self.station = (station_id, station_name, time_zone)
        self.ts = _Clock()
        self.counts: dict[str, int] = {t: 0 for t in _SQL}
        self.rma_statuses: dict[str, int] = {}
        self.n_customers = orders // 3 + 1
        policy = load_policy()
        self.policy = policy
        self.reasons = {cat: tuple((code, w) for code, w in table if code in policy.reasons)
                        for cat, table in _REASONS_BY_CATEGORY.items()}
        if not all(self.reasons.values()):
            raise EnvironmentProblem("the default policy lacks the reason codes the demo data uses")

    def rng(self, stream: str) -> random.Random:
        # Independent streams: changing how one table is generated leaves the others as they were.
        return random.Random(f"returns-console-demo:{self.seed}:{stream}")

    def insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            if len(rows[0]) != _WIDTH[table]:
                raise RuntimeError(f"demo {table} rows have {len(rows[0])} values for {_WIDTH[table]} columns: "
                                   f"{_SQL[table]}")
            self.conn.executemany(_SQL[table], rows)
            self.counts[table] += len(rows)
            rows.clear()

    def run(self) -> None:
        self.conn.execute("BEGIN")
        self.reference_data()
        countries, tiers = self.customer_profiles()
        orders_count = [0] * (self.n_customers + 1)
        returns_count = [0] * (self.n_customers + 1)
        self.orders(countries, orders_count, returns_count)
        self.customers(countries, tiers, orders_count, returns_count)
        self.conn.execute("COMMIT")

    def reference_data(self) -> None:
        rng = self.rng("reference")
        created = self.ts(self.now_ts - 400 * DAY)
        station_id, station_name, time_zone = self.station
        self.insert("stations", [(station_id, station_name, SITE, time_zone, None, created)])
        hasher = password_hasher()
        # Argon2 salts come from the seeded stream and badge hashes are deterministic by design
        # (console.signin.badge_hash), so the same seed still gives the same rows.
        self.insert("users", [(i, u.username, u.display_name, u.role, hasher.hash(DEMO_PIN, salt=rng.randbytes(16)),
                               _demo_badge_hash(DEMO_BADGES[u.username]), 0, None, 1, created)
                              for i, u in enumerate(DEMO_USERS, start=1)])
        self.insert("policy_versions", [(self.policy.version, self.policy.source, self.ts(self.now_ts - 30 * DAY))])

    def customer_profiles(self) -> tuple[bytearray, bytearray]:
        rng = self.rng("customer-profiles")
        r = rng.random
        country_cum, tier_cum = _cumulative(COUNTRY_WEIGHTS), _cumulative(TIER_WEIGHTS)
        countries, tiers = bytearray(self.n_customers + 1), bytearray(self.n_customers + 1)
        for cid in range(1, self.n_customers + 1):
            countries[cid] = bisect.bisect(country_cum, r())
            tiers[cid] = bisect.bisect(tier_cum, r())
        return countries, tiers

    def customers(self, countries: bytearray, tiers: bytearray, orders_count: list[int],
                  returns_count: list[int]) -> None:
        rng = self.rng("customers")
        r = rng.random
        places = self.rng("addresses")  # its own stream: adding addresses changed no other column
        mult, offset = 7_654_321, rng.randrange(10**7)
        rows: list[tuple[Any, ...]] = []
        for cid in range(1, self.n_customers + 1):
            ci = countries[cid]
            country = COUNTRIES[ci]
            latin = r() < 0.15
            if country == "JP":
                fam, given = _JP_FAMILY[int(r() * len(_JP_FAMILY))], _JP_GIVEN[int(r() * len(_JP_GIVEN))]
                name = f"{given[1]} {fam[1]}" if latin else f"{fam[0]} {given[0]}"
                first, last = given[1], fam[1]
            elif country == "CN":
                fam, given = _CN_FAMILY[int(r() * len(_CN_FAMILY))], _CN_GIVEN[int(r() * len(_CN_GIVEN))]
                name = f"{given[1]} {fam[1]}" if latin else f"{fam[0]}{given[0]}"
                first, last = given[1], fam[1]
            else:
                firsts, lasts = _LATIN[country]
                first, last = firsts[int(r() * len(firsts))], lasts[int(r() * len(lasts))]
                name = f"{first} {last}"
            style = int(r() * 3)
            local = (f"{first}.{last}{cid}", f"{first[0]}{last}{cid}", f"{last}_{first}{cid}")[style]
            email = f"{local.translate(_ASCII).lower()}@{_EMAIL_DOMAIN[country]}"
            sub = _scramble(cid, 10**7, mult, offset)  # unique per customer, so a phone finds one person
            if country == "US":
                phone = f"+1 {_US_AREAS[int(r() * len(_US_AREAS))]}-{sub // 10000:03d}-{sub % 10000:04d}"
            elif country == "JP":
                phone = f"+81 {(90, 80, 70)[int(r() * 3)]}-{sub // 10000 + 1000:04d}-{sub % 10000:04d}"
            elif country == "CN":
                phone = f"+86 1{(38, 39, 58, 86)[int(r() * 4)]} {sub // 10000 + 1000:04d} {sub % 10000:04d}"
            elif country == "DE":
                phone = f"+49 15{(1, 2, 7)[int(r() * 3)]} {sub:07d}"
            else:
                phone = f"+44 7{(400, 700, 900)[int(r() * 3)] + sub // 10**6:03d} {sub % 10**6:06d}"
            created = self.now_ts - 152 * DAY - int(r() * 1200 * DAY)
            rows.append((cid, name, email, phone if r() < 0.92 else None, TIERS[tiers[cid]], country,
                         demo_address(country, places), orders_count[cid], returns_count[cid], self.ts(created)))
            if len(rows) >= 20_000:
                self.insert("customers", rows)
        self.insert("customers", rows)

    def orders(self, countries: bytearray, orders_count: list[int], returns_count: list[int]) -> None:
        rng = self.rng("orders")
        r = rng.random
        ts = self.ts
        now_ts, n_orders, n_customers = self.now_ts, self.n_orders, self.n_customers
        products = catalog()
        pop_cum = _cumulative([p.popularity for p in products])
        n_products = len(products)
        line_cum = (0.45, 0.75, 0.90, 1.0)
        start_ts, span = now_ts - 150 * DAY, 147 * DAY
        # Per-build offsets keep numbers different between seeds while staying bijective in the id.
        m7, m9, m10 = rng.randrange(10**7), rng.randrange(10**9), rng.randrange(10**10)
        serial_space = 36**7
        serial_offset = rng.randrange(serial_space)
        reasons_cum = {cat: ([c for c, _ in t], _cumulative([w for _, w in t])) for cat, t in self.reasons.items()}
        rma_rows: list[tuple[Any, ...]] = []
        order_rows: list[tuple[Any, ...]] = []
        line_rows: list[tuple[Any, ...]] = []
        ship_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        item_rows: list[tuple[Any, ...]] = []
        line_id = rma_id = item_id = event_id = 0
        unit_seq = 0
        statuses = self.rma_statuses

        for oid in range(1, n_orders + 1):
            if len(order_rows) >= ORDERS_PER_BATCH:
                self.flush(order_rows, line_rows, ship_rows, event_rows, rma_rows, item_rows)
            cid = 1 + int(r() * n_customers)
            ci = countries[cid]
            currency = CURRENCIES[ci]
            tax_bp = TAX_BP[ci]
            orders_count[cid] += 1
            placed = start_ts + int((oid - 1 + r()) * span / n_orders)

            # lines: distinct products, electronics mostly one unit
            n_lines = bisect.bisect(line_cum, r()) + 1
            chosen: list[int] = []
            while len(chosen) < n_lines:
                p = bisect.bisect(pop_cum, r())
                if p < n_products and p not in chosen:
                    chosen.append(p)
            lines = []  # (line_id, product, quantity, net, serials)
            nets = 0
            unit_weights = 0
            for line_no, p in enumerate(chosen, start=1):
                prod = products[p]
                x = r()
                if prod.serial_prefix is not None:
                    qty = 1 if x < 0.94 else 2
                else:
                    qty = 1 if x < 0.7 else (2 if x < 0.92 else 3)
                unit = prod.prices[ci]
                gross = unit * qty
                disc = gross * (10, 15, 20, 25, 30)[int(r() * 5)] // 100 if r() < 0.1 else 0
                net = gross - disc
                nets += net
                unit_weights += prod.weight_g * qty
                serials: list[str] = []
                if prod.serial_prefix is not None:
                    for _ in range(qty):
                        unit_seq += 1
                        serials.append(f"SN{prod.serial_prefix}{_base36(int(r() * 36), 1)}"
                                       f"{_base36((unit_seq * 1_000_003 + serial_offset) % serial_space, 7)}")
                    serial_json = '["' + '", "'.join(serials) + '"]'
                else:
                    serial_json = "[]"
                line_id += 1
                line_rows.append((line_id, oid, line_no, prod.sku, prod.gtin, prod.title, prod.category, qty, unit,
                                  disc, (net * tax_bp + 5000) // 10000, prod.weight_g, serial_json))
                lines.append((line_id, prod, qty, serials))

            order_discount = 0
            if r() < 0.2:  # a percentage off the order, or a fixed coupon never worth more than the lines
                percent = r() < 0.6
                order_discount = nets * (10, 15)[int(r() * 2)] // 100 if percent else min(nets, COUPON[ci])
            shipping = 0 if nets >= FREE_SHIPPING_FROM[ci] else SHIPPING_FEE[ci]
            x = r()
            if ci == 1:
                brand = "JCB" if x < 0.35 else ("Visa" if x < 0.7 else ("Mastercard" if x < 0.9 else "Amex"))
            else:
                brand = "Visa" if x < 0.5 else ("Mastercard" if x < 0.83 else "Amex")
            x = r()
            channel = "web" if x < 0.85 else ("app" if x < 0.97 else "phone")
            order_rows.append((oid, order_number(oid + 1_000_000), cid, channel, currency, ts(placed), order_discount,
                               shipping, (shipping * tax_bp + 5000) // 10000, brand, f"{int(r() * 10000):04d}",
                               demo_payment_token(cid)))

            # the outbound shipment, numbered from the order id so every tracking number is unique
            x = r()
            carrier = "UPS"
            for name, upto in _CARRIERS[ci]:
                if x < upto:
                    carrier = name
                    break
            if carrier == "UPS":
                tracking = ups_number(_UPS_SHIPPERS[oid % 3], ("01", "02", "03")[int(r() * 3)],
                                      _scramble(oid, 10**7, 7_919, m7))
            elif carrier == "FedEx":
                tracking = fedex_number(_scramble(oid, 10**10, 7_777_777, m10))
            elif carrier == "USPS":
                tracking = usps_number("20235", _scramble(oid, 10**9, 104_729, m9))
            else:
                tracking = mod7_number("4" if carrier == "Yamato" else "3", _scramble(oid, 10**10, 7_777_777, m10))
            shipped = placed + 3600 + int(r() * 40 * 3600)
            delivered: int | None = shipped + DAY + int(r() * 4 * DAY)
            x = r()
            if delivered is not None and delivered > now_ts - 1800:
                status, delivered = "in_transit", None
            elif x < 0.003:
                status, delivered = "lost", None
            elif x < 0.005:
                status, delivered = "in_transit", None
            else:
                status = "delivered"
            ship_rows.append((oid, oid, carrier, tracking, ts(shipped), ts(delivered) if delivered else None, status,
                              unit_weights + PACKAGING_G[0] + int(r() * (PACKAGING_G[1] - PACKAGING_G[0]))))

            # the return authorization, if any
            if delivered is None:
                continue
            age_days = (now_ts - delivered) / DAY
            recent = age_days <= _RECENT_DAYS
            if r() >= (0.35 if recent else 0.065):
                continue
            rma_id += 1
            returns_count[cid] += 1
            rma_status = _pick(_RECENT_STATUSES if recent else _OLD_STATUSES, r())
            statuses[rma_status] = statuses.get(rma_status, 0) + 1
            if recent:
                created = delivered + 1800 + int(r() * max(0.0, age_days - 0.1) * DAY)
            else:
                created = delivered + DAY + int(r() * 20 * DAY)
            created = min(created, now_ts - 600)
            closed_at = closed_by = None
            if rma_status == "closed":
                closed_at, closed_by = min(created + 2 * DAY + int(r() * 8 * DAY), now_ts - 300), 1 + int(r() * 4)
            elif rma_status == "canceled":
                closed_at = min(created + 3600 + int(r() * 2 * DAY), now_ts - 300)
            elif rma_status == "expired":
                closed_at = min(created + 30 * DAY, now_ts - 300)
            first_cat = lines[0][1].category
            codes, cum = reasons_cum[first_cat]
            reason = codes[bisect.bisect(cum, r())]
            comment = None
            if r() < 0.3 and reason in _COMMENTS:
                options = _COMMENTS[reason]
                comment = options[int(r() * len(options))]
            x = r()
            channel = "mail" if x < 0.75 else ("drop_off" if x < 0.9 else "in_store")
            return_carrier = return_tracking = None
            if channel == "mail":
                if ci == 0 and r() < 0.4:
                    return_carrier = "USPS"
                    return_tracking = usps_number("89911", _scramble(rma_id, 10**9, 104_729, m9))
                else:
                    return_carrier = "UPS"
                    return_tracking = ups_number(_UPS_RETURN_SHIPPER, "90", _scramble(rma_id, 10**7, 7_919, m7))
            rma_rows.append((rma_id, rma_number(rma_id), oid, channel, rma_status, reason, comment, return_carrier,
                                 return_tracking, ts(created), ts(closed_at) if closed_at else None, closed_by))

            reception, acceptance = _ITEM_STATES[rma_status]
            got_it = reception == "received"
            picked = [ln for ln in lines if r() < 0.6] or [lines[int(r() * len(lines))]]
            for ln_id, prod, qty, serials in picked:
                units = qty if qty == 1 or r() < 0.5 else 1 + int(r() * qty)
                codes, cum = reasons_cum[prod.category]
                for k in range(units):
                    # Mostly the RMA's reason; a unit of another category gets a reason that fits it.
                    if prod.category == first_cat and r() < 0.85:
                        item_reason = reason
                    else:
                        item_reason = codes[bisect.bisect(cum, r())]
                    item_id += 1
                    item_rows.append((item_id, rma_id, ln_id, item_reason, reception, acceptance, None,
                                      serials[k] if got_it and serials else None, None))

            # carrier scans, only where a return may need them as evidence
            hub = _HUBS[ci]
            for occurred, code, text, where in (
                    (shipped, "picked_up", f"Picked up by {carrier}", hub[0]),
                    ((shipped + delivered) // 2, "in_transit", "In transit", hub[1]),
                    (delivered, "delivered", "Delivered", hub[2])):
                event_id += 1
                event_rows.append((event_id, oid, ts(occurred), code, text, where))

        self.flush(order_rows, line_rows, ship_rows, event_rows, rma_rows, item_rows)

    def flush(self, order_rows: list[tuple[Any, ...]], line_rows: list[tuple[Any, ...]],
              ship_rows: list[tuple[Any, ...]], event_rows: list[tuple[Any, ...]],
              rma_rows: list[tuple[Any, ...]], item_rows: list[tuple[Any, ...]]) -> None:
        self.insert("orders", order_rows)
        self.insert("order_lines", line_rows)
        self.insert("shipments", ship_rows)
        self.insert("carrier_events", event_rows)
        self.insert("return_authorizations", rma_rows)
        self.insert("return_items", item_rows)


def _remove(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))


def _open_for_bulk(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=OFF")  # rows go in parent-after-child order; the build is consistent
    conn.execute("PRAGMA cache_size=-131072")  # 128 MiB: the unique indexes take scattered keys
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


def generate_demo(path: Path, *, orders: int, seed: int, now: datetime, station_id: str = "WH1-01",
                  station_name: str = "Warehouse 1, bench 1", time_zone: str = "UTC") -> DemoSummary:
    """Replace ``path`` with a station database of ``orders`` demo orders (and what goes with them)."""
    if not 1 <= orders <= MAX_ORDERS:
        raise EnvironmentProblem(f"demo orders must be between 1 and {MAX_ORDERS:,}, not {orders:,}")
    if now.tzinfo is None:
        raise ValueError("naive datetime refused: pass an aware `now`")
    started = time.perf_counter()
    path = Path(path)
    building = path.with_suffix(".building")
    _remove(building, *_sidecars(building))
    conn: sqlite3.Connection | None = None
    try:
        engine = make_engine(sqlite_url(building))
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        conn = _open_for_bulk(building)
        build = _Build(conn, orders=orders, seed=seed, now=now.astimezone(timezone.utc), station_id=station_id,
                       station_name=station_name, time_zone=time_zone)
        build.run()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        conn = None
        # synchronous=OFF skipped every fsync: make the file durable before it takes the real name.
        fd = os.open(building, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _remove(*_sidecars(path))
        os.replace(building, path)
    except BaseException:
        if conn is not None:
            conn.close()
        _remove(building, *_sidecars(building))
        raise
    c = build.counts
    return DemoSummary(
        stations=c["stations"], users=c["users"], policy_versions=c["policy_versions"], customers=c["customers"],
        orders=c["orders"], order_lines=c["order_lines"], shipments=c["shipments"],
        carrier_events=c["carrier_events"], return_authorizations=c["return_authorizations"],
        return_items=c["return_items"], seconds=time.perf_counter() - started,
        rma_statuses=dict(sorted(build.rma_statuses.items())))


def database_has_orders(path: Path) -> bool:
    """True when ``path`` is a station database holding at least one order (for ``demo --if-empty``)."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'orders'").fetchone() is None:
                return False
            return conn.execute("SELECT EXISTS (SELECT 1 FROM orders)").fetchone()[0] == 1
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise EnvironmentProblem(f"station database {path} cannot be read: {exc}") from None


# --- what is in a simulated parcel --------------------------------------------------------------
SCENARIOS = ("clean", "empty_box", "swapped_item", "wrong_serial", "extra_item")
_SCENARIO_CUT = ((8800, "clean"), (9100, "empty_box"), (9400, "swapped_item"), (9700, "wrong_serial"),
                 (10000, "extra_item"))


@dataclass(frozen=True)
class ParcelPlan:
    """What the customer really put in the box. ``pick`` chooses which unit a swap or a wrong serial
    hits (modulo the number of units), ``extra_gtin`` is the stray product of ``extra_item`` and
    ``fake_serial`` the never-shipped serial of ``wrong_serial``."""

    scenario: str
    weight_delta_g: int
    pick: int
    extra_gtin: str | None = None
    fake_serial: str | None = None


def parcel_contents(rma_number: str, seed: int) -> ParcelPlan:
    """Pure: the same RMA number and seed always give the same parcel, wherever it is asked."""
    digest = hashlib.blake2b(f"{seed}:{rma_number}".encode(), digest_size=32, person=b"rc-parcel").digest()
    x = int.from_bytes(digest, "big")
    roll, x = x % 10000, x // 10000
    scenario = next(name for cut, name in _SCENARIO_CUT if roll < cut)
    noise, x = x % 61 - 30, x // 61  # scale and packing noise, inside the smallest tolerance (50 g)
    pick, x = x % 1_000_003, x // 1_000_003
    if scenario == "empty_box":
        return ParcelPlan(scenario, noise, pick)
    if scenario == "extra_item":
        products = catalog()
        return ParcelPlan(scenario, noise, pick, extra_gtin=products[x % len(products)].gtin)
    if scenario == "wrong_serial":
        # Shipped serials never start with Y or Z after "SN", so this one cannot have been shipped.
        return ParcelPlan(scenario, noise, pick, fake_serial="SN" + "YZ"[x % 2] + _base36(x // 2, 9))
    return ParcelPlan(scenario, noise, pick)


def _similar_product(gtin: str | None, pick: int) -> Product:
    """Another product of the same category and nearest in price: the classic swap."""
    products = catalog()
    own = _catalog_by_gtin().get(gtin or "")
    if own is None:
        return products[pick % len(products)]
    others = sorted((p for p in products if p.category == own.category and p.gtin != own.gtin),
                    key=lambda p: (abs(p.prices[0] - own.prices[0]), p.sku))
    return others[pick % min(3, len(others))]


def plan_scans(plan: ParcelPlan, expected: list[tuple[str | None, str | None, int]],
               packaging_g: int) -> tuple[int, list[str]]:
    """The parcel's weight on the scale and the codes a clerk scans, for ``expected`` units
    (gtin, serial or None, unit weight in g). A unit is scanned by its serial if it has one.
    ``wrong_serial`` on a parcel with no serialized unit becomes a swap, so it still misleads."""
    if plan.scenario == "empty_box":
        return max(0, packaging_g + plan.weight_delta_g), []
    units = [(serial or gtin, weight) for gtin, serial, weight in expected]
    scenario = plan.scenario
    if scenario == "wrong_serial":
        with_serial = [i for i, (_, serial, _) in enumerate(expected) if serial]
        if with_serial:
            i = with_serial[plan.pick % len(with_serial)]
            units[i] = (plan.fake_serial, units[i][1])
        else:
            scenario = "swapped_item"
    if scenario == "swapped_item" and units:
        i = plan.pick % len(units)
        other = _similar_product(expected[i][0], plan.pick)
        units[i] = (other.gtin, other.weight_g)
    if scenario == "extra_item" and plan.extra_gtin:
        extra = _catalog_by_gtin()[plan.extra_gtin]
        on_rma = {gtin for gtin, _, _ in expected}
        if extra.gtin in on_rma:
            products = catalog()
            extra = next(p for p in products[products.index(extra):] + products if p.gtin not in on_rma)
        units.append((extra.gtin, extra.weight_g))
    weight = sum(w for _, w in units) + packaging_g + plan.weight_delta_g
    return max(0, weight), [code for code, _ in units if code]
