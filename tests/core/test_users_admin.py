"""Managing users at a station, on real SQLite files: who may, what is audited, what is refused,
the lock and its lifting with a fake clock, and the `returns-console users` commands."""
from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from console import cli
from console.audit_verify import verify_chain
from console.context import Actor
from console.errors import InvalidInput, NotAllowed, NotFound, StateConflict
from console.signin import LOCK_AFTER_FAILURES, LOCK_FOR, AccountLocked, set_pin, sign_in, sign_in_badge
from console.users_admin import (
    add_user,
    change_role,
    disable_user,
    enable_user,
    list_users,
    remove_badge,
    reset_pin,
    set_badge,
)
from db.models import AuditEvent, OutboxRow, User
from tests.tools.factories import NOW, World, make_world

STATION = "WH1-01"
ADMIN = Actor(3, "kenji", "Kenji", "admin")
CLERK = Actor(1, "aiko", "Aiko", "clerk")
SUPERVISOR = Actor(2, "mei", "Mei", "supervisor")
ADMIN_PIN = "7531"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    with w.uow() as uow:
        uow.session.add(User(id=3, username="kenji", display_name="Kenji", role="admin", password_hash="x"))
        uow.commit()
    with w.uow() as uow:
        set_pin(uow, 3, ADMIN_PIN)
    yield w
    w.engine.dispose()


def _user(world: World, username: str) -> User | None:
    with world.uow() as uow:
        return uow.session.scalars(select(User).where(User.username == username)).first()


def _actions(world: World) -> list[tuple[str, int | None, str]]:
    with world.uow() as uow:
        return [(e.action, e.user_id, e.entity_id) for e in uow.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]


def _pin(world: World, username: str, pin: str, at: timedelta = timedelta()) -> Actor:
    with world.uow() as uow:
        return sign_in(uow, STATION, username, pin, world.clock.now + at)


def test_an_admin_adds_a_user_who_signs_in_with_pin_and_badge(world: World) -> None:
    with world.uow() as uow:
        new_id = add_user(uow, world.ctx(ADMIN), " Ben.Okafor ", "  Ben   Okafor ", "clerk", "2468",
                          badge="BADGE-BEN-0042")
    first, last = world.ctx().id_range()
    assert first <= new_id <= last, "ids come from the station's own block, as for RMAs"
    user = _user(world, "ben.okafor")
    assert user is not None and user.id == new_id
    assert (user.display_name, user.role, user.active) == ("Ben Okafor", "clerk", True)
    assert user.password_hash.startswith("$argon2id$") and "2468" not in user.password_hash
    assert _pin(world, "ben.okafor", "2468").user_id == new_id
    with world.uow() as uow:
        assert sign_in_badge(uow, STATION, "badge-ben-0042", NOW).user_id == new_id
    assert [a for a in _actions(world) if a[2] == str(new_id)][:3] == [
        ("user_added", 3, str(new_id)), ("badge_set", 3, str(new_id)), ("pin_set", 3, str(new_id))]
    with world.uow() as uow:
        assert verify_chain(uow.session, STATION) is None
        events = list(uow.session.scalars(select(OutboxRow).where(OutboxRow.kind == "user_added")))
    assert len(events) == 1 and events[0].aggregate_id == str(new_id)
    sent = [r["values"] for r in events[0].payload["rows"] if r["table"] == "users" and r["values"]["id"] == new_id]
    assert sent and sent[0]["password_hash"] == "!" and sent[0]["badge_hash"] is None, "no credential leaves"


def test_a_second_station_user_gets_the_next_id_in_the_block(world: World) -> None:
    with world.uow() as uow:
        a = add_user(uow, world.ctx(ADMIN), "ann", "Ann", "clerk", "1111")
    with world.uow() as uow:
        b = add_user(uow, world.ctx(ADMIN), "bo", "Bo", "associate", "2222")
    assert b == a + 1


