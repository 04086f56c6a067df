"""An approval proves who made it (console.approval_signing, migration 0011): a supervisor's key
is enrolled at their sign-in and sealed under their PIN or badge; the verdict is signed with it;
central, on the real PostgreSQL server, takes the verdict only with a valid signature by a key
it confirmed. Each forgery below is run the way an attacker at a station could: through the
services with another actor, by editing the station's SQLite, or by editing the outbox JSON."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from console import review
from console.approval_signing import new_signer, sign_approval, unseal, verifies
from console.central_admin import approver_keys, confirm_keys, revoke_keys
from console.context import Actor
from console.errors import NotAllowed, NotFound
from console.signin import set_badge, set_pin, sign_in, sign_in_badge
from db.central import init_central
from db.engine import make_engine
from db.models import (Approval, ApproverKey, AuditEvent, Decision, OutboxRow, SealedKey, Station, SyncConflict,
                       User)
from db.pull import pull_once
from db.push import push_once
from db.uow import UnitOfWork
from tests.tools.factories import NOW, World
from tests.sync.test_pull import settle
from tests.sync.test_central_door import login as login  # noqa: F401 - a station's own login at central
from tests.core.test_review import AIKO, pending_case
from tests.core.test_review import world as world  # noqa: F401 - a station with aiko, mei and sora

MEI_PIN = "2468"
MEI_BADGE = "BADGE-MEI-7731"


def signed_in_mei(world: World, *, badge: bool = False) -> Actor:
    with world.uow() as uow:
        return (sign_in_badge(uow, world.station_id, MEI_BADGE, NOW) if badge
                else sign_in(uow, world.station_id, "mei", MEI_PIN, NOW))


@pytest.fixture(autouse=True)
def _mei_has_a_pin_and_badge(world: World) -> None:
    with world.uow() as uow:
        set_pin(uow, 2, MEI_PIN)
    with world.uow() as uow:
        set_badge(uow, 2, MEI_BADGE)


def keys(world: World) -> list[ApproverKey]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(ApproverKey).order_by(ApproverKey.enrolled_at)))


# -- at the station -----------------------------------------------------------------------------

def test_a_supervisors_first_sign_in_enrols_a_key_that_only_their_pin_opens(world: World) -> None:
    mei = signed_in_mei(world)
    assert mei.signer is not None and mei.signer.user_id == 2 and mei.signer.station_id == "WH1-01"
    [key] = keys(world)
    assert (key.user_id, key.method, key.public_key, key.confirmed_at) == (2, "pin", mei.signer.public_key, None)
    with world.uow() as uow:
        seal = uow.session.get(SealedKey, key.id).seal
        event = uow.session.scalars(select(OutboxRow).where(OutboxRow.kind == "approver_key")).one()
        actions = list(uow.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    raw = mei.signer._private.private_bytes_raw()  # noqa: SLF001 - what must not be in the file
    assert raw.hex() not in json.dumps(seal) and raw not in json.dumps(seal).encode()
    assert unseal(seal, b"1357", key.id, 2) is None  # another PIN opens nothing
    assert unseal(seal, MEI_PIN.encode(), key.id, 3) is None  # nor under another user's row
    assert unseal(seal, MEI_PIN.encode(), key.id, 2) is not None
    # The event carries the public half only; the sealed half is never sent.
    sent = [row["table"] for row in event.payload["rows"]]
    assert "approver_keys" in sent and "sealed_keys" not in sent
    assert "signing_key_enrolled" in actions
    # Signing in again opens the same key: nothing new is enrolled or sent.
    again = signed_in_mei(world)
    assert again.signer is not None and again.signer.key_id == key.id
    assert len(keys(world)) == 1


def test_a_new_pin_retires_the_key_and_the_next_sign_in_enrols_another(world: World) -> None:
    first = signed_in_mei(world)
    with world.uow() as uow:  # mei's key at another bench, as the feed brings it: not this station's to retire
        uow.session.add(Station(id="WH2-01", name="Bench 2", time_zone="UTC"))
        uow.session.flush()
        uow.session.add(ApproverKey(id=uuid.uuid4(), user_id=2, station_id="WH2-01", method="pin",
                                    public_key=new_signer(2, "WH2-01").public_key, enrolled_at=NOW))
        uow.commit()
    with world.uow() as uow:
        set_pin(uow, 2, "9753")
        sent = uow.session.scalars(select(OutboxRow).where(OutboxRow.kind == "approver_key")
                                   .order_by(OutboxRow.id.desc())).first()
    assert [r["values"]["station_id"] for r in sent.payload["rows"] if r["table"] == "approver_keys"] == ["WH1-01"]
    assert sent.payload["station_id"] == "WH1-01"
    old, other = sorted(keys(world), key=lambda k: k.station_id)
    assert old.retired_at is not None and other.retired_at is None
    with world.uow() as uow:
        assert uow.session.get(SealedKey, old.id) is None  # nothing can open it any more
        new = sign_in(uow, world.station_id, "mei", "9753", NOW)
    assert new.signer is not None and first.signer is not None and new.signer.key_id != first.signer.key_id
    mine = [k for k in keys(world) if k.station_id == "WH1-01"]
    assert [k.retired_at is None for k in mine] == [False, True]


def test_a_badge_has_a_key_of_its_own_and_a_clerk_gets_none(world: World) -> None:
    by_pin, by_badge = signed_in_mei(world), signed_in_mei(world, badge=True)
    assert by_pin.signer and by_badge.signer and by_pin.signer.key_id != by_badge.signer.key_id
    assert sorted(k.method for k in keys(world)) == ["badge", "pin"]
    with world.uow() as uow:
        set_pin(uow, 1, "1111")
    with world.uow() as uow:
        aiko = sign_in(uow, world.station_id, "aiko", "1111", NOW)
    assert aiko.signer is None and len(keys(world)) == 2


def test_a_verdict_is_signed_with_the_supervisors_key_over_what_it_says(world: World) -> None:
    case = pending_case(world)
    mei = signed_in_mei(world)
    with world.uow() as uow:
        result = review.approve(uow, world.ctx(mei), case, "serial matches the order")
    with world.uow() as uow:
        approval = uow.session.get(Approval, result.approval_id)
        signature = approval.signature
    assert signature["key"] == str(mei.signer.key_id)
    assert verifies(mei.signer.public_key, signature["signed"], signature["sig"])
    said = json.loads(signature["signed"])
    assert (said["approval"], said["decision"], said["supervisor"], said["verdict"], said["amount_minor"]) == (
        str(approval.id), str(case), 2, "approved", approval.amount_minor)
    assert said["settles"] == approval.settles
    # One changed digit and it no longer verifies.
    forged = signature["signed"].replace(f'"amount_minor":{approval.amount_minor}', '"amount_minor":1', 1)
    assert forged != signature["signed"] and not verifies(mei.signer.public_key, forged, signature["sig"])


def test_a_supervisor_named_without_their_pin_cannot_settle_at_the_station(world: World) -> None:
    case = pending_case(world)
    # A clerk's process that puts mei in the context (no sign-in, no key).
    impostor = Actor(2, "mei", "Mei", "supervisor")
    from console.context import StationContext

    ctx = StationContext(world.station_id, world.zone, world.policy, impostor, world.clock)
    with world.uow() as uow, pytest.raises(NotAllowed, match="own signature, which only their PIN or badge opens"):
        review.approve(uow, ctx, case, "looks fine")
    with world.uow() as uow, pytest.raises(NotAllowed):
        review.reject(uow, ctx, case, "looks wrong")
    assert world.ctx(impostor).actor.signer is not None  # (the test world's own stand-in key)
    with world.uow() as uow:
        assert uow.session.scalar(select(Decision.status).where(Decision.id == case)) == "pending_review"
        assert uow.session.scalars(select(Approval)).first() is None


# -- at central (PostgreSQL, each station its own login) ----------------------------------------

@pytest.fixture
def central(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    init_central(engine)
    with UnitOfWork.for_engine(engine) as uow:  # central's own users, as the station knows them
        uow.session.add_all([User(id=1, username="aiko", display_name="Aiko", role="clerk", password_hash="x"),
                             User(id=2, username="mei", display_name="Mei", role="supervisor", password_hash="x"),
                             User(id=3, username="sora", display_name="Sora", role="supervisor",
                                  password_hash="x")])
        uow.commit()
    yield engine
    engine.dispose()


def sync(world: World, as_station: Engine) -> None:
    report = push_once(world.engine, as_station, station_id=world.station_id)
    assert report.failed == 0, report.errors
    settle(as_station)  # the feed's horizon is the server's: another session's open transaction holds it back
    pull_once(world.engine, as_station)


def at_central(central: Engine, case: uuid.UUID) -> tuple[str, list[str | None]]:
    with central.connect() as conn:
        status = conn.execute(select(Decision.status).where(Decision.id == case)).scalar_one()
        reasons = list(conn.execute(select(Approval.refused_reason).where(Approval.decision_id == case)
                                    .order_by(Approval.decided_at)).scalars())
    return status, reasons


def at_station(world: World, case: uuid.UUID) -> str:
    with world.uow() as uow:
        return str(uow.session.scalar(select(Decision.status).where(Decision.id == case)))


pg = pytest.mark.postgres


@pg
def test_a_verdict_counts_at_central_only_once_central_confirmed_the_key(world: World, central: Engine,
                                                                         login: Any) -> None:
    as_wh1 = login("WH1-01")
    case = pending_case(world)
    mei = signed_in_mei(world)
    sync(world, as_wh1)  # the case, and mei's new key
    [waiting] = approver_keys(central)
    assert (waiting.username, waiting.station_id, waiting.method, waiting.state) == ("mei", "WH1-01", "pin", "waiting")
    with world.uow() as uow:  # mei is told before she settles anything
        note = review.review_case(uow, world.ctx(mei), case).signing_note
    assert note is not None and "waits for central's confirmation" in note and mei.signer.fingerprint in note

    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "serial matches")
    sync(world, as_wh1)
    status, reasons = at_central(central, case)
    assert status == "pending_review"
    fp = mei.signer.fingerprint
    assert reasons == [f"approval refused: mei's signing key from station WH1-01 (pin, fingerprint {fp}) is not "
                       "confirmed at central: a central admin confirms it with `returns-console central keys "
                       f"confirm mei --fingerprint {fp}`, then mei settles the case again"]
    assert at_station(world, case) == "pending_review"  # the station learns, and the case waits again

    assert mei.signer is not None and mei.signer.enrolled
    with pytest.raises(NotFound, match="No key of mei with fingerprint"):  # a wrong reading confirms nothing
        confirm_keys(central, "mei", "0000-0000-0000-0000-0000", confirmed_by="ops-anna")
    [confirmed] = confirm_keys(central, "mei", mei.signer.fingerprint.lower().replace("-", " "),
                               confirmed_by="ops-anna")
    assert (confirmed.state, confirmed.confirmed_by) == ("confirmed", "ops-anna")
    sync(world, as_wh1)  # the confirmation reaches the station with the pull
    with world.uow() as uow:
        assert review.review_case(uow, world.ctx(mei), case).signing_note is None
    world.clock.now += timedelta(minutes=1)
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "serial matches, checked again")
    sync(world, as_wh1)
    status, reasons = at_central(central, case)
    assert (status, reasons[-1]) == ("approved", None)
    assert at_station(world, case) == "approved"


@pytest.fixture
def mei_confirmed(world: World, central: Engine, login: Any) -> tuple[Actor, Engine, uuid.UUID]:
    """mei signed in at WH1-01, her key confirmed at central, a case waiting for her there."""
    as_wh1 = login("WH1-01")
    case = pending_case(world)
    mei = signed_in_mei(world)
    sync(world, as_wh1)
    confirm_keys(central, "mei", mei.signer.fingerprint, confirmed_by="test")
    return mei, as_wh1, case


def approval_event(world: World) -> tuple[OutboxRow, dict[str, Any]]:
    with world.uow() as uow:
        event = uow.session.scalars(select(OutboxRow).where(OutboxRow.kind == "approval", OutboxRow.sent_at.is_(None))
                                    ).one()
        row = next(r for r in event.payload["rows"] if r["table"] == "approvals")
    return event, row


def rewrite_approval(world: World, change: Any) -> None:
    """Edit the approval in the unsent outbox JSON (and the station's table), as someone with
    the file could."""
    event, _ = approval_event(world)
    payload = json.loads(json.dumps(event.payload))
    for row in payload["rows"]:
        if row["table"] == "approvals":
            change(row["values"])
    with world.engine.begin() as conn:
        conn.execute(update(OutboxRow).where(OutboxRow.id == event.id).values(payload=payload))


@pg
def test_an_approval_edited_after_signing_is_refused_and_flagged(world: World, central: Engine,
                                                                 mei_confirmed: Any) -> None:
    mei, as_wh1, case = mei_confirmed
    with world.uow() as uow:
        result = review.approve(uow, world.ctx(mei), case, "ok", amounts=None)
    paid = result.amount.minor

    def pay_more(values: dict[str, Any]) -> None:
        values["amount_minor"] = paid * 10
        values["settles"]["amount_minor"] = paid * 10

    rewrite_approval(world, pay_more)
    with world.engine.begin() as conn:  # and in the station's own table, for good measure
        conn.execute(update(Approval).where(Approval.id == result.approval_id).values(amount_minor=paid * 10))
    sync(world, as_wh1)
    status, reasons = at_central(central, case)
    assert (status, reasons) == ("pending_review", ["approval refused: what it says is not what mei signed"])
    with central.connect() as conn:
        assert conn.execute(select(SyncConflict.kind).where(SyncConflict.approval_id == result.approval_id)
                            ).scalar_one() == "approval_refused"
    assert at_station(world, case) == "pending_review"


@pg
def test_an_approval_with_its_signature_taken_out_is_refused(world: World, central: Engine,
                                                             mei_confirmed: Any) -> None:
    mei, as_wh1, case = mei_confirmed
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "ok")
    rewrite_approval(world, lambda values: values.update(signature=None))
    sync(world, as_wh1)
    assert at_central(central, case) == (
        "pending_review", ["approval refused: it carries no signature of mei, which only their PIN or badge can make"])


@pg
def test_a_key_the_station_made_up_signs_nothing(world: World, central: Engine, mei_confirmed: Any) -> None:
    mei, as_wh1, case = mei_confirmed
    # The clerk mints a key pair for mei without her PIN and signs with it.
    minted = new_signer(2, "WH1-01")
    with world.uow() as uow:
        review.approve(uow, world.ctx(Actor(2, "mei", "Mei", "supervisor", minted)), case, "ok")
    sync(world, as_wh1)
    assert at_central(central, case)[1] == ["approval refused: it is signed with a key central does not hold for mei"]

    # Signed by the minted key, but naming mei's confirmed key: the signature does not verify.
    def other_key(values: dict[str, Any]) -> None:
        assert mei.signer is not None
        values["signature"]["key"] = str(mei.signer.key_id)

    world.clock.now += timedelta(minutes=1)
    with world.uow() as uow:
        review.approve(uow, world.ctx(Actor(2, "mei", "Mei", "supervisor", minted)), case, "ok again")
    rewrite_approval(world, other_key)
    sync(world, as_wh1)
    assert at_central(central, case)[1][-1] == "approval refused: its signature does not verify with mei's key"

    # Garbage where the signature goes.
    world.clock.now += timedelta(minutes=1)
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "third time")
    rewrite_approval(world, lambda values: values["signature"].update(sig="not base64 at all!"))
    sync(world, as_wh1)
    assert at_central(central, case) == ("pending_review",
                                         [*at_central(central, case)[1][:-1],
                                          "approval refused: its signature of mei cannot be read"])


@pg
def test_a_station_cannot_confirm_its_own_keys(world: World, central: Engine, login: Any) -> None:
    as_wh1 = login("WH1-01")
    case = pending_case(world)
    mei = signed_in_mei(world)
    with world.uow() as uow:  # the enrolment, edited to say it is confirmed
        event = uow.session.scalars(select(OutboxRow).where(OutboxRow.kind == "approver_key")).one()
        payload = json.loads(json.dumps(event.payload))
        for row in payload["rows"]:
            if row["table"] == "approver_keys":
                row["values"].update(confirmed_at=NOW.isoformat(), confirmed_by="me, honestly")
        event.payload = payload
        uow.commit()
    sync(world, as_wh1)
    assert [k.state for k in approver_keys(central)] == ["waiting"]
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "ok")
    sync(world, as_wh1)
    assert at_central(central, case)[0] == "pending_review"
    # Nor may it write a key in another station's name.
    with central.begin() as conn:
        conn.execute(Station.__table__.insert().values(id="WH2-01", name="Bench 2", site="WH2", time_zone="UTC",
                                                       created_at=NOW))
    with as_wh1.begin() as conn, pytest.raises(Exception, match="may not write approver_keys of station WH2-01"):
        conn.execute(ApproverKey.__table__.insert().values(
            id=uuid.uuid4(), user_id=2, station_id="WH2-01", method="pin",
            public_key=new_signer(2, "WH2-01").public_key, enrolled_at=NOW))
    # Nor copy a key central holds (the feed serves them all) under an id of its own: one public key
    # has one holder, so the real one can still be confirmed by its fingerprint.
    with as_wh1.begin() as conn, pytest.raises(Exception, match="uq_approver_keys_public_key"):
        conn.execute(ApproverKey.__table__.insert().values(
            id=uuid.uuid4(), user_id=2, station_id="WH1-01", method="badge", public_key=mei.signer.public_key,
            enrolled_at=NOW))
    [waiting] = approver_keys(central)
    assert confirm_keys(central, "mei", mei.signer.fingerprint, confirmed_by="test")[0].key_id == waiting.key_id


@pg
def test_a_revoked_key_signs_nothing_even_what_was_queued_before(world: World, central: Engine,
                                                                 mei_confirmed: Any) -> None:
    mei, as_wh1, case = mei_confirmed
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "ok")  # queued while offline
    [revoked] = revoke_keys(central, "mei")  # her badge and PIN were seen by someone
    assert revoked.state == "revoked"
    sync(world, as_wh1)
    assert at_central(central, case) == (
        "pending_review", ["approval refused: mei's signing key from station WH1-01 was revoked at central"])


@pg
def test_an_approval_signed_for_another_station_is_refused(world: World, central: Engine,
                                                           mei_confirmed: Any) -> None:
    mei, as_wh1, case = mei_confirmed
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "ok")

    def resigned(values: dict[str, Any]) -> None:  # mei's own key, over a text that names WH2-01
        assert mei.signer is not None
        fields = json.loads(values["signature"]["signed"])
        values["signature"] = sign_approval(
            mei.signer, approval_id=uuid.UUID(values["id"]), decision_id=case, supervisor_id=2, station_id="WH2-01",
            verdict=values["verdict"], amount_minor=values["amount_minor"], currency=fields["currency"],
            decided_at=NOW.fromisoformat(fields["decided_at"]), settles=values["settles"], note=values["note"])

    rewrite_approval(world, resigned)
    sync(world, as_wh1)
    assert at_central(central, case)[1] == ["approval refused: what it says is not what mei signed"]


def test_the_cli_lists_confirms_and_revokes_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On a SQLite central (the demo's): the commands are the same; keys matter there only to
    a PostgreSQL central's door, but an admin manages them the same way."""
    from console.cli import main
    from db.push import ensure_central_schema

    url = str(tmp_path / "central.sqlite3")
    engine = make_engine(url)
    ensure_central_schema(engine)
    key = new_signer(2, "WH1-01")
    with UnitOfWork.for_engine(engine) as uow:
        uow.session.add_all([Station(id="WH1-01", name="Bench 1", time_zone="UTC"),
                             User(id=2, username="mei", display_name="Mei", role="supervisor", password_hash="x")])
        uow.session.flush()
        uow.session.add(ApproverKey(id=uuid.uuid4(), user_id=2, station_id="WH1-01", method="pin",
                                    public_key=key.public_key, enrolled_at=NOW))
        uow.commit()
    engine.dispose()
    assert main(["central", "keys", "list", "--waiting", "--url", url]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(k["user"], k["station"], k["state"], k["fingerprint"]) for k in listed] == [
        ("mei", "WH1-01", "waiting", key.fingerprint)]
    assert main(["central", "keys", "confirm", "mei", "--fingerprint", key.fingerprint, "--by", "ops-anna",
                 "--url", url]) == 0
    assert "confirmed: verdicts signed with it count" in capsys.readouterr().out
    assert main(["central", "keys", "confirm", "mei", "--fingerprint", key.fingerprint, "--url", url]) == 1
    assert "No key of mei with fingerprint" in capsys.readouterr().err
    assert main(["central", "keys", "revoke", "mei", "--station", "WH1-01", "--url", url]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["central", "keys", "list", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "revoked"


@pg
def test_printouts_of_a_verdict_central_refuses_are_void_and_the_next_verdict_prints_again(
        world: World, central: Engine, login: Any, tmp_path: Path) -> None:
    from console.review import VOIDED_ACTION, print_settled_reviews, void_refused_printouts
    from db.models import PrintJob
    from printing.settings import default_settings

    as_wh1 = login("WH1-01")
    case = pending_case(world)
    mei = signed_in_mei(world)
    sync(world, as_wh1)  # mei's key reaches central, and waits there
    printers = default_settings(tmp_path)
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "serial matches")
    with world.uow() as uow:  # the receiving station prints at once (the printer is down: jobs wait)
        queued = print_settled_reviews(uow, world.ctx(AIKO), printers)
    assert sorted(q.document for q in queued) == ["disposition-label", "refund-receipt"]
    sync(world, as_wh1)  # central refuses: mei's key is not confirmed
    assert at_station(world, case) == "pending_review"
    world.clock.now += timedelta(minutes=5)
    worker = world.ctx(Actor(0, "sync", "sync worker", "clerk"))  # as the sync worker runs it: nobody
    with world.uow() as uow:
        [voided] = void_refused_printouts(uow, worker)
        assert void_refused_printouts(uow, worker) == []  # once per refusal
        statuses = {job.status for job in uow.session.scalars(select(PrintJob))}
        mark = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == VOIDED_ACTION)).one()
    assert voided.cancelled == 2 and statuses == {"cancelled"}
    assert sorted(voided.documents) == ["disposition-label", "refund-receipt"]
    assert voided.reason.startswith("approval refused: mei's signing key from station WH1-01 (pin, fingerprint")
    assert mark.details["reason"] == voided.reason
    assert len(voided.back_to_quarantine) == 1  # the unit the label sent to restock waits again

    confirm_keys(central, "mei", mei.signer.fingerprint, confirmed_by="test")
    world.clock.now += timedelta(minutes=5)
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "serial matches, key confirmed")
    with world.uow() as uow:  # the new verdict prints again
        again = print_settled_reviews(uow, world.ctx(AIKO), printers)
    assert sorted(q.document for q in again) == ["disposition-label", "refund-receipt"]
    sync(world, as_wh1)
    assert at_central(central, case)[0] == "approved"
    with world.uow() as uow:
        assert void_refused_printouts(uow, world.ctx(AIKO)) == []


