"""`policy backtest` on demo data: demo orders, a simulated clerk's decisions through the real
services, then candidate policies re-routing those decisions from their stored facts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from console.cli import main
from console.policy import load_policy
from console.refunds import KINDS_THAT_PAY
from db.engine import make_engine
from db.models import Decision, RiskAssessment


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("backtest-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETURNS_CONSOLE_HOME", str(home))
        assert main(["demo", "--orders", "400", "--seed", "11"]) == 0
        assert main(["simulate", "clerk", "--returns", "40", "--seed", "3"]) == 0
    return home


@pytest.fixture
def home(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RETURNS_CONSOLE_HOME", str(demo_home))
    return demo_home


def _candidate(tmp_path: Path, version: str, **changes: str) -> Path:
    text = load_policy().source.replace('version = "2026.12.1-default"', f'version = "{version}"')
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{version}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _backtest(capsys: pytest.CaptureFixture[str], policy: Path, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["--user", "mei", "policy", "backtest", "--policy", str(policy), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_same_policy_changes_nothing(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(str(home / "station.sqlite3"), must_exist=True)
    with engine.connect() as conn:
        assessed = conn.execute(select(func.count()).select_from(RiskAssessment)
                                .where(RiskAssessment.facts.is_not(None))).scalar_one()
        decisions = conn.execute(select(func.count()).select_from(Decision)).scalar_one()
    engine.dispose()
    report = _backtest(capsys, _candidate(tmp_path, "same"))
    assert assessed == decisions >= 10 and report["rescored"] == assessed
    assert report["changed"] == 0 and report["moves"] == []


def test_reviewing_everything_moves_every_refund_decided_at_the_bench(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(str(home / "station.sqlite3"), must_exist=True)
    with engine.connect() as conn:
        # Refunds the bench settled on its own: what a threshold of 0 would send to a supervisor.
        settled = conn.execute(select(func.count(), func.coalesce(func.sum(Decision.amount_minor), 0))
                               .where(Decision.status == "approved", Decision.kind.in_(KINDS_THAT_PAY))).one()
        currencies = set(conn.execute(select(Decision.currency).where(
            Decision.status == "approved", Decision.kind.in_(KINDS_THAT_PAY))).scalars())
    engine.dispose()
    assert settled[0] > 0
    report = _backtest(capsys, _candidate(tmp_path, "review-all", **{"review_at_or_above = 40": "review_at_or_above = 0"}))
    moves = {(m["from"], m["to"]): m for m in report["moves"]}
    assert moves[("bench", "review")]["returns"] == settled[0]
    if currencies == {"USD"}:
        assert moves[("bench", "review")]["refund_minor"] == {"USD": settled[1]}
    assert sum(moves[("bench", "review")]["refund_minor"].values()) == settled[1]
    assert report["changed"] == sum(m["returns"] for m in report["moves"])


def test_the_printed_report_and_who_may_run_it(home: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    policy = _candidate(tmp_path, "strict", **{"review_at_or_above = 40": "review_at_or_above = 0"})
    capsys.readouterr()
    assert main(["--user", "mei", "policy", "backtest", "--policy", str(policy), "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Back-test of policy strict against 2026.12.1-default, returns decided in the last 30 days")
    assert "decided at the bench → supervisor review:" in out
    assert main(["--user", "aiko", "policy", "backtest", "--policy", str(policy)]) == 1
    err = capsys.readouterr().err
    assert "only a supervisor or admin may review" in err and "Traceback" not in err


def test_a_broken_candidate_is_refused_with_what_is_wrong(home: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = _candidate(tmp_path, "bad", **{"grade_f = { weight = 25 }": "grade_f = { weight = 25, colour = 1 }"})
    capsys.readouterr()
    assert main(["--user", "mei", "policy", "backtest", "--policy", str(bad)]) == 1
    assert "risk.signals.grade_f has no setting colour" in capsys.readouterr().err
    assert main(["policy", "check", str(bad)]) == 1
    assert main(["policy", "check", str(_candidate(tmp_path, "fine"))]) == 0
    assert "policy fine is usable" in capsys.readouterr().out
