"""No card number anywhere: not in a station's SQLite files, not in the logs the commands write,
not in central's tables — after realistic work (demo data, a simulated clerk, a sync to a real
PostgreSQL central). Payment data is a processor token, the brand and the last four digits.

What counts as a card number here (as a DLP scanner decides it, not "any Luhn-valid number"):

- 13 to 19 digits, either one unbroken run bounded by non-digits, or groups written the way card
  numbers are written: groups of four with a shorter last group (4-4-4-4, 4-4-4-4-3, ...) or
  Amex/Diners' 4-6-5 / 4-6-4, with one kind of separator (a single space or a single dash).
  Unbroken runs longer than 19 digits are ids or hashes; other groupings (8-4-4-4-12 UUIDs,
  dates, phone numbers) are not how anyone writes a card number, and accepting them would make
  the test flag random UUIDs whose hex happens to be all digits. Digit runs inside hex ids
  (UUIDs, stored with or without dashes, and the audit chain's SHA-256 hashes) are not numbers
  at all: one receipt id in a simulated run began with 16 digits that pass as a Visa number;
- passing the Luhn check;
- inside a card brand's issuer range, with a length that brand issues: Visa 4 (16, 19 — 13-digit
  Visa cards have not been issued for decades, and a German or Dutch EAN-13 starts with 4),
  Mastercard 51-55 and 2221-2720 (16), Amex 34/37 (15), Discover 6011, 644-649, 65 (16-19),
  JCB 3528-3589 (16-19), Diners 300-305, 36, 38-39 (14-19), UnionPay 62 (16-19), Maestro 5018,
  5020, 5038, 5893, 6304, 6759, 6761-6763 (13-19).

Why not every Luhn-valid 13-19 digit number: a tenth of all numbers pass Luhn, GTIN-13/14
barcodes carry a mod-10 check of their own that Luhn also passes by chance, and tracking numbers
and epoch milliseconds are 12-22 digits long. A test that flags them is switched off, not heeded.
On a 20,000-order demo database a naive scan (any Luhn-valid 13-19 digit run) flags 3,050 GTINs
(e.g. the Japanese EAN-13 4516059189390, which would pass as a 13-digit "Visa") and 373 tracking
numbers; this one flags none, and the demo generator needed no change. The planted numbers
below prove the scan finds real card numbers in every place it looks.
"""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

_RUN = re.compile(r"\d+(?:[ -]\d+)*")
# Ids and hashes written in hex (UUIDs with or without dashes, SHA-256 audit hashes): a run of
# digits inside one is part of the id, never a card number written out.
_HEX_ID = re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}|[0-9a-fA-F]{32,})(?![0-9A-Za-z])")
_BRANDS: tuple[tuple[str, tuple[tuple[int, int], ...], frozenset[int]], ...] = (
    ("Visa", ((4, 4),), frozenset({16, 19})),
    ("Mastercard", ((51, 55), (2221, 2720)), frozenset({16})),
    ("Amex", ((34, 34), (37, 37)), frozenset({15})),
    ("Discover", ((6011, 6011), (644, 649), (65, 65)), frozenset(range(16, 20))),
    ("JCB", ((3528, 3589),), frozenset(range(16, 20))),
    ("Diners", ((300, 305), (36, 36), (38, 39)), frozenset(range(14, 20))),
    ("UnionPay", ((62, 62),), frozenset(range(16, 20))),
    ("Maestro", ((5018, 5018), (5020, 5020), (5038, 5038), (5893, 5893), (6304, 6304), (6759, 6759),
                 (6761, 6763)), frozenset(range(13, 20))),
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = int(ch)
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
        return None
    for brand, ranges, lengths in _BRANDS:
        if len(digits) in lengths and any(lo <= int(digits[:len(str(lo))]) <= hi for lo, hi in ranges):
            return brand
    return None


def _card_grouping(groups: list[str]) -> bool:
    sizes = [len(g) for g in groups]
    if sizes in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4


def card_numbers(text: str) -> list[tuple[str, str]]:
    """(brand, digits) of every card number written in ``text``."""
    found: list[tuple[str, str]] = []
    for match in _RUN.finditer(_HEX_ID.sub(" ", text)):
        run = match.group()
        parts = re.split(r"([ -])", run)
        groups, seps = parts[0::2], parts[1::2]
        if len(groups) == 1:
            brand = card_brand(run)
            if brand:
                found.append((brand, run))
            continue
        for i in range(len(groups)):  # every stretch of groups written like a card number
            for j in range(i + 1, len(groups) + 1):
                if len(set(seps[i:j - 1])) > 1:
                    break
                digits = "".join(groups[i:j])
                if len(digits) > 19:
                    break
                if (j - i == 1 or _card_grouping(groups[i:j])) and (brand := card_brand(digits)):
                    found.append((brand, digits))
    return found


@dataclass
class Scan:
    findings: list[str]
    values: int = 0
    log_bytes: int = 0

    def look(self, where: str, text: str) -> None:
        self.values += 1
        self.findings += [f"{where}: {brand} {digits}" for brand, digits in card_numbers(text)]


def scan_sqlite(path: Path, scan: Scan) -> None:
    """Every value of every column, as text (the WAL's committed pages included: SQLite reads
    them). Not the file's raw bytes: a record stores its columns back to back, so a tracking
    number followed by a timestamp reads there as one 15-digit number ending in the year, and
    such artefacts (dozens in a demo database) would bury a real finding."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if value is not None:
                        scan.look(f"{path.name}:{table}", value.decode("latin-1") if isinstance(value, bytes)
                                  else str(value))
    finally:
        conn.close()


def scan_logs(folder: Path, scan: Scan) -> None:
    for log in sorted(folder.rglob("*.log")):
        data = log.read_bytes()
        scan.log_bytes += len(data)
        scan.look(f"log {log.name}", data.decode("utf-8", "replace"))


def scan_postgres(url: str, scan: Scan) -> None:
    """Every row of every table in the schema the URL points at, as PostgreSQL writes it as text."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE'")]
        for table in tables:
            for (text,) in conn.execute(f'SELECT t::text FROM "{table}" t'):
                scan.look(f"central:{table}", text)


