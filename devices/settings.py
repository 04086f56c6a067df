"""Which scanner and scale this station uses, kept in ``devices.toml`` beside ``config.toml``.

Every section is optional: with no file, the station has a keyboard-wedge scanner with common
settings (Enter ends a scan) and no serial scanner or scale — scanning works out of the box and
weights are typed. The devices page writes the file; people may also edit it by hand, so
loading checks every value and names the one that is wrong.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from console.errors import EnvironmentProblem
from console.files import write_atomically
from devices.wedge import WedgeConfig
from devices.serial_scanner import FRAMINGS, TERMINATORS, SerialScannerConfig

SCALE_PROTOCOLS = ("mt-sics", "toledo-8213", "nci", "cas", "hid")


@dataclass(frozen=True)
class ScaleSettings:
    protocol: str
    port: str
    baudrate: int = 9600
    framing: str = "8N1"
    # The scale's division in grams, for the weight tolerance, when its replies don't show it.
    division_g: int | None = None
    timeout_s: float = 3.0

    def __post_init__(self) -> None:
        if self.protocol not in SCALE_PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(SCALE_PROTOCOLS)}, not {self.protocol!r}")
        if not self.port:
            raise ValueError("port is empty: give the scale's device path, e.g. /dev/ttyUSB0 or /dev/hidraw0")
        if self.framing not in ("8N1", "7E1"):
            raise ValueError(f"framing must be 8N1 or 7E1, not {self.framing!r}")
        if self.baudrate <= 0:
            raise ValueError(f"baudrate must be positive, not {self.baudrate}")
        if self.division_g is not None and not 0 < self.division_g <= 1000:
            raise ValueError(f"division_g must be between 1 and 1000, not {self.division_g}")
        if not 0 < self.timeout_s <= 60:
            raise ValueError(f"timeout_s must be between 0 and 60 seconds, not {self.timeout_s}")


@dataclass(frozen=True)
class DeviceSettings:
    wedge: WedgeConfig = field(default_factory=WedgeConfig)
    scanner: SerialScannerConfig | None = None
    scale: ScaleSettings | None = None


def devices_file(config_file: Path) -> Path:
    return config_file.with_name("devices.toml")


def _build(cls: type, section: Any, name: str) -> Any:
    if not isinstance(section, dict):
        raise EnvironmentProblem(f"[{name}] in devices.toml must be a table of settings")
    known = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(section) - known)
    if unknown:
        raise EnvironmentProblem(f"[{name}] in devices.toml has unknown settings {', '.join(unknown)}; "
                                 f"known are {', '.join(sorted(known))}")
    try:
        values = dict(section)
        if "gs_aliases" in values:
            values["gs_aliases"] = tuple(values["gs_aliases"])
        return cls(**values)
    except (TypeError, ValueError, LookupError) as exc:
        raise EnvironmentProblem(f"[{name}] in devices.toml: {exc}") from None


def load_device_settings(path: Path) -> DeviceSettings:
    if not path.exists():
        return DeviceSettings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise EnvironmentProblem(f"device settings {path} cannot be read: {exc}") from None
    unknown = sorted(set(data) - {"wedge", "scanner", "scale"})
    if unknown:
        raise EnvironmentProblem(f"devices.toml has unknown sections {', '.join(unknown)}; "
                                 "known are [wedge], [scanner] and [scale]")
    return DeviceSettings(
        wedge=_build(WedgeConfig, data["wedge"], "wedge") if "wedge" in data else WedgeConfig(),
        scanner=_build(SerialScannerConfig, data["scanner"], "scanner") if "scanner" in data else None,
        scale=_build(ScaleSettings, data["scale"], "scale") if "scale" in data else None,
    )


def _table(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue  # TOML has no null: a missing key means "not set"
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def save_device_settings(path: Path, settings: DeviceSettings) -> None:
    """Write atomically: a crash mid-write leaves the old file, never half a file."""
    data: dict[str, Any] = {"wedge": _table(settings.wedge)}
    if settings.scanner is not None:
        data["scanner"] = _table(settings.scanner)
    if settings.scale is not None:
        data["scale"] = _table(settings.scale)
    write_atomically(path, tomli_w.dumps(data).encode("utf-8"))


__all__ = ["DeviceSettings", "ScaleSettings", "SCALE_PROTOCOLS", "FRAMINGS", "TERMINATORS",
           "devices_file", "load_device_settings", "save_device_settings"]