@pytest.mark.parametrize("username, name, role, pin, badge, message", [
    ("B", "Ben", "clerk", "2468", None, "user name"),
    ("ben okafor", "Ben", "clerk", "2468", None, "user name"),
    ("ben", "   ", "clerk", "2468", None, "person's name"),
    ("ben", "Ben", "boss", "2468", None, "Unknown role"),
    ("ben", "Ben", "clerk", "12", None, "at least 4"),
    ("ben", "Ben", "clerk", "2468", "B-1", "at least 8"),
    ("AIKO", "Aiko again", "clerk", "2468", None, "taken"),
])
def test_bad_input_is_refused_and_leaves_nothing(world: World, username: str, name: str, role: str, pin: str,
                                                 badge: str | None, message: str) -> None:
    before = _actions(world)
    with world.uow() as uow, pytest.raises((InvalidInput, StateConflict), match=message):
        add_user(uow, world.ctx(ADMIN), username, name, role, pin, badge=badge)
    with world.uow() as uow:
        assert uow.session.scalar(select(User.id).where(User.username == "ben")) is None
        assert uow.session.scalars(select(OutboxRow)).first() is None
    assert _actions(world) == before


@pytest.mark.parametrize("actor", [CLERK, SUPERVISOR, Actor(9, "sam", "Sam", "associate")])
def test_only_an_admin_manages_users(world: World, actor: Actor) -> None:
    steps = [
        lambda uow: add_user(uow, world.ctx(actor), "ben", "Ben", "clerk", "2468"),
        lambda uow: reset_pin(uow, world.ctx(actor), 1, "9999"),
        lambda uow: set_badge(uow, world.ctx(actor), 1, "BADGE-AIKO-01"),
        lambda uow: remove_badge(uow, world.ctx(actor), 1),
        lambda uow: disable_user(uow, world.ctx(actor), 1),
        lambda uow: enable_user(uow, world.ctx(actor), 1),
        lambda uow: change_role(uow, world.ctx(actor), 1, "admin"),
        lambda uow: list_users(uow.session, world.ctx(actor)),
    ]
    for step in steps:
        with world.uow() as uow, pytest.raises(NotAllowed, match="admin may manage users"):
            step(uow)
    assert _user(world, "ben") is None
    user = _user(world, "aiko")
    assert user is not None and (user.role, user.active, user.badge_hash) == ("clerk", True, None)
    assert _actions(world) == []


def test_ten_wrong_pins_lock_then_time_or_an_admin_unlocks(world: World) -> None:
    with world.uow() as uow:
        set_pin(uow, 1, "4321")
    for n in range(LOCK_AFTER_FAILURES):
        with pytest.raises((InvalidInput, AccountLocked)):
            _pin(world, "aiko", f"000{n}", timedelta(seconds=n))
    with pytest.raises(AccountLocked):  # the right PIN, inside the 30 minutes
        _pin(world, "aiko", "4321", timedelta(minutes=29))
    world.clock.now = NOW + LOCK_FOR + timedelta(seconds=10)  # the fake clock moves on: the lock ran out
    assert _pin(world, "aiko", "4321").user_id == 1

    for n in range(LOCK_AFTER_FAILURES):  # locked again ...
        with pytest.raises((InvalidInput, AccountLocked)):
            _pin(world, "aiko", f"111{n}", timedelta(minutes=1, seconds=n))
    with pytest.raises(AccountLocked):
        _pin(world, "aiko", "4321", timedelta(minutes=2))
    with world.uow() as uow:  # ... and an admin lets her back in before the 30 minutes are up
        reset_pin(uow, world.ctx(ADMIN), 1, "8642")
    assert _pin(world, "aiko", "8642", timedelta(minutes=3)).user_id == 1
    assert ("pin_set", 3, "1") in _actions(world)


def test_a_disabled_user_cannot_sign_in_until_enabled(world: World) -> None:
    with world.uow() as uow:
        set_pin(uow, 1, "4321")
    with world.uow() as uow:
        disable_user(uow, world.ctx(ADMIN), 1)
    with pytest.raises(InvalidInput, match="User name or PIN is wrong"):
        _pin(world, "aiko", "4321")
    with world.uow() as uow, pytest.raises(StateConflict, match="disabled already"):
        disable_user(uow, world.ctx(ADMIN), 1)
    with world.uow() as uow:
        enable_user(uow, world.ctx(ADMIN), 1)
    assert _pin(world, "aiko", "4321").user_id == 1
    actions = _actions(world)
    assert ("user_disabled", 3, "1") in actions and ("user_enabled", 3, "1") in actions


