"""`returns-console`: the composition root. No arguments opens the console; subcommands run headless.

Each command group is a module of this package with one shape: ``NAMES`` (the subcommands it
adds), ``add_parsers(sub)`` and ``run(args, settings) -> int``. This module is the only one that
imports the UI (``cmd_gui``).

Every failure a person can fix ends as one line on stderr and a non-zero exit; a bug ends as
one line too, with the traceback written to a log file whose path the line gives.
"""
from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from console.cli import audit, central, codes, demo, devices, policy, printing, review, sync, users
from console.config import Settings, load_settings
from console.errors import DomainError

log = logging.getLogger("returns_console")

# In the order `returns-console --help` lists them.
GROUPS: tuple[ModuleType, ...] = (demo, codes, sync, central, devices, printing, review, audit, users, policy)
COMMANDS: dict[str, ModuleType] = {name: group for group in GROUPS for name in group.NAMES}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="returns-console",
                                description="Returns Console: scan, weigh, grade, decide and sync returned parcels.")
    p.add_argument("--station", metavar="PATH", help="station SQLite database (default: in the user data folder)")
    p.add_argument("--central", metavar="URL", help="central database: postgresql://... or a SQLite file path")
    p.add_argument("--user", help="user name to work as (default: config.toml's user, else the demo clerk 'aiko')")
    p.add_argument("--policy", metavar="FILE", type=Path, help="policy TOML file (default: the shipped policy)")
    p.add_argument("--time-zone", help="station time zone, e.g. Asia/Tokyo")
    sub = p.add_subparsers(dest="command")

    for group in GROUPS:
        group.add_parsers(sub)
    return p


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "station_db": Path(args.station) if args.station else None,
        "central_url": args.central,
        "user": args.user,
        "policy_file": args.policy,
        "time_zone": args.time_zone,
    }
    return load_settings(**overrides)


def cmd_gui(args: argparse.Namespace, settings: Settings) -> int:
    from console.station import Station
    from ui.app import run

    station = Station.open(settings)
    return run(station)


def _friendly(exc: BaseException) -> str | None:
    """The one line for failures of the environment rather than of the code."""
    from sqlalchemy.exc import DBAPIError

    from db.errors import translate

    if isinstance(exc, DBAPIError):
        return translate(exc, "database", failing="unavailable").message
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command is None:
            return cmd_gui(args, settings)
        return COMMANDS[args.command].run(args, settings)
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
