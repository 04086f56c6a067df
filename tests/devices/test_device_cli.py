"""The headless device commands against simulators in another process, over real ptys."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from console import cli


def _start(args: list[str]) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first:
        proc.wait(5)
        raise AssertionError(f"simulator did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(first)


def _finish(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture
def scale_sim() -> Iterator[dict[str, object]]:
    proc, info = _start(["simulate", "scale", "--protocol", "toledo-8213", "--grams", "1480",
                         "--unit", "kg", "--seconds", "30"])
    yield info
    _finish(proc)


def test_simulated_scale_read_prints_the_stable_weight(scale_sim, capsys: pytest.CaptureFixture[str]) -> None:
    port = str(scale_sim["device"])
    assert cli.main(["scale", "read", "--port", port, "--protocol", "toledo-8213"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["whole_grams"] == 1480 and out["status"] == "stable" and out["raw_unit"] == "kg"


def test_scale_read_with_the_wrong_protocol_fails_with_one_clear_line(scale_sim,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    port = str(scale_sim["device"])
    assert cli.main(["scale", "read", "--port", port, "--protocol", "mt-sics", "--timeout", "0.5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scale" in err[0].lower() and "Traceback" not in err[0]


def test_scale_read_of_a_missing_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["scale", "read", "--port", "/dev/no-such-scale", "--protocol", "cas"]) == 1
    assert "plugged in" in capsys.readouterr().err


def test_simulated_scanner_scans_reach_scanner_listen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    codes = tmp_path / "codes.txt"
    codes.write_text("4006381333931\n1Z5R89390357567127\n]C1010950600013435210AB\x1d17261231\n", encoding="utf-8")
    proc, info = _start(["simulate", "scanner", "--codes", str(codes), "--interval", "0.05", "--wait", "20"])
    try:
        assert cli.main(["scanner", "listen", "--port", str(info["device"]), "--count", "3", "--timeout", "20"]) == 0
    finally:
        _finish(proc)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["valid"]) for r in rows] == [("gtin", True), ("tracking", True), ("gtin", True)]
    assert rows[1]["carrier"] == "ups" and "\x1d" in rows[2]["code"]


def test_scanner_listen_without_a_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["scanner", "listen", "--port", "/dev/no-such-scanner", "--count", "1"]) == 1
    assert "plug the scanner in" in capsys.readouterr().err


def test_simulate_scanner_with_an_empty_codes_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "codes.txt"
    empty.write_text("\n", encoding="utf-8")
    assert cli.main(["simulate", "scanner", "--codes", str(empty)]) == 1
    assert "no codes" in capsys.readouterr().err
