"""The policy file: windows in the station's zone, tiers, fees, and refusing broken files."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from console.errors import EnvironmentProblem
from console.policy import days_between, load_policy, parse_policy

TOKYO = ZoneInfo("Asia/Tokyo")


def test_default_policy_loads_with_a_version() -> None:
    policy = load_policy()
    assert policy.version == "2026.12.1-default"
    assert policy.window_days("apparel", "standard") == 30
    assert "changed_mind" in policy.reasons


def test_day_30_is_in_and_day_31_is_out_in_the_station_zone() -> None:
    policy = load_policy()
    # Delivered 1 Oct 23:30 in Tokyo = 1 Oct 14:30 UTC.
    delivered = datetime(2026, 10, 1, 14, 30, tzinfo=timezone.utc)
    day30_late = datetime(2026, 10, 31, 14, 59, tzinfo=timezone.utc)  # 31 Oct 23:59 Tokyo
    day31_early = datetime(2026, 10, 31, 15, 1, tzinfo=timezone.utc)  # 1 Nov 00:01 Tokyo
    assert policy.check_window(delivered, day30_late, "apparel", "standard", TOKYO).within
    late = policy.check_window(delivered, day31_early, "apparel", "standard", TOKYO)
    assert not late.within and late.days_since_delivery == 31
    # The same instants in UTC are still day 30: the zone decides.
    assert policy.check_window(delivered, day31_early, "apparel", "standard", ZoneInfo("UTC")).within


def test_loyal_tiers_get_longer_windows() -> None:
    policy = load_policy()
    delivered = datetime(2026, 9, 1, 12, tzinfo=timezone.utc)
    day45 = datetime(2026, 10, 16, 12, tzinfo=timezone.utc)
    assert days_between(delivered, day45, ZoneInfo("UTC")) == 45
    assert not policy.check_window(delivered, day45, "apparel", "standard", ZoneInfo("UTC")).within
    assert policy.check_window(delivered, day45, "apparel", "silver", ZoneInfo("UTC")).within
    assert policy.window_days("beauty", "gold") == 14 + 30


def test_restocking_by_category_and_grade() -> None:
    policy = load_policy()
    assert policy.restocking_bp("apparel", "C") == 1000
    assert policy.restocking_bp("electronics", "B") == 1000
    assert policy.restocking_bp("unknown", "F") == 10000


@pytest.mark.parametrize(("text", "fragment"), [
    ("version = ", "not valid TOML"),
    ("[window]\ndefault_days = 30\n[reasons]\na = 'A'\n", "missing key 'version'"),
    ("version = 'x'\n[restocking.default]\nA = -1\nB=0\nC=0\nD=0\nF=0\n[reasons]\na='A'\n", "non-negative"),
    ("version = 'x'\n", "[reasons]"),
])
def test_broken_policy_files_give_one_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(EnvironmentProblem) as err:
        parse_policy(text, "shop.toml")
    assert "shop.toml" in err.value.message and fragment in err.value.message


def test_unreadable_policy_file(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="cannot read policy file"):
        load_policy(tmp_path / "missing.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(EnvironmentProblem):
        load_policy(binary)
