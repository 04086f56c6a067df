"""The outbox is built by the unit of work's commit, in the open (db.outbox): what a transaction
changes reaches central in one of its events, or the commit is refused — a Core UPDATE included."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from console import audit
from console.rmas import add_event
from db.models import AuditEvent, OutboxRow, PrintJob, ReturnAuthorization
from db.outbox import AUDIT_KIND, OutboxBypassed
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


@pytest.fixture
def rma(world: World) -> ReturnAuthorization:
    return add_rma(world, add_order(world, [LineSpec("AP-1", 1000)]))


def events(world: World) -> list[OutboxRow]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def carried(event: OutboxRow, table: str) -> list[dict[str, Any]]:
    return [r["values"] for r in event.payload["rows"] if r["table"] == table]


def status_of(world: World, rma: ReturnAuthorization) -> str:
    with world.uow() as uow:
        return uow.session.scalars(select(ReturnAuthorization.status)
                                   .where(ReturnAuthorization.id == rma.id)).one()


# --- a Core UPDATE: carried, or refused -----------------------------------------------------------

def test_a_core_update_of_a_synced_row_that_no_event_carries_is_refused(world: World,
                                                                         rma: ReturnAuthorization) -> None:
    before = len(events(world))
    with world.uow() as uow:
        uow.session.execute(update(ReturnAuthorization).where(ReturnAuthorization.id == rma.id)
                            .values(status="canceled"))
        with pytest.raises(OutboxBypassed, match=rf"Core UPDATE .*return_authorizations \[{rma.id}\]"):
            uow.commit()
    assert status_of(world, rma) == "authorized"  # nothing of it was committed
    assert len(events(world)) == before


def test_a_core_update_of_a_synced_row_reaches_central_in_the_steps_event(world: World,
                                                                          rma: ReturnAuthorization) -> None:
    with world.uow() as uow:
        uow.session.execute(update(ReturnAuthorization).where(ReturnAuthorization.id == rma.id)
                            .values(return_tracking_number="1ZCORE"))
        row = uow.session.get(ReturnAuthorization, rma.id)
        assert row is not None
        # The RMA only as what the event is about: written here (by the UPDATE), so carried in full.
        add_event(uow, world.ctx(), "rma_changed", rma.id, [row], [])
        uow.commit()
    last = events(world)[-1]
    assert [v["return_tracking_number"] for v in carried(last, "return_authorizations")] == ["1ZCORE"]
    assert rma.id not in last.payload.get("refs", {}).get("return_authorizations", [])


def test_a_core_update_through_session_commit_is_refused_too(world: World, rma: ReturnAuthorization) -> None:
    with world.uow() as uow:
        uow.session.execute(update(ReturnAuthorization).where(ReturnAuthorization.id == rma.id)
                            .values(status="canceled"))
        with pytest.raises(OutboxBypassed):
            uow.session.commit()
    assert status_of(world, rma) == "authorized"


def test_a_core_update_rolled_back_is_forgotten(world: World, rma: ReturnAuthorization) -> None:
    with world.uow() as uow:
        uow.session.execute(update(ReturnAuthorization).where(ReturnAuthorization.id == rma.id)
                            .values(status="canceled"))
        uow.rollback()
        audit.record(uow.session, world.ctx(), "test", "thing", 1)
        uow.commit()
    assert status_of(world, rma) == "authorized"
    assert events(world)[-1].kind == AUDIT_KIND


def test_a_core_insert_or_delete_of_a_synced_table_is_refused_at_once(world: World,
                                                                      rma: ReturnAuthorization) -> None:
    with world.uow() as uow, pytest.raises(OutboxBypassed, match="DELETE on return_authorizations"):
        uow.session.execute(delete(ReturnAuthorization).where(ReturnAuthorization.id == rma.id))
    with world.uow() as uow, pytest.raises(OutboxBypassed, match="INSERT on stations"):
        uow.session.execute(insert(ReturnAuthorization.__table__.metadata.tables["stations"])
                            .values(id="WH9-99", name="Elsewhere"))
    with world.uow() as uow, pytest.raises(OutboxBypassed, match="textual"):
        uow.session.execute(text("UPDATE return_authorizations SET status = 'canceled'"))
    assert status_of(world, rma) == "authorized"


def test_a_core_update_of_a_station_only_table_needs_no_event(world: World) -> None:
    with world.uow() as uow:
        uow.session.execute(update(PrintJob).where(PrintJob.status == "sending").values(status="uncertain"))
        uow.commit()
    assert events(world) == []


# --- audit rows ------------------------------------------------------------------------------------

def test_audit_rows_are_refused_outside_a_unit_of_work(world: World) -> None:
    with Session(world.engine) as session, pytest.raises(OutboxBypassed, match="not a unit of work"):
        audit.record(session, world.ctx(), "test", "thing", 1)
    with world.uow() as uow:
        assert uow.session.scalars(select(AuditEvent)).all() == []


def test_a_commit_round_the_unit_of_work_with_audit_rows_is_refused(world: World) -> None:
    with world.uow() as uow:
        audit.record(uow.session, world.ctx(), "test", "thing", 1)
        with pytest.raises(OutboxBypassed, match="uow.commit"):
            uow.session.commit()
    with world.uow() as uow:
        assert uow.session.scalars(select(AuditEvent)).all() == []


def test_audit_rows_ride_the_last_event_written_even_in_a_released_savepoint(world: World,
                                                                             rma: ReturnAuthorization) -> None:
    with world.uow() as uow:
        row = uow.session.get(ReturnAuthorization, rma.id)
        assert row is not None
        with uow.session.begin_nested():
            audit.record(uow.session, world.ctx(), "first", "thing", 1)
            add_event(uow, world.ctx(), "looked_at", rma.id, [row], [])
        add_event(uow, world.ctx(), "looked_at_again", rma.id, [row], [])
        audit.record(uow.session, world.ctx(), "second", "thing", 2)
        uow.commit()
    first, second = events(world)
    assert [v["action"] for v in carried(first, "audit_events")] == []
    assert [v["action"] for v in carried(second, "audit_events")] == ["first", "second"]


def test_no_listener_is_left_on_every_session(world: World) -> None:
    """Nothing is registered on the Session class: only a unit of work's own session listens."""
    with Session(world.engine) as plain:
        assert [len(getattr(plain.dispatch, name)) for name in
                ("after_flush", "before_commit", "after_transaction_end", "do_orm_execute")] == [0, 0, 0, 0]
    from db.outbox import Outbox, UowSession

    with world.uow() as uow:
        # The unit of work's own session class listens (registered once, not per session) …
        assert isinstance(uow.session, UowSession) and len(uow.session.dispatch.before_commit) == 1
        assert Outbox.of(uow.session) is uow.outbox
    # … and only while its outbox is attached: after the unit of work, nothing is carried.
    with pytest.raises(Exception, match="not a unit of work"):
        Outbox.of(uow.session)