def test_the_last_active_admin_stays(world: World) -> None:
    for step, what in ((lambda uow: disable_user(uow, world.ctx(ADMIN), 3), "disable"),
                       (lambda uow: change_role(uow, world.ctx(ADMIN), 3, "supervisor"), "make a supervisor")):
        with world.uow() as uow, pytest.raises(StateConflict, match=f"last active admin.*then {what} Kenji"):
            step(uow)
    with world.uow() as uow:
        change_role(uow, world.ctx(ADMIN), 2, "admin")  # Mei becomes an admin too ...
    with world.uow() as uow:
        change_role(uow, world.ctx(ADMIN), 3, "supervisor")  # ... so Kenji may step down
    mei = Actor(2, "mei", "Mei", "admin")
    with world.uow() as uow, pytest.raises(StateConflict, match="last active admin"):
        disable_user(uow, world.ctx(mei), 2)
    with world.uow() as uow:
        details = [e.details for e in uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "role_changed"))]
    assert details == [{"from": "supervisor", "to": "admin"}, {"from": "admin", "to": "supervisor"}]


def test_badges_are_set_and_taken_away(world: World) -> None:
    with world.uow() as uow:
        set_badge(uow, world.ctx(ADMIN), 1, "BADGE-AIKO-0001")
    with world.uow() as uow:
        assert sign_in_badge(uow, STATION, "BADGE-AIKO-0001", NOW).user_id == 1
    with world.uow() as uow, pytest.raises(StateConflict, match="already belongs to Aiko"):
        set_badge(uow, world.ctx(ADMIN), 2, "BADGE-AIKO-0001")
    with world.uow() as uow:
        remove_badge(uow, world.ctx(ADMIN), 1)
    with world.uow() as uow, pytest.raises(InvalidInput, match="badge is not known"):
        sign_in_badge(uow, STATION, "BADGE-AIKO-0001", NOW)
    with world.uow() as uow, pytest.raises(NotFound):
        set_badge(uow, world.ctx(ADMIN), 99, "BADGE-NOBODY-01")


def test_the_list_shows_state_and_never_a_hash(world: World) -> None:
    with world.uow() as uow:
        set_badge(uow, world.ctx(ADMIN), 1, "BADGE-AIKO-0001")
    with world.uow() as uow:
        disable_user(uow, world.ctx(ADMIN), 2)
    with world.uow() as uow:
        rows = list_users(uow.session, world.ctx(ADMIN))
    assert [(r.username, r.active, r.has_badge) for r in rows] == [
        ("aiko", True, True), ("kenji", True, False), ("mei", False, False)]
    assert "argon2" not in json.dumps([r.to_dict() for r in rows])


# -- the command line -------------------------------------------------------------------------------

