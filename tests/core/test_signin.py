"""Signing in at a station, on real SQLite files: PINs, badges, the lockout and the audit trail."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.low_level import hash_secret
from sqlalchemy import select

from console.demo import data as demo
from console.audit_verify import verify_chain
from console.context import Actor
from console.errors import InvalidInput, NotFound, StateConflict
from console.signin import (
    LOCK_AFTER_FAILURES,
    LOCK_FOR,
    UNKNOWN_BADGE,
    WRONG_PIN,
    AccountLocked,
    badge_hash,
    password_hasher,
    set_badge,
    set_pin,
    sign_in,
    sign_in_badge,
    sign_out,
)
from db.engine import make_engine
from db.models import AuditEvent, User
from db.uow import UnitOfWork
from tests.tools.factories import NOW, World, make_world

STATION = "WH1-01"
PIN = "2468"
BADGE = "BADGE-7Q4X-9K2M"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    with w.uow() as uow:
        uow.session.add(User(id=3, username="ben", display_name="Ben Okafor", role="clerk", password_hash="x",
                             active=False))
        uow.commit()
    for user_id in (1, 3):
        with w.uow() as uow:
            set_pin(uow, user_id, PIN)
    yield w
    w.engine.dispose()


def _user(world: World, user_id: int) -> User:
    with world.uow() as uow:
        user = uow.session.get(User, user_id)
        assert user is not None
        return user


def _events(world: World) -> list[AuditEvent]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def _pin(world: World, username: str, secret: str, at: timedelta = timedelta()) -> Actor:
    with world.uow() as uow:
        return sign_in(uow, STATION, username, secret, NOW + at)


def _lock(world: World, username: str = "aiko") -> timedelta:
    """Ten wrong PINs, a second apart; returns when the tenth was typed."""
    for n in range(LOCK_AFTER_FAILURES):
        with pytest.raises((InvalidInput, AccountLocked)):
            _pin(world, username, f"wrong{n}", timedelta(seconds=n))
    return timedelta(seconds=LOCK_AFTER_FAILURES - 1)


def _badge(world: World, code: str, at: timedelta = timedelta()) -> Actor:
    with world.uow() as uow:
        return sign_in_badge(uow, STATION, code, NOW + at)


# --- PIN ------------------------------------------------------------------------------------------
def test_the_right_pin_signs_in_and_is_audited(world: World) -> None:
    actor = _pin(world, " aiko ", PIN)
    assert actor == Actor(1, "aiko", "Aiko", "clerk")
    last = _events(world)[-1]
    assert (last.action, last.entity, last.entity_id, last.user_id) == ("signed_in", "user", "1", 1)
    assert last.details == {"method": "pin"} and last.occurred_at == NOW
    with world.uow() as uow:
        assert verify_chain(uow.session, STATION) is None


def test_user_names_are_not_case_sensitive(world: World) -> None:
    assert _pin(world, "AIKO", PIN).user_id == 1


def test_wrong_pin_unknown_user_and_disabled_user_get_the_same_answer(world: World) -> None:
    answers = []
    for username, secret in (("aiko", "0000"), ("nobody", PIN), ("ben", PIN)):  # ben is disabled
        with pytest.raises(InvalidInput) as refused:
            _pin(world, username, secret)
        assert not isinstance(refused.value, AccountLocked)
        answers.append(refused.value.message)
    assert answers == [WRONG_PIN] * 3
    assert WRONG_PIN == "User name or PIN is wrong: try again, or scan your badge"
    failed = [e for e in _events(world) if e.action == "sign_in_failed"]
    assert [(e.entity_id, e.details["reason"]) for e in failed] == [
        ("1", "wrong_pin"), ("unknown", "unknown_user"), ("3", "disabled")]
    assert all(e.user_id is None for e in failed), "nobody was signed in"
    assert failed[1].details == {"method": "pin", "reason": "unknown_user", "typed": {"characters": 6, "kind": "text"}}
    assert _user(world, 1).failed_attempts == 1
    assert _user(world, 3).failed_attempts == 0


def test_a_pin_typed_into_the_user_name_field_is_never_written_down(world: World) -> None:
    import json

    from db.models import OutboxRow

    with pytest.raises(InvalidInput):
        _pin(world, "739153", "739153")  # the PIN in both fields, Enter pressed too early
    failed = [e for e in _events(world) if e.action == "sign_in_failed"][-1]
    assert failed.details["typed"] == {"characters": 6, "kind": "digits"}
    with world.engine.connect() as conn:
        carried = [json.dumps(p) for p in conn.execute(select(OutboxRow.payload)).scalars()]
    assert carried and not any("739153" in text for text in carried)  # nor in what goes to central
    assert "739153" not in json.dumps(failed.details)


def test_ten_wrong_pins_lock_the_account_for_thirty_minutes(world: World) -> None:
    for n in range(1, LOCK_AFTER_FAILURES):
        with pytest.raises(InvalidInput, match="User name or PIN is wrong"):
            _pin(world, "aiko", f"wrong{n}", timedelta(seconds=n))
    tenth = timedelta(seconds=LOCK_AFTER_FAILURES)
    with pytest.raises(AccountLocked) as locked:
        _pin(world, "aiko", "wrong10", tenth)
    until = NOW + tenth + timedelta(minutes=30)
    assert LOCK_FOR == timedelta(minutes=30) and LOCK_AFTER_FAILURES == 10
    assert locked.value.locked_until == until
    assert "locked" in locked.value.message and until.strftime("%H:%M") in locked.value.message
    assert _user(world, 1).locked_until == until

    # The 11th attempt, with the right PIN, is refused until the lock has run out.
    for at in (tenth + timedelta(seconds=1), tenth + timedelta(minutes=29, seconds=59)):
        with pytest.raises(AccountLocked) as again:
            _pin(world, "aiko", PIN, at)
        assert again.value.locked_until == until
    assert _pin(world, "aiko", PIN, tenth + LOCK_FOR).user_id == 1
    user = _user(world, 1)
    assert (user.failed_attempts, user.locked_until) == (0, None)

    actions = [(e.action, e.details.get("reason")) for e in _events(world)]
    assert actions.count(("user_locked", None)) == 1
    assert actions.count(("sign_in_failed", "locked")) == 2
    assert actions[-1] == ("signed_in", None)


def test_a_lock_that_ran_out_gives_ten_fresh_attempts(world: World) -> None:
    after = _lock(world) + LOCK_FOR
    with pytest.raises(InvalidInput) as refused:
        _pin(world, "aiko", "nope", after)
    assert not isinstance(refused.value, AccountLocked)
    assert _user(world, 1).failed_attempts == 1


def test_a_success_resets_the_counter(world: World) -> None:
    for _ in range(LOCK_AFTER_FAILURES - 1):
        with pytest.raises(InvalidInput):
            _pin(world, "aiko", "1111")
    assert _user(world, 1).failed_attempts == LOCK_AFTER_FAILURES - 1
    _pin(world, "aiko", PIN)
    assert _user(world, 1).failed_attempts == 0
    for _ in range(LOCK_AFTER_FAILURES - 1):  # nine more: still not locked
        with pytest.raises(InvalidInput) as refused:
            _pin(world, "aiko", "1111")
        assert not isinstance(refused.value, AccountLocked)
    assert _user(world, 1).locked_until is None


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(world: World) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    with world.uow() as uow:
        user = uow.session.get(User, 1)
        assert user is not None
        user.password_hash = weak.hash("5791")
        uow.commit()
    _pin(world, "aiko", "5791")
    stored = _user(world, 1).password_hash
    params = extract_parameters(stored)
    assert (params.memory_cost, params.time_cost, params.parallelism) == (64 * 1024, 3, 4)
    assert password_hasher().verify(stored, "5791")
    assert not password_hasher().check_needs_rehash(stored)


def test_the_hasher_is_argon2id_at_least_at_owasp_minimum() -> None:
    hasher = password_hasher()
    assert hasher.type is Type.ID
    assert hasher.memory_cost >= 19 * 1024 and hasher.time_cost >= 2 and hasher.parallelism >= 1


def test_set_pin_refuses_short_pins_and_lifts_a_lock(world: World) -> None:
    for short in ("", "123", "    "):
        with world.uow() as uow, pytest.raises(InvalidInput, match="at least 4"):
            set_pin(uow, 1, short)
    with world.uow() as uow, pytest.raises(NotFound):
        set_pin(uow, 99, "9999")
    _lock(world)
    with world.uow() as uow:
        set_pin(uow, 1, "8642", ctx=world.ctx(Actor(2, "mei", "Mei", "supervisor")))
    assert _pin(world, "aiko", "8642", timedelta(minutes=1)).user_id == 1
    with pytest.raises(InvalidInput):
        _pin(world, "aiko", PIN, timedelta(minutes=2))  # the old PIN is gone
    assert any(e.action == "pin_set" and e.user_id == 2 and e.entity_id == "1" for e in _events(world))


def test_naive_time_is_refused(world: World) -> None:
    with world.uow() as uow, pytest.raises(ValueError, match="naive"):
        sign_in(uow, STATION, "aiko", PIN, NOW.replace(tzinfo=None))


def test_sign_out_is_audited(world: World) -> None:
    actor = _pin(world, "aiko", PIN)
    with world.uow() as uow:
        sign_out(uow, world.ctx(actor), reason="idle")
    last = _events(world)[-1]
    assert (last.action, last.entity_id, last.user_id, last.details) == ("signed_out", "1", 1, {"reason": "idle"})


# --- badges -----------------------------------------------------------------------------------------
def test_badge_sign_in_as_the_scanner_types_it(world: World) -> None:
    with world.uow() as uow:
        set_badge(uow, 1, BADGE)
    actor = _badge(world, " badge-7q4x-9k2m\r\n")  # a scanner's trailing CR/LF, Caps Lock on
    assert actor == Actor(1, "aiko", "Aiko", "clerk")
    last = _events(world)[-1]
    assert (last.action, last.user_id, last.details) == ("signed_in", 1, {"method": "badge"})


def test_an_unknown_badge_is_refused_and_audited(world: World) -> None:
    with world.uow() as uow:
        set_badge(uow, 1, BADGE)
    with pytest.raises(InvalidInput) as refused:
        _badge(world, "BADGE-0000-0000")
    assert refused.value.message == UNKNOWN_BADGE
    last = _events(world)[-1]
    assert (last.action, last.entity_id, last.user_id) == ("sign_in_failed", "unknown", None)
    assert last.details == {"method": "badge", "reason": "unknown_badge"}
    assert _user(world, 1).failed_attempts == 0, "a stranger's badge counts against nobody"
    with world.uow() as uow, pytest.raises(InvalidInput, match="Nothing was scanned"):
        sign_in_badge(uow, STATION, " \r\n", NOW)


def test_ten_unknown_badges_in_a_row_pause_badge_sign_in_at_the_station(world: World) -> None:
    with world.uow() as uow:
        set_badge(uow, 1, BADGE)
    for n in range(LOCK_AFTER_FAILURES):  # someone trying badges, one every few seconds
        with pytest.raises(InvalidInput) as refused:
            _badge(world, f"BADGE-GUESS-{n:04d}", timedelta(seconds=5 * n))
        assert not isinstance(refused.value, AccountLocked)
    last_guess = timedelta(seconds=5 * (LOCK_AFTER_FAILURES - 1))
    with pytest.raises(AccountLocked, match="Badge sign-in at this station is paused") as paused:
        _badge(world, BADGE, last_guess + timedelta(minutes=1))  # even the right badge, for now
    assert paused.value.locked_until == NOW + last_guess + LOCK_FOR
    assert _pin(world, "aiko", PIN, last_guess + timedelta(minutes=2)).user_id == 1  # the PIN still works
    assert _badge(world, BADGE, last_guess + LOCK_FOR + timedelta(seconds=1)).user_id == 1
    # A badge sign-in in between starts the count again.
    for n in range(LOCK_AFTER_FAILURES - 1):
        with pytest.raises(InvalidInput):
            _badge(world, f"BADGE-AGAIN-{n:04d}", last_guess + LOCK_FOR + timedelta(seconds=2 + n))
    assert _badge(world, BADGE, last_guess + LOCK_FOR + timedelta(seconds=20)).user_id == 1
    with pytest.raises(InvalidInput) as refused:
        _badge(world, "BADGE-ONE-MORE", last_guess + LOCK_FOR + timedelta(seconds=21))
    assert not isinstance(refused.value, AccountLocked)


def test_a_disabled_or_locked_users_badge_is_refused(world: World) -> None:
    with world.uow() as uow:
        set_badge(uow, 3, "BADGE-BEN-DISABLED")
    with pytest.raises(InvalidInput) as refused:
        _badge(world, "BADGE-BEN-DISABLED")
    assert refused.value.message == UNKNOWN_BADGE
    with world.uow() as uow:
        set_badge(uow, 1, BADGE)
    _lock(world)
    with pytest.raises(AccountLocked):
        _badge(world, BADGE, timedelta(minutes=5))
    assert _badge(world, BADGE, timedelta(minutes=31)).user_id == 1


def test_the_plain_badge_code_is_never_stored(world: World, tmp_path: Path) -> None:
    with world.uow() as uow:
        set_badge(uow, 1, BADGE, ctx=world.ctx())
    _badge(world, BADGE)
    with pytest.raises(InvalidInput):
        _badge(world, "BADGE-WRONG-0001")
    stored = _user(world, 1).badge_hash
    assert stored == badge_hash(BADGE) and stored.startswith("$argon2id$")
    world.engine.dispose()  # everything is in the file (and its WAL) now
    files = [p for p in tmp_path.iterdir() if p.name.startswith("station.sqlite3")]
    for needle in (BADGE, "BADGE-WRONG-0001"):
        for variant in (needle, needle.lower(), needle.replace("-", "")):
            assert all(variant.encode() not in p.read_bytes() for p in files), variant
    conn = sqlite3.connect(tmp_path / "station.sqlite3")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                assert "BADGE-7Q4X" not in repr(row).upper() and "BADGE-WRONG" not in repr(row).upper(), table
    finally:
        conn.close()


def test_a_badge_belongs_to_one_user_and_can_be_taken_away(world: World) -> None:
    with world.uow() as uow:
        set_badge(uow, 1, BADGE)
    with world.uow() as uow, pytest.raises(StateConflict, match="already belongs to Aiko"):
        set_badge(uow, 2, BADGE.lower())
    with world.uow() as uow, pytest.raises(InvalidInput, match="at least 8"):
        set_badge(uow, 2, "B-1")
    with world.uow() as uow:
        set_badge(uow, 1, None)
    assert _user(world, 1).badge_hash is None
    with pytest.raises(InvalidInput):
        _badge(world, BADGE)
    with world.uow() as uow:
        set_badge(uow, 2, BADGE)
    assert _badge(world, BADGE).user_id == 2


def test_a_badge_stored_under_an_older_salt_still_signs_in_and_is_rehashed(world: World) -> None:
    old = hash_secret(BADGE.encode(), b"an-older-badge-salt", time_cost=2, memory_cost=19 * 1024, parallelism=1,
                      hash_len=32, type=Type.ID).decode()
    with world.uow() as uow:
        user = uow.session.get(User, 1)
        assert user is not None
        user.badge_hash = old
        uow.commit()
    assert _badge(world, BADGE).user_id == 1
    assert _user(world, 1).badge_hash == badge_hash(BADGE) != old


def test_every_attempt_keeps_the_audit_chain_intact(world: World) -> None:
    with world.uow() as uow:
        set_badge(uow, 1, BADGE)
    _pin(world, "aiko", PIN)
    with pytest.raises(InvalidInput):
        _pin(world, "ghost", PIN)
    with pytest.raises(InvalidInput):
        _badge(world, "BADGE-NONE-0000")
    _badge(world, BADGE)
    assert [e.action for e in _events(world)] == ["signed_in", "sign_in_failed", "sign_in_failed", "signed_in"]
    with world.uow() as uow:
        assert verify_chain(uow.session, STATION) is None


# --- the demo users -----------------------------------------------------------------------------------
def test_a_demo_clerk_signs_in_with_a_badge_scan_or_the_demo_pin(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    demo.generate_demo(path, orders=5, seed=1, now=NOW)
    engine = make_engine(str(path), must_exist=True)
    try:
        for user_id, user in enumerate(demo.DEMO_USERS, start=1):
            with UnitOfWork.for_engine(engine) as uow:
                actor = sign_in_badge(uow, "WH1-01", demo.DEMO_BADGES[user.username], NOW)
            assert (actor.user_id, actor.username, actor.role) == (user_id, user.username, user.role)
        with UnitOfWork.for_engine(engine) as uow:
            assert sign_in(uow, "WH1-01", "ben", demo.DEMO_PIN, NOW).display_name == "Ben Okafor"
    finally:
        engine.dispose()
