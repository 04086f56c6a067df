"""The audit trail is a hash chain per station: editing any row breaks it from there on."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from console import audit
from db.models import AuditEvent
from tests.factories import make_world


def test_chain_holds_and_an_edit_shows(tmp_path: Path) -> None:
    world = make_world(tmp_path / "a.sqlite3")
    ctx = world.ctx()
    with world.uow() as uow:
        for n in range(5):
            audit.record(uow.session, ctx, "test", "thing", n, {"amount_minor": n * 100, "名前": "田中"})
        uow.commit()
    with world.uow() as uow:
        assert audit.verify_chain(uow.session, ctx.station_id) is None
        seqs = list(uow.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        assert seqs == [1, 2, 3, 4, 5]
        uow.session.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(details={"amount_minor": 1}))
        uow.commit()
    with world.uow() as uow:
        assert audit.verify_chain(uow.session, ctx.station_id) == 3
    world.engine.dispose()