@pg
def test_a_key_retired_by_a_new_pin_signs_nothing_at_central(world: World, central: Engine,
                                                             mei_confirmed: Any) -> None:
    mei, as_wh1, case = mei_confirmed
    with world.uow() as uow:  # an admin gives mei a new PIN; the old key's seal is gone
        set_pin(uow, 2, "97531")
    sync(world, as_wh1)
    assert [k.state for k in approver_keys(central)] == ["retired"]
    # Someone who kept the old key (a copy of the file from before) signs with it.
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "ok")
    sync(world, as_wh1)
    assert at_central(central, case)[1] == [
        "approval refused: mei's signing key from station WH1-01 was replaced (a new PIN or badge) before this "
        "verdict reached central"]
    # Nor can a station bring a retired key back, or change anything else of it.
    with as_wh1.begin() as conn:
        conn.execute(update(ApproverKey).values(retired_at=None, confirmed_at=NOW, revoked_at=None,
                                                public_key=new_signer(2, "WH1-01").public_key))
    [row] = approver_keys(central)
    assert (row.state, row.public_key) == ("retired", mei.signer.public_key)


@pg
def test_a_verdict_refused_for_its_signature_changes_nothing_else_of_the_case(world: World, central: Engine,
                                                                               login: Any) -> None:
    from db.models import ReturnAuthorization, ReturnItem

    as_wh1 = login("WH1-01")
    case = pending_case(world)
    mei = signed_in_mei(world)
    sync(world, as_wh1)  # her key waits at central
    with central.connect() as conn:
        before = (conn.execute(select(ReturnItem.acceptance_status)).scalars().all(),
                  conn.execute(select(ReturnAuthorization.status)).scalars().all())
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "ok")
    with world.uow() as uow:  # at the station the verdict closed the RMA and accepted the unit
        assert uow.session.scalars(select(ReturnAuthorization.status)).all() == ["closed"]
    sync(world, as_wh1)
    with central.connect() as conn:
        after = (conn.execute(select(ReturnItem.acceptance_status)).scalars().all(),
                 conn.execute(select(ReturnAuthorization.status)).scalars().all())
        [flag] = conn.execute(select(SyncConflict.kind, SyncConflict.reason)).all()
    assert after == before and after[1] != ["closed"]
    assert flag.kind == "approval_refused" and "is not confirmed at central" in flag.reason


