"""`returns-console audit verify`: walk the audit chains and report the first broken or missing link.

Exit 0 when every chain verified is intact, 1 when one is not (one line per station, naming the
first bad row), and 1 with one line on stderr when a database cannot be opened.
"""
from __future__ import annotations

import argparse
from typing import Any

from console.config import Settings


NAMES = ("audit",)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("audit", help="the audit trail: verify its hash chains")
    actions = p.add_subparsers(dest="audit_action", required=True)
    v = actions.add_parser(
        "verify", help="walk the audit chain(s); exit 1 with the first broken or missing link per station",
        description="Walk this station's audit chain in the station database, check it against the copies "
                    "its outbox keeps, and with --central against central's copy. Rows deleted from the end "
                    "of the chain, or a chain re-hashed after an edit, show only against those copies.")
    v.add_argument("--station", dest="chain_station", metavar="ID",
                   help="the station whose chain to verify (default: this station's id)")
    v.add_argument("--all", dest="all_chains", action="store_true",
                   help="every chain the station database holds (and, with --central, every chain central holds)")
    v.add_argument("--central", dest="against_central", metavar="URL",
                   help="also verify central's copy of each chain and compare it row by row "
                        "(postgresql://... or a SQLite file); without a station database: central alone")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.audit_action == "verify":
        return cmd_verify(args, settings)
    raise ValueError(f"unknown audit action {args.audit_action!r}")


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from contextlib import ExitStack

    from sqlalchemy import select
    from sqlalchemy.engine import Connection
    from sqlalchemy.exc import DBAPIError

    from db.errors import translate

    from console.audit_verify import station_ids, verify_station
    from console.context import Actor
    from console.errors import NotFound
    from console.permissions import AUDIT, require
    from db.engine import make_engine
    from db.models import User

    def opened(url: str, what: str, stack: ExitStack) -> Connection:
        engine = make_engine(url, must_exist=True)
        stack.callback(engine.dispose)
        try:
            conn = stack.enter_context(engine.connect())
            conn.execute(select(User.id).limit(1))  # a file that is no station database says so here
        except DBAPIError as exc:
            raise translate(exc, what, failing="cannot be opened") from None
        return conn

    with ExitStack() as stack:
        local = None
        if settings.station_db.exists() or not args.against_central:
            local = opened(settings.station_url, f"station database {settings.station_db}", stack)
        central = opened(args.against_central, "central database", stack) if args.against_central else None
        who_db = local if local is not None else central
        assert who_db is not None
        user = who_db.execute(select(User).where(User.username == settings.user, User.active)).first()
        if user is None:
            raise NotFound(f"user '{settings.user}' is not set up in that database: name a supervisor or admin "
                           "with --user")
        require(Actor(user.id, user.username, user.display_name, user.role), AUDIT)

        local_chains = set(station_ids(local)) if local is not None else set()
        if args.chain_station:
            chains = [args.chain_station]
        elif args.all_chains:
            chains = sorted(local_chains | (set(station_ids(central)) if central is not None else set())
                            | ({settings.station_id} if local is not None else set()))
        else:
            chains = [settings.station_id]
        broken = 0
        for station_id in chains:
            # A chain this station database holds no row of is another station's: central alone
            # speaks for it (this station's own chain, emptied, is compared and found missing).
            mine = local if station_id in local_chains or station_id == settings.station_id else None
            report = verify_station(mine, station_id, central=central)
            print(report.describe(), flush=True)
            broken += not report.intact
        return 1 if broken else 0
