"""`returns-console`: the composition root. No arguments opens the console; subcommands run headless.

Every failure a person can fix ends as one line on stderr and a non-zero exit; a bug ends as
one line too, with the traceback written to a log file whose path the line gives.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console import audit_commands, device_commands, policy_commands, review_commands, user_commands
from console.config import Settings, load_settings
from console.errors import DomainError, EnvironmentProblem

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger("returns_console")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="returns-console",
                                description="Returns Console: scan, weigh, grade, decide and sync returned parcels.")
    p.add_argument("--station", metavar="PATH", help="station SQLite database (default: in the user data folder)")
    p.add_argument("--central", metavar="URL", help="central database: postgresql://... or a SQLite file path")
    p.add_argument("--user", help="user name to work as (default: config.toml's user, else the demo clerk 'aiko')")
    p.add_argument("--policy", metavar="FILE", type=Path, help="policy TOML file (default: the shipped policy)")
    p.add_argument("--time-zone", help="station time zone, e.g. Asia/Tokyo")
    sub = p.add_subparsers(dest="command")

    demo = sub.add_parser("demo", help="create deterministic demo data in the station database")
    demo.add_argument("--orders", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--if-empty", action="store_true", help="do nothing when the station already has orders")

    lookup = sub.add_parser("lookup", help="print as JSON what a scanned code refers to")
    lookup.add_argument("code")

    barcode = sub.add_parser(
        "barcode", help="interpret scanned codes: one JSON object per code (exit 1 if any is invalid)",
        description="Interpret codes as the console would: kind, normalized value, carrier or symbology, "
                    "valid or not and why. Write ASCII 29 (GS) as it is, as '#' or as '^]' in GS1 data.")
    barcode.add_argument("codes", nargs="+", metavar="CODE", help="a code, or - to read one code per line from stdin")

    sim = sub.add_parser("simulate", help="simulate work at the bench")
    sim_sub = sim.add_subparsers(dest="role", required=True)
    clerk = sim_sub.add_parser("clerk", help="process demo returns end to end through the services")
    clerk.add_argument("--returns", type=int, required=True)
    clerk.add_argument("--seed", type=int, default=1)
    many = sim_sub.add_parser("stations", help="N station processes against one central, then the invariants")
    many.add_argument("--stations", type=int, required=True)
    many.add_argument("--returns", type=int, required=True, help="returns per station")
    many.add_argument("--seed", type=int, default=1)
    many.add_argument("--overlap", type=float, default=0.02,
                      help="share of each station's parcels also worked at the next station (conflicts)")
    many.add_argument("--chaos", action="store_true", help="kill stations (SIGKILL) and cut central off meanwhile")
    many.add_argument("--central", dest="sim_central", metavar="URL",
                      help="the central database (default: the global --central / settings)")
    device_commands.add_parsers(sub, sim_sub)
    _add_print_parsers(sub)
    for module in _COMMAND_MODULES.values():
        module.add_parsers(sub)

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

    central = sub.add_parser("central", help="prepare the central database; load orders into it")
    central_sub = central.add_subparsers(dest="central_action", required=True)
    init = central_sub.add_parser("init", help="bring a central database to this console's schema (idempotent)")
    init.add_argument("--url", metavar="URL", help="central database (default: --central, RETURNS_CENTRAL_URL "
                                                   "or config.toml's central_url)")
    creds = central_sub.add_parser(
        "station", help="each station's own login at a PostgreSQL central: add (issue), revoke, list",
        description="Every station logs in to a PostgreSQL central as a role of its own, which may write only "
                    "that station's rows and hand in events; `add` prints the URL to put in the station's "
                    "central_url (the password is shown once), `revoke` takes it back at once.")
    creds_sub = creds.add_subparsers(dest="station_action", required=True)
    issue = creds_sub.add_parser("add", help="issue a station its login (again: a new password)")
    issue.add_argument("station_id", metavar="STATION")
    issue.add_argument("--role", help="the login role's name (default: returns_station_<station id>)")
    revoke = creds_sub.add_parser("revoke", help="take a station's login back: it can no longer push or pull")
    revoke.add_argument("station_id", metavar="STATION")
    creds_sub.add_parser("list", help="every station login central issued, JSON lines")
    for parser in (issue, revoke, creds_sub.choices["list"]):
        parser.add_argument("--url", metavar="URL", help="central database (default: --central / central_url)")
    orders = central_sub.add_parser(
        "import-orders", help="load orders from the order system's export (CSV or JSON), all or nothing",
        description="Check the whole file, then load every order central lacks in one transaction. Bad rows "
                    "are listed (up to 50) and nothing is loaded; orders already in central are skipped.")
    orders.add_argument("file", type=Path, metavar="FILE")
    orders.add_argument("--url", metavar="URL", help="central database (default: --central, RETURNS_CENTRAL_URL "
                                                     "or config.toml's central_url)")
    orders.add_argument("--format", choices=("csv", "json"), help="default: from the file's extension")
    quiet = central_sub.add_parser("stations", help="every station central knows: last sync, open conflicts, "
                                                    "and which have gone quiet (exit 2 if any has)")
    quiet.add_argument("--url", metavar="URL", help="central database (default: --central / central_url)")
    quiet.add_argument("--quiet-after", type=float, default=30.0, metavar="MINUTES",
                       help="a station not heard from for longer is quiet (default 30)")

    confirm = central_sub.add_parser(
        "confirm-user", help="let central take the approvals of a user first added at a station",
        description="A user added at a station reaches central as that station's copy, whose approvals "
                    "central refuses until an admin with access to central confirms them here.")
    confirm.add_argument("username")
    confirm.add_argument("--url", metavar="URL", help="central database (default: --central / central_url)")

    keys = central_sub.add_parser(
        "keys", help="approvers' signing keys: list, confirm (so central takes their verdicts), revoke",
        description="A supervisor's verdict counts at central only when signed with a key central confirmed. "
                    "A key is enrolled at a station when the supervisor first signs in there (and after a new "
                    "PIN or badge) and reaches central with the next sync, waiting: confirm it once you know "
                    "that person enrolled it (they read its fingerprint at their station); revoke it when a "
                    "PIN or badge, or a station's database file, may be in someone else's hands.")
    keys_sub = keys.add_subparsers(dest="keys_action", required=True)
    keys_list = keys_sub.add_parser("list", help="every key central holds, JSON lines (waiting ones first)")
    keys_list.add_argument("--waiting", action="store_true", help="only keys that wait for confirmation")
    keys_confirm = keys_sub.add_parser("confirm", help="confirm a user's waiting keys")
    keys_revoke = keys_sub.add_parser("revoke", help="revoke a user's keys: what they sign is refused from now on")
    for parser in (keys_confirm, keys_revoke):
        parser.add_argument("username")
    keys_revoke.add_argument("--station", metavar="STATION", help="only the keys enrolled at this station")
    keys_confirm.add_argument("--fingerprint", required=True, metavar="FP",
                              help="the key's fingerprint as the supervisor reads it at their station")
    keys_confirm.add_argument("--by", metavar="NAME", help="who confirms (default: this machine's user name)")
    for parser in (keys_list, keys_confirm, keys_revoke):
        parser.add_argument("--url", metavar="URL", help="central database (default: --central / central_url)")

    publish = central_sub.add_parser(
        "publish-policy", help="make a policy file a version of central's own, which decisions are checked by",
        description="Central publishes the policy (stations pull it). From then on a decision that arrives "
                    "approved under a version central did not publish, under another text, at or above the "
                    "version's always-review amount or with a risk score at or above its threshold waits for a "
                    "supervisor at central.")
    publish.add_argument("file", type=Path, metavar="FILE")
    publish.add_argument("--url", metavar="URL", help="central database (default: --central / central_url)")

    shots = sub.add_parser("screenshots", help="render every screen to PNG files (offscreen, on fresh demo data)")
    shots.add_argument("--out", type=Path, default=Path("docs") / "screenshots", help="folder (default: docs/screenshots)")
    shots.add_argument("--only", action="append", metavar="SCREEN",
                       help="render only this screen (repeatable); see the README for the names")

    bench = sub.add_parser("bench", help="run the benchmarks and print a table")
    bench.add_argument("--quick", action="store_true", help="small data, for CI (under a minute)")
    bench.add_argument("--out", type=Path, default=Path("bench-results.json"))
    bench.add_argument("--only", action="append", help="run only benchmarks whose name starts with this")
    return p


def _add_print_parsers(sub: Any) -> None:
    from console import print_commands  # reportlab loads only for the commands that draw

    print_commands.add_parsers(sub)


def cmd_print(args: argparse.Namespace, settings: Settings) -> int:
    from console import print_commands

    if args.command == "print":
        return print_commands.cmd_print(args, settings)
    return print_commands.cmd_print_queue(args, settings)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "station_db": Path(args.station) if args.station else None,
        "central_url": args.central,
        "user": args.user,
        "policy_file": args.policy,
        "time_zone": args.time_zone,
    }
    return load_settings(**overrides)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from console.demo import DEMO_PIN, DEMO_USERS, database_has_orders, generate_demo

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
    _print_json(data)
    return 0


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
    _print_json(data)
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


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    if args.role == "stations":
        from console.simulate_stations import simulate_stations

        report = simulate_stations(args.sim_central or settings.central_url, args.stations, args.returns, seed=args.seed,
                                   overlap=args.overlap, chaos=args.chaos,
                                   log=lambda line: print(line, file=sys.stderr, flush=True))
        _print_json(report)
        return 0 if report["ok"] else 1
    from console.simulate import simulate_clerk

    if args.role != "clerk":
        return device_commands.COMMANDS[("simulate", args.role)](args)
    from console.station import Station

    if args.returns < 0:
        raise EnvironmentProblem("--returns must not be negative")
    station = Station.open(settings)
    try:
        summary = simulate_clerk(station, args.returns, args.seed)
    finally:
        station.close()
    _print_json(summary.to_dict())
    return 0


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    if args.forever:
        return _sync_forever(args, settings)
    from db.engine import make_engine
    from db.pull import pull_once
    from db.sync import check_central_schema, open_conflict_count, push_once

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
    _print_json({**report.to_dict(), "pulled": pulled.pulled if pulled.supported else None,
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


def cmd_central(args: argparse.Namespace, settings: Settings) -> int:
    from console.order_import import BadRows, import_orders, open_central, public_url

    url = args.url or settings.central_url
    if args.central_action == "stations":
        from datetime import timedelta

        from console.central_admin import station_states

        if args.quiet_after <= 0:
            raise EnvironmentProblem("--quiet-after must be a positive number of minutes")
        engine = open_central(url, prepared=True)
        try:
            states = station_states(engine, timedelta(minutes=args.quiet_after))
        finally:
            engine.dispose()
        for state in states:
            print(json.dumps(state.to_dict(), ensure_ascii=False))
        return 2 if any(s.quiet for s in states) else 0
    if args.central_action == "confirm-user":
        from console.central_admin import confirm_user

        engine = open_central(url, prepared=True)
        try:
            confirmed = confirm_user(engine, args.username)
        finally:
            engine.dispose()
        print(f"{confirmed.username} ({confirmed.role}, added at {confirmed.from_station}) is confirmed at central: "
              "their approvals count from now on")
        return 0
    if args.central_action == "init":
        from db.central import init_central

        engine = open_central(url, prepared=False)
        try:
            revision = init_central(engine)
        finally:
            engine.dispose()
        print(f"central database at {public_url(engine)} is ready (schema {revision})")
        return 0
    if args.central_action == "station":
        return _station_logins(args, open_central(url, prepared=True))
    if args.central_action == "keys":
        return _approver_keys(args, open_central(url, prepared=True))
    if args.central_action == "publish-policy":
        from console.central_admin import publish_policy

        engine = open_central(url, prepared=True)
        try:
            published = publish_policy(engine, args.file)
        finally:
            engine.dispose()
        print(f"policy {published.version} (sha256 {published.sha256[:12]}…) is "
              + ("published at central already" if published.already else "now published at central"))
        return 0
    if not args.file.is_file():
        what = "is a folder" if args.file.is_dir() else "does not exist"
        raise EnvironmentProblem(f"{args.file} {what}; give the path of the order export")
    engine = open_central(url, prepared=True)
    try:
        report = import_orders(engine, args.file, args.format)
    except BadRows as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        if exc.total > len(exc.problems):
            print(f"... and {exc.total - len(exc.problems)} more", file=sys.stderr)
        print(f"returns-console: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    _print_json(report.to_dict())
    return 0


def _approver_keys(args: argparse.Namespace, engine: Engine) -> int:
    import getpass

    from console import central_admin

    try:
        if args.keys_action == "list":
            for row in central_admin.approver_keys(engine, waiting_only=args.waiting):
                print(json.dumps(row.to_dict(), ensure_ascii=False))
            return 0
        if args.keys_action == "confirm":
            rows = central_admin.confirm_keys(engine, args.username, args.fingerprint,
                                              confirmed_by=args.by or getpass.getuser())
            verb = "confirmed: verdicts signed with it count at central from now on"
        else:
            rows = central_admin.revoke_keys(engine, args.username, station_id=args.station)
            verb = "revoked: verdicts signed with it are refused from now on"
    finally:
        engine.dispose()
    for row in rows:
        print(f"key {row.fingerprint} of {row.username} ({row.method} at {row.station_id}) {verb}")
    return 0


def _station_logins(args: argparse.Namespace, engine: Engine) -> int:
    from sqlalchemy.engine import URL

    from db.central import add_station, credentials, revoke_station

    try:
        if args.station_action == "add":
            login = add_station(engine, args.station_id, role=args.role)
            url = engine.url
            station_url = URL.create("postgresql", login.role, login.password, url.host, url.port, url.database,
                                     url.query).render_as_string(hide_password=False)
            print(f"station {login.station_id} logs in as {login.role}; put this in its config.toml "
                  "(the password is shown only now):")
            print(f'central_url = "{station_url}"')
        elif args.station_action == "revoke":
            roles = revoke_station(engine, args.station_id)
            print(f"station {args.station_id} can no longer log in ({', '.join(roles)}); its decisions stay "
                  "queued on it until it is issued a new login with `central station add`")
        else:
            for credential in credentials(engine):
                print(json.dumps(credential.to_dict(), ensure_ascii=False))
    finally:
        engine.dispose()
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from console.bench import run_benchmarks

    return run_benchmarks(quick=args.quick, out=args.out, only=args.only)


def cmd_screenshots(args: argparse.Namespace, settings: Settings) -> int:
    from ui.screenshots import SCREENS, render_screens

    names = {name for name, _ in SCREENS}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        raise EnvironmentProblem(f"unknown screen {', '.join(unknown)}: choose from {', '.join(sorted(names))}")
    for path in render_screens(args.out, args.only):
        print(path)
    return 0


def cmd_gui(args: argparse.Namespace, settings: Settings) -> int:
    from console.station import Station
    from ui.app import run

    station = Station.open(settings)
    return run(station)


def cmd_device(args: argparse.Namespace, settings: Settings) -> int:
    return device_commands.COMMANDS[(args.command, args.action)](args)


_COMMAND_MODULES = {"review": review_commands, "audit": audit_commands, "users": user_commands,
                    "policy": policy_commands}


def cmd_module(args: argparse.Namespace, settings: Settings) -> int:
    return _COMMAND_MODULES[args.command].run(args, settings)


COMMANDS = {"review": cmd_module, "audit": cmd_module, "users": cmd_module, "policy": cmd_module,
            "print": cmd_print, "print-queue": cmd_print, "scanner": cmd_device, "scale": cmd_device, "demo": cmd_demo, "lookup": cmd_lookup, "barcode": cmd_barcode, "simulate": cmd_simulate, "sync": cmd_sync,
            "central": cmd_central, "bench": cmd_bench, "screenshots": cmd_screenshots, None: cmd_gui}


def _friendly(exc: BaseException) -> str | None:
    """The one line for failures of the environment rather than of the code."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, OperationalError):
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"database unavailable: {first}. Check the path or URL and that the server is running."
    if isinstance(exc, DBAPIError):
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"database refused the operation: {first}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        return COMMANDS[args.command](args, settings)
    except DomainError as exc:
        print(f"returns-console: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("returns-console: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        line = _friendly(exc)
        if line is not None:
            print(f"returns-console: {line}", file=sys.stderr)
            return 1
        log_path = _write_crash_log(exc)
        print(f"returns-console: internal error ({type(exc).__name__}: {exc}); details in {log_path}",
              file=sys.stderr)
        return 70


def _write_crash_log(exc: BaseException) -> Path:
    import tempfile

    try:
        folder = load_settings().data_dir
        folder.mkdir(parents=True, exist_ok=True)
    except (DomainError, OSError):
        folder = Path(tempfile.gettempdir())
    path = folder / "crash.log"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"--- {datetime.now(timezone.utc).isoformat()}\n")
        fh.write("".join(traceback.format_exception(exc)))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
