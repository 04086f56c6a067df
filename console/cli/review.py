"""`returns-console review …`: the supervisor's review queue without the GUI.

``review list`` prints the cases waiting (JSON lines), ``review show ID`` one case's evidence
(JSON), ``review approve ID --note … [--amount ITEM=MINOR …]`` and ``review reject ID --note …``
settle it. The acting user is ``--user``; the same services as the review page check the role and
four eyes, so a headless command can do nothing the screen would refuse.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import uuid
from datetime import datetime
from typing import Any

from console.config import Settings
from console.errors import DomainError, InvalidInput, NotFound


NAMES = ("review",)


def add_parsers(sub: Any) -> None:
    """Add this module's sub-commands to the top-level parser."""
    p = sub.add_parser("review", help="the supervisor review queue: list, show, approve, reject",
                       description="Cases waiting for a supervisor at any station. Four eyes: whoever decided a "
                                   "case or received its parcel cannot settle it, whatever their role.")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="cases waiting, oldest day first and largest first (JSON lines)")
    # Not --station: that top-level option names the station database (a sub-parser's default
    # would overwrite it).
    ls.add_argument("--from", dest="from_station", metavar="STATION_ID", help="only cases from this station")
    ls.add_argument("--kind", choices=("decision", "conflict", "claim"))
    ls.add_argument("--min-amount", type=int, metavar="MINOR", help="only amounts at or above (minor units)")
    ls.add_argument("--search", default="", help="RMA, order, customer, clerk, station or reason")
    ls.add_argument("--sort", choices=("oldest", "largest"), default="oldest")
    show = actions.add_parser("show", help="one case's evidence (JSON)")
    show.add_argument("decision", help="the decision id (or its first 8 characters)")
    show.add_argument("--contact", metavar="REASON",
                      help="also show the customer's e-mail and phone, saying why (logged)")
    ok = actions.add_parser("approve", help="approve a case, as decided or with other amounts per unit")
    ok.add_argument("decision", help="the decision id (or its first 8 characters)")
    ok.add_argument("--note", required=True, help="why (shown to the clerk, kept in the audit trail)")
    ok.add_argument("--amount", action="append", default=[], metavar="ITEM=MINOR",
                    help="refund for one return item in minor units (repeatable); others stay as decided")
    no = actions.add_parser("reject", help="reject a case: the refund is denied")
    no.add_argument("decision", help="the decision id (or its first 8 characters)")
    no.add_argument("--note", required=True, help="why (shown to the clerk, kept in the audit trail)")


def _claim_action(uow: Any, ctx: Any, args: argparse.Namespace) -> int:
    from console.claim_review import settle_claim
    from db.models import Claim

    claim_id = find_decision(uow.session, args.decision, Claim)
    if args.action == "show":
        claim = uow.session.get(Claim, claim_id)
        print(json.dumps({"id": str(claim.id), "kind": claim.kind, "status": claim.status,
                          "amount_minor": claim.amount_minor, "currency": claim.currency,
                          "order_id": claim.order_id, "created_by_id": claim.created_by_id,
                          "evidence": claim.evidence}, ensure_ascii=False, default=str))
        return 0
    amounts = parse_amounts(args.amount) if args.action == "approve" else None
    if amounts and len(amounts) != 1:
        raise InvalidInput("A claim has one amount: give --amount ANY=MINOR once.")
    verdict = settle_claim(uow, ctx, claim_id, args.note, reject=args.action == "reject",
                           amount_minor=next(iter(amounts.values())) if amounts else None)
    print(json.dumps(verdict.to_dict(), ensure_ascii=False))
    return 0


def parse_amounts(pairs: list[str]) -> dict[int, int] | None:
    amounts: dict[int, int] = {}
    for pair in pairs:
        item, sep, minor = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            amounts[int(item)] = int(minor)
        except ValueError:
            raise InvalidInput(f"--amount {pair!r}: write RETURN_ITEM_ID=MINOR_UNITS, e.g. 1042=2500") from None
    return amounts or None


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value).__name__ == "Money":
            return {"minor": value.minor, "currency": value.currency}  # type: ignore[attr-defined]
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (datetime, uuid.UUID)):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return value


