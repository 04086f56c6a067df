"""`demo` and `simulate`: the training features (console.demo) — demo data, the simulated clerk,
and a scanner or scale on a pseudo-terminal."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from console.cli.common import print_json
from console.config import Settings
from console.errors import EnvironmentProblem

NAMES = ("demo", "simulate")


def add_parsers(sub: Any) -> None:
    demo = sub.add_parser("demo", help="create deterministic demo data in the station database")
    demo.add_argument("--orders", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--if-empty", action="store_true", help="do nothing when the station already has orders")

    sim = sub.add_parser("simulate", help="simulate work at the bench")
    sim_sub = sim.add_subparsers(dest="role", required=True)
    clerk = sim_sub.add_parser("clerk", help="process demo returns end to end through the services")
    clerk.add_argument("--returns", type=int, required=True)
    clerk.add_argument("--seed", type=int, default=1)
    scanner = sim_sub.add_parser("scanner", help="a barcode scanner on a pseudo-terminal, scanning codes from a file")
    scanner.add_argument("--codes", type=Path, required=True, help="text file, one code per line")
    scanner.add_argument("--interval", type=float, default=1.0, help="seconds between scans when not interactive")
    scanner.add_argument("--terminator", choices=("CR", "LF", "CRLF"), default="CR")
    scanner.add_argument("--jitter", type=float, default=0.0, help="up to this many seconds between characters")
    scanner.add_argument("--garbage", action="store_true", help="send some line noise between codes")
    scanner.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a station to open the port")

    scale = sim_sub.add_parser("scale", help="a scale on a pseudo-terminal answering its protocol")
    scale.add_argument("--protocol", required=True, help="mt-sics, toledo-8213, nci, cas or hid")
    scale.add_argument("--grams", default="0", help="the load on the scale, in grams")
    scale.add_argument("--unit", default="g", help="the unit the scale displays (g, kg, lb, oz)")
    scale.add_argument("--motion", action="store_true", help="start in motion")
    scale.add_argument("--overload", action="store_true", help="start over capacity")
    scale.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl+C)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return cmd_demo(args, settings) if args.command == "demo" else cmd_simulate(args, settings)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from console.demo.data import DEMO_PIN, DEMO_USERS, database_has_orders, generate_demo

    if args.orders < 1:
        raise EnvironmentProblem("--orders must be at least 1")
    if args.if_empty and database_has_orders(settings.station_db):
        print(f"demo data already in {settings.station_db}; leaving it as it is", file=sys.stderr)
        return 0
    now = datetime.now(timezone.utc)
    summary = generate_demo(settings.station_db, orders=args.orders, seed=args.seed, now=now,
                            station_id=settings.station_id, station_name=settings.station_name,
                            time_zone=settings.time_zone)
    data = summary.to_dict()
    data["station_db"] = str(settings.station_db)
    data["user_names"] = [u.username for u in DEMO_USERS]
    data["pin"] = DEMO_PIN
    print_json(data)
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    if args.role == "scanner":
        from console.demo.devices import simulate_scanner

        return simulate_scanner(args)
    if args.role == "scale":
        from console.demo.devices import simulate_scale

        return simulate_scale(args)
    from console.demo.clerk import simulate_clerk
    from console.station import Station

    if args.returns < 0:
        raise EnvironmentProblem("--returns must not be negative")
    station = Station.open(settings)
    try:
        summary = simulate_clerk(station, args.returns, args.seed)
    finally:
        station.close()
    print_json(summary.to_dict())
    return 0
