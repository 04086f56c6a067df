"""Headless commands that act in someone's name ask for that person's PIN first.

``--user NAME`` says who runs a command; for a step that settles money, shows customers'
contact details or changes who may do what, naming someone is not enough: the PIN is checked
like any sign-in (audited, counted towards the lock after ten wrong ones).
"""
from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.station import Station


def read_secret(prompt: str) -> str:
    """A PIN or badge: asked for without echo in a terminal, else one line of standard input."""
    from console.errors import InvalidInput

    if sys.stdin.isatty():
        return getpass.getpass(f"{prompt}: ")
    line = sys.stdin.readline()
    if not line:
        raise InvalidInput(f"{prompt}: nothing on standard input. Type it when asked, or give one line per PIN.")
    return line.rstrip("\r\n")


def prove_identity(station: Station) -> None:
    """Check the acting user's PIN; on success ``station.actor`` is the freshly signed-in user."""
    from console.signin import sign_in
    from db.types import utcnow

    actor = station.actor
    pin = read_secret(f"PIN of {actor.username}")
    with station.uow() as uow:
        station.actor = sign_in(uow, station.settings.station_id, actor.username, pin, utcnow())