def _cli(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user: str,
         stdin: str, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    path = world.engine.url.database
    assert path is not None
    code = cli.main(["--station", path, "--user", user, "users", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_users_commands_act_as_an_admin_who_gives_their_pin(world: World, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(world, monkeypatch, capsys, "kenji", f"{ADMIN_PIN}\n5555\n", "add", "ben",
                          "--name", "Ben Okafor", "--role", "associate")
    assert (code, err) == (0, "")
    assert json.loads(out)["action"] == "added"
    assert _pin(world, "ben", "5555").role == "associate"

    code, out, err = _cli(world, monkeypatch, capsys, "kenji", f"{ADMIN_PIN}\n", "role", "ben", "supervisor")
    assert code == 0 and _user(world, "ben").role == "supervisor"  # type: ignore[union-attr]
    code, out, _ = _cli(world, monkeypatch, capsys, "kenji", f"{ADMIN_PIN}\n", "disable", "ben")
    assert code == 0 and json.loads(out)["action"] == "disabled"
    code, out, _ = _cli(world, monkeypatch, capsys, "kenji", f"{ADMIN_PIN}\n", "list")
    listed = {row["username"]: row for row in map(json.loads, out.splitlines())}
    assert listed["ben"]["active"] is False and listed["ben"]["role"] == "supervisor"
    code, _, _ = _cli(world, monkeypatch, capsys, "kenji", f"{ADMIN_PIN}\nBADGE-KENJI-77\n", "set-badge", "kenji")
    assert code == 0
    with world.uow() as uow:
        assert sign_in_badge(uow, STATION, "BADGE-KENJI-77", NOW).user_id == 3


def test_users_commands_refuse_a_wrong_pin_a_clerk_and_an_unknown_user(
        world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(world, monkeypatch, capsys, "kenji", "0000\n5555\n", "reset-pin", "aiko")
    assert code == 1 and "User name or PIN is wrong" in err
    with world.uow() as uow:
        set_pin(uow, 1, "4321")
    code, _, err = _cli(world, monkeypatch, capsys, "aiko", "4321\n5555\n", "reset-pin", "mei")
    assert code == 1 and "admin may manage users" in err
    code, _, err = _cli(world, monkeypatch, capsys, "kenji", f"{ADMIN_PIN}\n", "disable", "ghost")
    assert code == 1 and "No user 'ghost'" in err
    code, _, err = _cli(world, monkeypatch, capsys, "kenji", f"{ADMIN_PIN}\n", "reset-pin", "aiko")
    assert code == 1 and "nothing on standard input" in err
    assert _pin(world, "aiko", "4321").user_id == 1, "no PIN was changed"


# -- a user added here, at central ---------------------------------------------------------------------

def test_a_user_added_here_reaches_central_unconfirmed_until_an_admin_confirms(
        world: World, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from console.central_admin import confirm_user
    from console.cli import main
    from db.central import init_central
    from db.engine import make_engine
    from db.push import push_once

    with world.uow() as uow:
        new_id = add_user(uow, world.ctx(ADMIN), "ben", "Ben Okafor", "supervisor", "2468", badge="BADGE-BEN-0042")
    central = make_engine(pg_url)
    try:
        init_central(central)
        report = push_once(world.engine, central)
        assert (report.pushed, report.failed, report.pending_after) == (1, 0, 0), report.errors
        with central.connect() as conn:
            row = conn.execute(select(User.id, User.role, User.created_from_station, User.password_hash,
                                      User.badge_hash).where(User.username == "ben")).one()
        assert tuple(row) == (new_id, "supervisor", STATION, "!", None), "a copy, with no credentials"
        capsys.readouterr()
        assert main(["central", "confirm-user", " BEN ", "--url", pg_url]) == 0
        assert capsys.readouterr().out.startswith(f"ben (supervisor, added at {STATION}) is confirmed at central")
        with central.connect() as conn:
            assert conn.execute(select(User.created_from_station).where(User.id == new_id)).scalar() is None
        with pytest.raises(StateConflict, match="confirmed at central already"):
            confirm_user(central, "ben")
        with pytest.raises(NotFound, match="Central knows no user 'ghost'"):
            confirm_user(central, "ghost")
    finally:
        central.dispose()


def test_a_disable_reaches_central_from_a_confirmed_admin_and_promotions_wait_for_central(
        world: World, pg_url: str) -> None:
    from console.central_admin import confirm_user
    from console.review import four_eyes_problem
    from db.central import init_central
    from db.engine import make_engine
    from db.models import Decision
    from db.push import push_once
    from console.users_admin import change_role, disable_user, enable_user

    with world.uow() as uow:
        ben = add_user(uow, world.ctx(ADMIN), "ben", "Ben Okafor", "clerk", "2468")
    central = make_engine(pg_url)
    try:
        init_central(central)
        with world.uow() as uow:
            disable_user(uow, world.ctx(ADMIN), ben)
        assert push_once(world.engine, central).failed == 0

        def active_at_central() -> bool:
            with central.connect() as conn:
                return conn.execute(select(User.active).where(User.id == ben)).scalar_one()

        assert active_at_central(), "kenji is known to central only from this station: not obeyed"
        confirm_user(central, "kenji")
        with world.uow() as uow:
            enable_user(uow, world.ctx(ADMIN), ben)
        with world.uow() as uow:
            disable_user(uow, world.ctx(ADMIN), ben)
        assert push_once(world.engine, central).failed == 0
        assert not active_at_central(), "a confirmed admin's disable stops ben everywhere"

        # Made a supervisor here: this station's word only, until central confirms.
        with world.uow() as uow:
            enable_user(uow, world.ctx(ADMIN), ben)
        with world.uow() as uow:
            change_role(uow, world.ctx(ADMIN), ben, "supervisor")
        with world.uow() as uow:
            assert uow.session.get(User, ben).created_from_station == STATION
            decision = Decision(decided_by_id=1)
            problem = four_eyes_problem(uow.session, world.ctx(Actor(ben, "ben", "Ben Okafor", "supervisor")),
                                        decision)
        assert problem is not None and "central confirm-user ben" in problem
    finally:
        central.dispose()
