"""`returns-console users …`: the admin screen's steps without the GUI.

The command acts as ``--user`` (config.toml's ``user``), who must be an admin and proves it with
their PIN, asked for first: shell access to a station is not a licence to manage its users, and
the audit trail names the admin who did it. PINs are never taken from the command line (it
lands in shell history and process lists): with a terminal they are asked for without echo,
otherwise read one per line from standard input — the admin's own, then the new one.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from console.config import Settings
from console.identity import prove_identity, read_secret
from db.models import ROLES


NAMES = ("users",)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("users", help="list and manage the station's users (as an admin, with your PIN)",
                       description="Manage who may sign in here. Acts as --user, who must be an admin; their "
                                   "PIN is asked for first (or read from the first line of standard input).")
    us = p.add_subparsers(dest="action", required=True)
    us.add_parser("list", help="every user as JSON lines (never a hash)")
    add = us.add_parser("add", help="add a user; the new PIN is asked for (or read from standard input)")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="the person's name as colleagues know it")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--badge", action="store_true", help="also read a badge code (scan it when asked)")
    reset = us.add_parser("reset-pin", help="a new PIN (also lifts a lock after ten wrong PINs)")
    reset.add_argument("username")
    badge = us.add_parser("set-badge", help="give a user a badge (scan it when asked), or take it with --remove")
    badge.add_argument("username")
    badge.add_argument("--remove", action="store_true")
    for action, words in (("disable", "the user can no longer sign in"), ("enable", "the user can sign in again")):
        us.add_parser(action, help=words).add_argument("username")
    role = us.add_parser("role", help="change a user's role")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from console import users_admin as admin
    from console.station import Station

    station = Station.open(settings)
    try:
        prove_identity(station)
        ctx = station.ctx()
        if args.action == "list":
            with station.read_uow() as uow:
                rows = admin.list_users(uow.session, ctx)
            for row in rows:
                print(json.dumps(row.to_dict(), ensure_ascii=False))
            return 0
        if args.action == "add":
            pin = _new_secret(f"New PIN for {args.username}")
            badge = _new_secret(f"Scan {args.username}'s badge") if args.badge else None
            with station.uow() as uow:
                user_id = admin.add_user(uow, ctx, args.username, args.name, args.role, pin, badge=badge)
            _done("added", user_id, args.username)
            return 0
        with station.read_uow() as uow:
            user_id = admin.user_id_by_name(uow.session, args.username)
        if args.action == "reset-pin":
            pin = _new_secret(f"New PIN for {args.username}")
            with station.uow() as uow:
                admin.reset_pin(uow, ctx, user_id, pin)
            _done("pin_reset", user_id, args.username)
        elif args.action == "set-badge":
            with station.uow() as uow:
                if args.remove:
                    admin.remove_badge(uow, ctx, user_id)
                else:
                    code = _new_secret(f"Scan {args.username}'s badge")
                    admin.set_badge(uow, ctx, user_id, code)
            _done("badge_removed" if args.remove else "badge_set", user_id, args.username)
        elif args.action in ("disable", "enable"):
            step = admin.disable_user if args.action == "disable" else admin.enable_user
            with station.uow() as uow:
                step(uow, ctx, user_id)
            _done(f"{args.action}d", user_id, args.username)
        else:
            with station.uow() as uow:
                admin.change_role(uow, ctx, user_id, args.role)
            _done("role_changed", user_id, args.username, role=args.role)
        return 0
    finally:
        station.close()


def _new_secret(prompt: str) -> str:
    from console.errors import InvalidInput

    first = read_secret(prompt)
    if sys.stdin.isatty() and getpass.getpass(f"{prompt} (again): ") != first:
        raise InvalidInput("The two entries differ: nothing was changed. Run the command again.")
    return first


def _done(action: str, user_id: int, username: str, **more: str) -> None:
    print(json.dumps({"action": action, "user_id": user_id, "username": username.strip().lower(), **more}))