# -- the scanner can fail ----------------------------------------------------------------------------

def test_the_scanner_knows_card_numbers_from_barcodes_ids_and_dates() -> None:
    assert card_numbers("card 4111 1111 1111 1111 on file") == [("Visa", "4111111111111111")]
    assert card_numbers("4111-1111-1111-1111") == [("Visa", "4111111111111111")]
    assert card_numbers("x5500005555555559y") == [("Mastercard", "5500005555555559")]
    assert card_numbers("amex 3782 822463 10005") == [("Amex", "378282246310005")]
    assert card_numbers("on 2026-11-20 4111 1111 1111 1111") == [("Visa", "4111111111111111")]
    assert card_numbers("JCB 3530111333300000.") == [("JCB", "3530111333300000")]
    not_cards = [
        "4006381333931",                         # an EAN-13 from Germany (Luhn passes by chance)
        "4111111111111112",                      # Luhn fails
        "41111111111111110000",                  # 20 digits: an id, not a card
        "4111 11111111 1111",                    # not how a card number is written
        "4111 1111-1111 1111",                   # mixed separators
        "12345678-1234-1234-1234-123456789012",  # a UUID whose hex is all digits
        "4922366541194231a2aa60d8bfbac70f",      # a UUID as SQLite keeps it (found in a simulated run)
        "0123456789abcdef" * 4,                  # a SHA-256 audit hash
        "1700000000000", "2026-11-20 15:04:05", "+44 7400 123456", "1Z999AA10123456784", "**** 1111",
    ]
    for text in not_cards:
        assert card_numbers(text) == [], text


def test_a_planted_card_number_is_found_in_sqlite_in_a_log_and_in_central(tmp_path: Path, pg_url: str) -> None:
    from tests.tools.factories import LineSpec, add_order, make_world

    world = make_world(tmp_path / "station.sqlite3")
    order = add_order(world, [LineSpec("AP-1", 4000)])
    with world.uow() as uow:
        from db.models import Customer, Order

        placed = uow.session.get(Order, order.id)
        assert placed is not None
        customer = uow.session.get(Customer, placed.customer_id)
        assert customer is not None
        customer.address = "1 Main St\nnote: paid with 4111 1111 1111 1111"
        uow.commit()
    world.engine.dispose()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "sync.log").write_text("retrying card 5555-5555-5555-4444\n", encoding="utf-8")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'Amex 378282246310005')")
    scan = Scan([])
    scan_sqlite(tmp_path / "station.sqlite3", scan)
    scan_logs(tmp_path, scan)
    scan_postgres(pg_url, scan)
    assert any(f.startswith("station.sqlite3:customers: Visa 4111111111111111") for f in scan.findings)
    assert "log sync.log: Mastercard 5555555555554444" in scan.findings
    assert "central:notes: Amex 378282246310005" in scan.findings


# -- realistic work finds none -----------------------------------------------------------------------

@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "home"
    (folder / "logs").mkdir(parents=True)
    monkeypatch.setenv("RETURNS_CONSOLE_HOME", str(folder))
    yield folder


def _console(home: Path, name: str, *args: str) -> None:
    """Run ``returns-console ARGS`` as a process; its output is a log file like any other."""
    env = {**os.environ, "RETURNS_CONSOLE_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True, env=env, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])
    (home / "logs" / f"{name}.log").write_bytes(proc.stdout + b"\n--- stderr\n" + proc.stderr)
    assert proc.returncode == 0, f"{args}: {proc.stderr.decode(errors='replace')[-2000:]}"


def test_no_card_number_in_station_files_logs_or_central_after_real_work(home: Path, pg_url: str) -> None:
    station = home / "station.sqlite3"
    _console(home, "demo", "--station", str(station), "demo", "--orders", "1500", "--seed", "7")
    _console(home, "simulate", "--station", str(station), "simulate", "clerk", "--returns", "60", "--seed", "3")
    _console(home, "central-init", "central", "init", "--url", pg_url)
    _console(home, "sync", "--station", str(station), "--central", pg_url, "sync", "--once")
    _console(home, "lookup", "--station", str(station), "lookup", "SO-1000001")

    scan = Scan([])
    for path in sorted(home.rglob("*.sqlite3")):
        scan_sqlite(path, scan)
    scan_logs(home, scan)
    central_before = scan.values
    scan_postgres(pg_url, scan)
    assert scan.values - central_before > 1000, "central holds what was synced"
    assert scan.values > 50_000 and scan.log_bytes > 1000, "the scan looked at real data"
    assert scan.findings == []
    with psycopg.connect(pg_url) as conn:  # what payment data looks like instead
        brand, last4, token = conn.execute(
            "SELECT payment_brand, payment_last4, payment_token FROM orders WHERE payment_token IS NOT NULL "
            "LIMIT 1").fetchone()
    assert brand in ("Visa", "Mastercard", "Amex", "JCB") and re.fullmatch(r"\d{4}", last4)
    assert token.startswith("tok_")
