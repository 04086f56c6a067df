"""Where the station keeps its data and what it connects to.

Precedence: command-line flags, then environment variables, then ``config.toml`` in the
config folder, then defaults. ``RETURNS_CONSOLE_HOME`` puts data and config in one folder
(tests and training set-ups use it).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs

from console.errors import EnvironmentProblem
from db.engine import sqlite_url

APP = "returns-console"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    config_file: Path
    station_db: Path
    central_url: str
    station_id: str = "WH1-01"
    station_name: str = "Warehouse 1, bench 1"
    time_zone: str = "UTC"
    policy_file: Path | None = None
    user: str = "aiko"
    # Where the bench camera drops its pictures; Ctrl+I attaches the ones taken since the parcel
    # was opened. None: <data_dir>/camera.
    camera_folder: Path | None = None
    # A good scan chirps, a bad one buzzes; off where nobody should hear the bench.
    sounds: bool = True
    # The block of ids for RMAs this station creates itself (0-999, one per station); None:
    # derived from the station id (see console.context.station_id_range).
    id_block: int | None = None
    # Minutes without a key, click or scan after which the station locks to the sign-in screen
    # ([station] idle_lock_minutes, default 10). The same span bounds how old the last PIN or
    # badge check may be when a refund is paid out at once; older, the bench asks again.
    idle_lock_minutes: float = 10.0

    @property
    def photo_folder(self) -> Path:
        return self.camera_folder or self.data_dir / "camera"

    @property
    def station_url(self) -> str:
        return sqlite_url(self.station_db)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def _dirs() -> tuple[Path, Path]:
    home = os.environ.get("RETURNS_CONSOLE_HOME")
    if home:
        return Path(home), Path(home)
    return Path(platformdirs.user_data_dir(APP)), Path(platformdirs.user_config_dir(APP))


def _flag(table: dict[str, Any], key: str, default: bool, source: Path) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):  # "false" in quotes would otherwise count as true
        raise EnvironmentProblem(f"{source}: [station] {key} must be true or false, not {value!r}")
    return value


def _id_block(table: dict[str, Any], source: Path) -> int | None:
    value = table.get("id_block")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 999:
        raise EnvironmentProblem(f"{source}: [station] id_block must be a whole number from 0 to 999, not {value!r}; "
                                 "give each station its own")
    return value


def _idle_minutes(table: dict[str, Any], source: Path) -> float:
    value = table.get("idle_lock_minutes", 10)
    # Fractions are allowed (tests and training set-ups use seconds); zero or less would lock a
    # bench nobody can work at, and more than a shift leaves it open to the next person.
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 12 * 60:
        raise EnvironmentProblem(f"{source}: [station] idle_lock_minutes must be a number of minutes above 0 "
                                 f"and at most 720, not {value!r}")
    return float(value)


def load_settings(**overrides: Any) -> Settings:
    data_dir, config_dir = _dirs()
    config_file = config_dir / "config.toml"
    file_values: dict[str, Any] = {}
    if config_file.exists():
        try:
            file_values = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            raise EnvironmentProblem(f"config file {config_file} cannot be read: {exc}") from None
    station = file_values.get("station", {})
    settings = Settings(
        data_dir=data_dir,
        config_file=config_file,
        station_db=Path(os.environ.get("RETURNS_STATION_DB") or file_values.get("station_db")
                        or data_dir / "station.sqlite3"),
        central_url=(os.environ.get("RETURNS_CENTRAL_URL") or file_values.get("central_url")
                     or sqlite_url(data_dir / "central.sqlite3")),
        station_id=station.get("id", "WH1-01"),
        station_name=station.get("name", "Warehouse 1, bench 1"),
        time_zone=station.get("time_zone", os.environ.get("RETURNS_TIME_ZONE", "UTC")),
        policy_file=Path(file_values["policy_file"]) if file_values.get("policy_file") else None,
        user=file_values.get("user", "aiko"),
        camera_folder=Path(station["camera_folder"]) if station.get("camera_folder") else None,
        sounds=_flag(station, "sounds", True, config_file),
        id_block=_id_block(station, config_file),
        idle_lock_minutes=_idle_minutes(station, config_file),
    )
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    try:
        ZoneInfo(settings.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise EnvironmentProblem(f"unknown time zone {settings.time_zone!r} in station settings; "
                                 "use an IANA name such as Asia/Tokyo") from None
    return settings
