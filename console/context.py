"""Who is working, where, under which policy, and what time it is: passed to every service."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from console.policy import Policy
from db.types import utcnow


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    display_name: str
    role: str


@dataclass(frozen=True)
class StationContext:
    station_id: str
    zone: ZoneInfo
    policy: Policy
    actor: Actor
    clock: Callable[[], datetime] = field(default=utcnow)

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
