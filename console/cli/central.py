"""`central`: prepare the central database, issue and revoke station logins, load orders, confirm
users and keys, publish the policy."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli.common import print_json
from console.config import Settings
from console.errors import EnvironmentProblem

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

NAMES = ("central",)


def add_parsers(sub: Any) -> None:
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    from console.order_import import BadRows, import_orders
    from db.central import open_central, public_url

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
    print_json(report.to_dict())
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
