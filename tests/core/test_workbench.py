"""The bench session without Qt (console.workbench), and the rule it shares with every desk: the
service ``decide`` itself refuses a payout on a stale identity check, whoever calls it."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from console.deciding import DecideCommand, decide
from console.reconfirm import IdentityCheckNeeded
from console.station import Station
from console.workbench import Weight, Workbench, announcement, grade_job, receive_job, scan_job, sign_out_job
from db.models import AuditEvent, Decision, ReturnAuthorization
from tests.tools.factories import LineSpec, World, add_order, add_rma
from tests.tools.window_fixtures import station, world  # noqa: F401 - fixtures

GTIN = "00012345678905"


@pytest.fixture
def two_units(world: World) -> ReturnAuthorization:
    order = add_order(world, [LineSpec("AP-1", 4000, gtin=GTIN, weight_g=1000),
                              LineSpec("AP-2", 2000, weight_g=330)])
    return add_rma(world, order)


def _graded(station: Station, rma: ReturnAuthorization) -> None:
    ctx = station.ctx()
    outcome = receive_job(station, ctx, rma.number, Weight(1480, None, False), uuid.uuid4())
    assert not hasattr(outcome, "order_number"), outcome
    receipt, bench = outcome  # type: ignore[misc]
    for code in (GTIN, "AP-2"):
        scan_job(station, ctx, receipt.receipt_id, code, rma.id, None)
    for item in bench.view.items:
        grade_job(station, ctx, item.id, "A", rma.id, None)


# -- the service's own identity check ----------------------------------------------------------------

def test_decide_refuses_a_payout_on_a_stale_identity_check_whoever_calls_it(
        world: World, station: Station, two_units: ReturnAuthorization) -> None:
    _graded(station, two_units)
    station.actor = replace(station.actor, identity_checked_at=world.clock.now - timedelta(minutes=11))
    ctx = station.ctx()  # idle_lock_minutes 10 (the default): eleven minutes is too old
    assert ctx.reconfirm_within == timedelta(minutes=10)
    with world.uow() as uow, pytest.raises(IdentityCheckNeeded, match="confirm it is you"):
        decide(uow, ctx, DecideCommand(two_units.id, decision_id=uuid.uuid4()))
    with world.uow() as uow:
        assert uow.session.scalars(select(Decision)).first() is None, "nothing written"
    station.actor = replace(station.actor, identity_checked_at=world.clock.now - timedelta(minutes=2))
    with world.uow() as uow:
        result = decide(uow, station.ctx(), DecideCommand(two_units.id, decision_id=uuid.uuid4()))
    assert (result.status, result.kind, result.amount.minor) == ("approved", "full_refund", 6000)


def test_a_decision_that_pays_nothing_now_is_not_held_by_an_old_check(
        world: World, station: Station, two_units: ReturnAuthorization) -> None:
    _graded(station, two_units)
    station.actor = replace(station.actor, identity_checked_at=world.clock.now - timedelta(hours=3))
    with world.uow() as uow:  # a denial pays nothing: no check needed
        result = decide(uow, station.ctx(), DecideCommand(two_units.id, kind="deny", decision_id=uuid.uuid4(),
                                                          note="not ours"))
    assert result.kind == "deny" and result.status == "approved"


def test_an_actor_no_one_signed_in_as_has_no_check_to_go_stale(
        world: World, station: Station, two_units: ReturnAuthorization) -> None:
    # The headless commands run as the station's configured user: no PIN was ever typed.
    assert station.actor.identity_checked_at is None
    _graded(station, two_units)
    with world.uow() as uow:
        result = decide(uow, station.ctx(), DecideCommand(two_units.id, decision_id=uuid.uuid4()))
    assert result.status == "approved"


# -- the session's rules -------------------------------------------------------------------------------

def test_the_weight_is_the_scales_only_while_nobody_retyped_it(station: Station) -> None:
    work = Workbench(station)
    assert work.weight(0) == Weight(None, None, False)
    assert not work.scale_reading(1234, 2)  # no parcel open: kept for the next parcel code
    assert work.weight(1234) == Weight(1234, 2, True)
    assert work.weight(1234).args() == {"weight_g": 1234, "weight_source": "scale", "weight_reason": None,
                                        "scale_division_g": 2}
    typed = work.weight(1240)  # the clerk changed it: typed, with the reason the audit shows
    assert typed == Weight(1240, None, False)
    assert typed.args() == {"weight_g": 1240, "weight_source": "manual", "weight_reason": "typed at bench",
                            "scale_division_g": None}
    work.put_down()
    assert work.weight(1234) == Weight(1234, None, False), "a reading for a parcel put down is not kept"


def test_a_result_for_a_parcel_put_down_is_not_current(station: Station) -> None:
    work = Workbench(station)
    asked = work.generation
    assert work.current(asked)
    work.put_down()
    assert not work.current(asked)
    work.scale_asked_in = work.generation
    assert work.reading_is_current()
    work.scale_asked_in = asked
    assert not work.reading_is_current()


def test_a_step_runs_as_the_person_who_asked_for_it(world: World, station: Station) -> None:
    # The idle lock's sign-out is taken with Aiko's context; by the time it runs, Mei has signed in.
    asked = station.ctx()
    station.actor = replace(station.actor, user_id=2, username="mei", display_name="Mei")
    sign_out_job(station, asked, "idle")
    with world.uow() as uow:
        event = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "signed_out")).one()
    assert event.user_id == 1 and event.details.get("reason") == "idle"


def test_what_the_bench_says_after_a_decision(world: World, station: Station,
                                              two_units: ReturnAuthorization) -> None:
    _graded(station, two_units)
    with world.uow() as uow:
        result = decide(uow, station.ctx(), DecideCommand(two_units.id, decision_id=uuid.uuid4()))
    level, text = announcement(result)
    assert level == "success" and text.startswith(f"{two_units.number}: Refund USD 60.00 approved.")
    again = replace(result, already_existed=True)
    assert "(already recorded)" in announcement(again)[1]