def find_decision(session: Any, text: str, model: Any = None) -> uuid.UUID:
    """A decision (or a claim, with ``model``) by its id, or by the first characters of it (as
    the queue shows them)."""
    from sqlalchemy import String, cast, select

    from db.models import Claim, Decision as DecisionRow

    table = model or DecisionRow
    what = "claim" if table is Claim else "decision"
    text = text.strip().lower()
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    if len(text) < 4:
        raise InvalidInput(f"Give at least the first 4 characters of the {what} id.")
    matches = list(session.scalars(select(table.id).where(cast(table.id, String).like(f"{text}%")).limit(2)))
    if not matches:
        # SQLite stores UUIDs as 32 hex digits without dashes.
        matches = list(session.scalars(select(table.id).where(
            cast(table.id, String).like(f"{text.replace('-', '')}%")).limit(2)))
    if not matches:
        raise NotFound(f"No {what} id starts with {text!r} at this station.")
    if len(matches) > 1:
        raise InvalidInput(f"More than one {what} id starts with {text!r}: give more characters.")
    return matches[0]


def run(args: argparse.Namespace, settings: Settings) -> int:
    from console import review
    from console.identity import prove_identity
    from console.permissions import REVIEW, require
    from console.station import Station

    station = Station.open(settings)
    try:
        # Settling a case or seeing a customer's details in someone's name takes their PIN.
        require(station.actor, REVIEW)
        prove_identity(station)
        signer = station.actor.signer
        if signer is not None and signer.enrolled:
            who = station.actor.username
            print(f"A new signing key for {who} at this station, fingerprint {signer.fingerprint}: a central admin "
                  f"confirms it (`returns-console central keys confirm {who} --fingerprint {signer.fingerprint}`) "
                  "before verdicts given with it count at central.", file=sys.stderr)
        ctx = station.ctx()
        if args.action == "list":
            filters = review.QueueFilters(station=args.from_station, kind=args.kind, min_amount_minor=args.min_amount,
                                          text=args.search, sort=args.sort)
            with station.read_uow() as uow:
                for entry in review.review_queue(uow, ctx, filters):
                    print(json.dumps(entry.to_dict(), ensure_ascii=False))
            return 0
        with station.uow() as uow:
            try:
                decision_id = find_decision(uow.session, args.decision)
            except NotFound:
                return _claim_action(uow, ctx, args)  # the queue lists claims by their own ids
            if args.action == "show":
                view = review.review_case(uow, ctx, decision_id, reveal=args.contact)
                print(json.dumps({**_jsonable(view), "received_by": list(view.received_by),
                                  "may_settle": view.may_settle}, ensure_ascii=False))
                return 0
            if args.action == "approve":
                result = review.approve(uow, ctx, decision_id, args.note, parse_amounts(args.amount))
            else:
                result = review.reject(uow, ctx, decision_id, args.note)
        # As the review page does: the verdict is committed; if this station received the parcel,
        # its printouts (new labels, the receipt or slip) are queued now, once, on the same path.
        said = {**result.to_dict(), "printed": 0}
        try:
            from printing.settings import load_printer_settings, printers_file

            printers = load_printer_settings(printers_file(settings.config_file), settings.data_dir)
            with station.uow() as uow:
                said["printed"] = len(review.print_settled_reviews(uow, station.ctx(), printers))
        except DomainError as exc:  # the verdict stands; the sync worker queues them at its next pass
            print(f"The verdict is recorded; its printouts are not queued yet: {exc.message}", file=sys.stderr)
        print(json.dumps(said, ensure_ascii=False))
        return 0
    finally:
        station.close()
