"""Roles and permissions, checked by the services whatever calls them, and customers' contact
details: masked for everyone on screen, shown in full only to a role that may, with a reason,
and logged."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from console import permissions
from console.authorization import ReturnLine, authorize_return
from console.context import Actor
from console.errors import InvalidInput, NotAllowed
from console.inspection import inspect_item
from console.keep_it import refund_without_return
from console.permissions import ROLE_PERMISSIONS, allowed, require
from console.print_jobs import print_after_decision, reprint_rma
from console.receiving import add_rma_to_parcel, receive_parcel, scan_item, weigh_parcel
from console.undo import undo_last
from console.unexpected import match_unidentified, receive_without_rma, record_unidentified
from console.views import load_rma_view, mask_email, mask_phone, reveal_contact
from db.models import AuditEvent, Base, Customer, OutboxRow, ReturnItem
from printing.settings import default_settings
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world

CLERK = Actor(1, "aiko", "Aiko", "clerk")
SUPERVISOR = Actor(2, "mei", "Mei", "supervisor")
# A role this console does not know (a newer central's, or a typo in an import): it may do nothing.
STRANGER = Actor(1, "aiko", "Aiko", "visitor")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


def test_the_role_matrix() -> None:
    assert set(ROLE_PERMISSIONS) == {"clerk", "associate", "supervisor", "admin"}
    for role in ("clerk", "associate"):
        who = Actor(1, "x", "X", role)
        assert [p for p in (permissions.RECEIVE, permissions.DECIDE, permissions.PRINT) if allowed(who, p)] == [
            permissions.RECEIVE, permissions.DECIDE, permissions.PRINT]
        for p in (permissions.REVIEW, permissions.VIEW_PII, permissions.MANAGE_USERS, permissions.MANAGE_POLICY):
            assert not allowed(who, p)
    assert allowed(SUPERVISOR, permissions.VIEW_PII) and allowed(SUPERVISOR, permissions.REVIEW)
    assert not allowed(SUPERVISOR, permissions.MANAGE_USERS)
    assert all(allowed(Actor(3, "k", "K", "admin"), p) for p in permissions._WHAT)  # noqa: SLF001
    with pytest.raises(NotAllowed, match="Aiko is signed in as clerk; only a supervisor or admin may see customers'"):
        require(CLERK, permissions.VIEW_PII)
    with pytest.raises(ValueError, match="unknown permission"):
        require(CLERK, "fly")


def _count_rows(world: World) -> dict[str, int]:
    with world.uow() as uow:
        return {t.name: uow.session.scalar(select(func.count()).select_from(t)) or 0
                for t in Base.metadata.sorted_tables}


def test_every_station_service_checks_the_role(world: World, tmp_path: Path) -> None:
    """A role without permissions is refused by each service before it writes anything; the same
    calls go through for a clerk (the receipt below was made by one)."""
    order = add_order(world, [LineSpec("AP-1", 4000), LineSpec("AP-2", 1000)])
    rma = add_rma(world, order)
    with world.uow() as uow:
        receipt = receive_parcel(uow, world.ctx(CLERK), rma.number)
    with world.uow() as uow:
        scan_item(uow, world.ctx(CLERK), receipt.receipt_id, "AP-1")
    with world.uow() as uow:
        item_id = uow.session.scalar(select(ReturnItem.id).where(ReturnItem.reception_status == "received"))
    ctx = world.ctx(STRANGER)
    printers = default_settings(tmp_path)
    calls: dict[str, Callable[[Any], object]] = {
        "receive_parcel": lambda uow: receive_parcel(uow, ctx, rma.number),
        "weigh_parcel": lambda uow: weigh_parcel(uow, ctx, receipt.receipt_id, 900, source="scale"),
        "scan_item": lambda uow: scan_item(uow, ctx, receipt.receipt_id, "AP-2"),
        "add_rma_to_parcel": lambda uow: add_rma_to_parcel(uow, ctx, receipt.receipt_id, order.number),
        "inspect_item": lambda uow: inspect_item(uow, ctx, item_id, "A"),
        "undo_last": lambda uow: undo_last(uow, ctx, receipt.receipt_id),
        "receive_without_rma": lambda uow: receive_without_rma(uow, ctx, order.number),
        "record_unidentified": lambda uow: record_unidentified(uow, ctx, None, weight_g=500, weight_source="scale",
                                                               weight_reason=None, photos=[], note="no label"),
        "match_unidentified": lambda uow: match_unidentified(uow, ctx, receipt.receipt_id, rma.number),
        "print_after_decision": lambda uow: print_after_decision(uow, ctx, printers, uuid.uuid4()),
        "reprint_rma": lambda uow: reprint_rma(uow, ctx, rma.number),
        "refund_without_return": lambda uow: refund_without_return(uow, ctx, order.number, 1, 1, "changed_mind"),
        "authorize_return": lambda uow: authorize_return(uow, ctx, order.number, [ReturnLine(1, 1, "changed_mind")]),
    }
    before = _count_rows(world)
    for name, call in calls.items():
        with world.uow() as uow, pytest.raises(NotAllowed, match="signed in as visitor"):
            call(uow)
            pytest.fail(f"{name} let a visitor through")
    assert _count_rows(world) == before


# -- personal data -------------------------------------------------------------------------------

def _contact(world: World, customer_id: int) -> tuple[str, str | None]:
    with world.uow() as uow:
        customer = uow.session.get(Customer, customer_id)
        assert customer is not None and customer.phone
        return customer.email, customer.phone


def test_contact_details_are_masked_on_screen_for_every_role(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 4000)])
    rma = add_rma(world, order)
    email, phone = _contact(world, order.customer_id)
    for actor in (CLERK, SUPERVISOR, Actor(3, "k", "K", "admin")):
        with world.uow() as uow:
            view = load_rma_view(uow.session, world.ctx(actor), rma.id)
        assert view.customer_email == email[0] + "•••@example.com"
        assert view.customer_phone == "•••• " + phone[-3:]
    assert mask_email("jane.doe@example.com") == "j•••@example.com"
    assert mask_email("not-an-address") == "•••"
    assert mask_phone("+1 (555) 010-4477") == "•••• 477" and mask_phone(None) is None


def test_a_clerk_cannot_reveal_contact_details(world: World) -> None:
    rma = add_rma(world, add_order(world, [LineSpec("AP-1", 4000)]))
    with world.uow() as uow, pytest.raises(NotAllowed, match="see customers' contact details"):
        reveal_contact(uow, world.ctx(CLERK), rma.id, "customer called")
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_supervisor_sees_them_for_a_case_with_a_reason_and_it_is_logged(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 4000)])
    rma = add_rma(world, order)
    with world.uow() as uow, pytest.raises(InvalidInput, match="Say why"):
        reveal_contact(uow, world.ctx(SUPERVISOR), rma.id, "  ")
    with world.uow() as uow:
        shown = reveal_contact(uow, world.ctx(SUPERVISOR), rma.id, "  disputed   refund, calling back ")
    assert (shown.email, shown.phone) == _contact(world, order.customer_id)
    with world.uow() as uow:
        events = list(uow.session.scalars(select(AuditEvent)))
        carried = [str(r.payload) for r in uow.session.scalars(select(OutboxRow))]
    assert not any(shown.email in text or (shown.phone or "") in text for text in carried), \
        "what was seen stays at the bench; only that it was seen travels"
    assert [(e.action, e.user_id, e.entity) for e in events] == [("pii_viewed", 2, "customer")]
    assert events[0].details == {"rma": rma.number, "fields": ["email", "phone"],
                                 "reason": "disputed refund, calling back"}
    assert shown.email not in str(events[0].details), "the log says who looked and why, not what they saw"
