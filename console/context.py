"""Who is working, where, under which policy, and what time it is: passed to every service."""
from __future__ import annotations

import zlib

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from console.policy import Policy
from db.types import utcnow

if TYPE_CHECKING:
    from console.approval_signing import Signer


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    display_name: str
    role: str
    # An approver's key, opened by the PIN or badge they signed in with (console.approval_signing);
    # None for everyone else, and for an actor named without a sign-in.
    signer: Signer | None = field(default=None, compare=False, repr=False)
    # When this person last proved who they are here (the PIN or badge of a sign-in, or of a check
    # before a refund): what a payout may not be older than (console.reconfirm). None for an actor
    # named by the station's configuration, as the headless commands are, which no one signs in to.
    identity_checked_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StationContext:
    station_id: str
    zone: ZoneInfo
    policy: Policy
    actor: Actor
    clock: Callable[[], datetime] = field(default=utcnow)
    id_block: int | None = None  # [station] id_block; None: derived from the station id
    # How old the actor's identity check may be when a decision pays out at once: the station's
    # idle-lock span ([station] idle_lock_minutes). None: no bench, no check (central, the sync worker).
    reconfirm_within: timedelta | None = None

    def id_range(self) -> tuple[int, int]:
        return station_id_range(self.station_id, self.id_block)

    def now(self) -> datetime:
        return self.clock()

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def local_time_text(self, moment: datetime) -> str:
        """'10:42' today, '21 Nov 10:42' otherwise: how a clerk reads a time at the bench."""
        local = self.local(moment)
        if local.date() == self.local(self.now()).date():
            return local.strftime("%H:%M")
        return local.strftime("%d %b %H:%M")


STATION_IDS_FROM = 1_000_000_000
IDS_PER_STATION = 1_000_000
ID_BLOCKS = 1000


def station_id_range(station_id: str, id_block: int | None = None) -> tuple[int, int]:
    """The integer ids this station gives the RMAs and return items it creates itself (first,
    last): central's own ids stay below 1,000,000,000, and each station has a million of its own,
    so rows created offline on two stations never share an id. The block is ``[station] id_block``
    (0-999; give each station its own); unset, it is derived from the station id, and central
    refuses an event whose ids turn out to belong to another row rather than merging the two."""
    block = id_block if id_block is not None else zlib.crc32(station_id.encode()) % ID_BLOCKS
    if not 0 <= block < ID_BLOCKS:
        raise ValueError(f"id_block must be 0-{ID_BLOCKS - 1}")
    first = STATION_IDS_FROM + block * IDS_PER_STATION
    return first, first + IDS_PER_STATION - 1