def test_a_damaged_seal_never_stops_a_sign_in(world: World) -> None:
    first = signed_in_mei(world)
    for damage in ({"t": 0}, {"m": 8}, {"salt": "AA=="}, {"box": 5}):
        with world.engine.begin() as conn:
            sealed = conn.execute(select(SealedKey.key_id, SealedKey.seal)).first()
            conn.execute(update(SealedKey).where(SealedKey.key_id == sealed.key_id)
                         .values(seal={**sealed.seal, **damage}))
        again = signed_in_mei(world)  # the damaged key is retired and a new one enrolled
        assert again.signer is not None and again.signer.enrolled and again.signer.key_id != first.signer.key_id
        first = again
    with world.engine.begin() as conn:
        conn.execute(update(SealedKey).values(seal=["not", "a", "seal"]))
    assert signed_in_mei(world).signer is not None


@pg
def test_a_signed_text_without_its_time_or_version_is_refused(world: World, central: Engine,
                                                              mei_confirmed: Any) -> None:
    mei, as_wh1, case = mei_confirmed
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "ok")

    def drop(field: str) -> Any:
        def change(values: dict[str, Any]) -> None:
            fields = json.loads(values["signature"]["signed"])
            fields.pop(field)
            text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
            values["signature"] = {**values["signature"], "signed": text, "sig": mei.signer.sign(text)}
        return change

    rewrite_approval(world, drop("decided_at"))
    sync(world, as_wh1)
    assert at_central(central, case)[1] == ["approval refused: what it says is not what mei signed"]
    world.clock.now += timedelta(minutes=1)
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "ok again")
    rewrite_approval(world, drop("v"))
    sync(world, as_wh1)
    assert at_central(central, case)[1][-1] == "approval refused: what it says is not what mei signed"
    # A character PostgreSQL cannot hold where the key goes: refused and flagged, the sync goes on.
    world.clock.now += timedelta(minutes=1)
    with world.uow() as uow:
        review.approve(uow, world.ctx(mei), case, "third")
    rewrite_approval(world, lambda values: values["signature"].update(key="\u0000"))
    sync(world, as_wh1)
    assert at_central(central, case)[1][-1] == "approval refused: its signature of the approver cannot be read"


