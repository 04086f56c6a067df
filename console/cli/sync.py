"""`sync`: push what is pending to central and pull what changed there, once or for ever."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from console.cli.common import print_json
from console.config import Settings

NAMES = ("sync",)


def add_parsers(sub: Any) -> None:
    sync = sub.add_parser("sync", help="push pending decisions to the central database and pull what changed there")
    how = sync.add_mutually_exclusive_group()
    how.add_argument("--once", action="store_true", help="push what is pending, then exit (the default)")
    how.add_argument("--forever", action="store_true",
                     help="keep pushing every few seconds, backing off while central is unreachable; "
                          "one JSON status line per pass")
    sync.add_argument("--station-id", help="this station's id (default: config.toml's [station] id)")
    sync.add_argument("--interval", type=float, default=None, metavar="SECONDS",
                      help="seconds between passes while online (default 2)")
    # The console's child: stdin is the parent's lifeline (a line: push now; end of input: stop).
    sync.add_argument("--lifeline", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.forever:
        return _sync_forever(args, settings)
    from db.engine import make_engine
    from db.pull import pull_once
    from db.push import check_central_schema, open_conflict_count, push_once

    from console.sync_runner import ROUND_TRIP_LIMIT_S
    from db.watchdog import guard_engine

    station = make_engine(settings.station_url, must_exist=True)
    central = make_engine(settings.central_url)
    guard_engine(central, ROUND_TRIP_LIMIT_S)
    try:
        from db.migrate import ensure_at_head

        ensure_at_head(station)
        check_central_schema(central)
        station_id = args.station_id or settings.station_id
        report = push_once(station, central, station_id=station_id)
        pulled = pull_once(station, central, echo_xids=report.echo_xids)
        conflicts = open_conflict_count(central, station_id)
    finally:
        station.dispose()
        central.dispose()
    print_json({**report.to_dict(), "pulled": pulled.pulled if pulled.supported else None,
                 "conflicts": conflicts})
    return 0 if not report.failed else 3


def _sync_forever(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from console.sync_runner import INTERVAL_S, SyncLoop, SyncStatus, follow_lifeline

    loop = SyncLoop(settings.station_url, settings.central_url, args.station_id or settings.station_id,
                    interval_s=args.interval if args.interval is not None else INTERVAL_S)

    def emit(status: SyncStatus) -> None:
        print(status.to_json(), flush=True)

    # SIGTERM (a service manager stopping it) ends the loop between passes, like Ctrl+C.
    signal.signal(signal.SIGTERM, lambda *_: loop.stop())
    if args.lifeline:
        follow_lifeline(loop, sys.stdin)
    try:
        loop.run(emit)
    except KeyboardInterrupt:
        pass
    finally:
        loop.close()
    return 0
