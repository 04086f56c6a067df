"""`returns-console policy …`: policy files without the GUI.

``policy backtest --policy FILE [--days N]`` re-routes past returns under a candidate policy and
prints how many outcomes would change and the money involved, so thresholds are tuned on evidence.
``policy check FILE`` reads a policy file and says what is wrong with it, if anything.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from console.config import Settings


NAMES = ("policy",)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("policy", help="check a policy file; back-test a candidate policy on past returns")
    ps = p.add_subparsers(dest="policy_action", required=True)
    bt = ps.add_parser("backtest", help="how past returns would have been routed under a candidate policy",
                       description="Re-score every return decided in the last N days under the candidate "
                                   "policy, from the facts stored with each assessment, and compare with the "
                                   "station's policy. Needs a supervisor or admin (--user).")
    bt.add_argument("--policy", dest="candidate", type=Path, required=True, metavar="FILE",
                    help="the candidate policy file (TOML)")
    bt.add_argument("--days", type=int, default=90, help="how far back (default: 90)")
    bt.add_argument("--json", action="store_true", help="print the report as JSON")
    check = ps.add_parser("check", help="read a policy file and report what is wrong with it")
    check.add_argument("file", type=Path)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from console.errors import InvalidInput
    from console.policy import load_policy

    if args.policy_action == "check":
        policy = load_policy(args.file)  # raises EnvironmentProblem with the key at fault
        print(f"{args.file}: policy {policy.version} is usable ({len(policy.risk.signals)} risk signals, "
              f"review at {policy.risk.review_at_or_above}, denial proposed at "
              f"{policy.risk.suggest_deny_at_or_above})")
        return 0
    if args.days < 1:
        raise InvalidInput("--days must be at least 1")
    from console.backtest import backtest
    from console.permissions import REVIEW, require
    from console.station import Station

    candidate = load_policy(args.candidate)
    station = Station.open(settings)
    try:
        require(station.actor, REVIEW)
        with station.read_uow() as uow:
            report = backtest(uow.session, station.policy, candidate, args.days, station.ctx().now())
    finally:
        station.close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(report.lines()))
    return 0