@pg
def test_a_signed_rejection_and_a_signed_partial_refund_count_at_central(world: World, central: Engine,
                                                                        mei_confirmed: Any) -> None:
    mei, as_wh1, case = mei_confirmed
    with world.uow() as uow:
        item = uow.session.scalars(select(Approval.id)).first()
        assert item is None
        from db.models import DecisionLine

        line = uow.session.scalars(select(DecisionLine).where(DecisionLine.decision_id == case)).one()
        review.approve(uow, world.ctx(mei), case, "scratched: less", amounts={line.return_item_id: 50000})
    sync(world, as_wh1)
    with central.connect() as conn:
        status, amount = conn.execute(select(Decision.status, Decision.amount_minor)
                                      .where(Decision.id == case)).one()
    assert (status, amount, at_central(central, case)[1]) == ("approved", 50000, [None])
    other = pending_case(world)
    world.clock.now += timedelta(minutes=1)
    with world.uow() as uow:
        review.reject(uow, world.ctx(mei), other, "not the item we sold")
    sync(world, as_wh1)
    assert at_central(central, other) == ("rejected", [None])


def test_printouts_of_a_verdict_that_lost_to_another_stations_are_void_and_the_standing_one_prints(
        world: World, tmp_path: Path) -> None:
    from console.review import print_settled_reviews, void_refused_printouts
    from printing.settings import default_settings

    case = pending_case(world)
    mei = signed_in_mei(world)
    printers = default_settings(tmp_path)
    with world.uow() as uow:
        mine = review.approve(uow, world.ctx(mei), case, "ok").approval_id
    with world.uow() as uow:
        assert len(print_settled_reviews(uow, world.ctx(AIKO), printers)) == 2
    # What the pull brings when sora's verdict, given at another station, reached central first:
    # mei's refused, sora's standing, the case approved all along.
    world.clock.now += timedelta(minutes=5)
    with world.engine.begin() as conn:
        conn.execute(update(Approval).where(Approval.id == mine).values(
            refused_reason="approval refused: sora had already settled this case"))
        conn.execute(Approval.__table__.insert().values(
            id=uuid.uuid4(), decision_id=case, supervisor_id=3, verdict="approved", amount_minor=89900, note="fine",
            decided_at=NOW - timedelta(minutes=1)))
    worker = world.ctx(Actor(0, "sync", "sync worker", "clerk"))
    with world.uow() as uow:
        [voided] = void_refused_printouts(uow, worker)
    assert voided.reason == "approval refused: sora had already settled this case"
    with world.uow() as uow:
        again = print_settled_reviews(uow, worker, printers)
    assert sorted(q.document for q in again) == ["disposition-label", "refund-receipt"]
