"""`lookup` and `barcode`: what the console makes of a scanned code, headless."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from console.cli.common import print_json
from console.config import Settings

NAMES = ("lookup", "barcode")


def add_parsers(sub: Any) -> None:
    lookup = sub.add_parser("lookup", help="print as JSON what a scanned code refers to")
    lookup.add_argument("code")

    barcode = sub.add_parser(
        "barcode", help="interpret scanned codes: one JSON object per code (exit 1 if any is invalid)",
        description="Interpret codes as the console would: kind, normalized value, carrier or symbology, "
                    "valid or not and why. Write ASCII 29 (GS) as it is, as '#' or as '^]' in GS1 data.")
    barcode.add_argument("codes", nargs="+", metavar="CODE", help="a code, or - to read one code per line from stdin")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return cmd_lookup(args, settings) if args.command == "lookup" else cmd_barcode(args, settings)


def cmd_lookup(args: argparse.Namespace, settings: Settings) -> int:
    from console.lookup import find_code
    from console.station import Station
    from console.views import load_rma_view

    station = Station.open(settings)
    try:
        with station.reader() as reader:
            match = find_code(reader, args.code)
        with station.uow() as uow:
            data = match.to_dict()
            data["rma_details"] = [load_rma_view(uow.session, station.ctx(), r.id).to_dict() for r in match.rmas]
    finally:
        station.close()
    print_json(data)
    return 0


def cmd_barcode(args: argparse.Namespace, settings: Settings) -> int:
    from console.barcodes import interpret

    def codes() -> Iterator[str]:
        for code in args.codes:
            if code == "-":
                # Bytes, decoded leniently: a garbled line must become an answer, not a crash.
                for line in sys.stdin.buffer:
                    yield line.decode("utf-8", errors="replace").rstrip("\r\n")
            else:
                yield code

    all_valid = True
    for code in codes():
        reading = interpret(code)
        all_valid &= reading.valid
        print(json.dumps(reading.to_dict(), ensure_ascii=False), flush=True)
    return 0 if all_valid else 1
