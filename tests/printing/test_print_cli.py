"""`returns-console print` and `print-queue` on a demo station after a simulated shift: files
written headlessly decode back to the right barcodes; printing goes through the queue to the
folder printer out of the box; a document that does not exist is one clear line."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from console.cli import main
from tests.tools import pixels
from tests.tools.zpl_reader import parse as parse_zpl


@pytest.fixture(scope="module")
def shift(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("print-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETURNS_CONSOLE_HOME", str(home))
        assert main(["demo", "--orders", "300", "--seed", "5"]) == 0
        assert main(["simulate", "clerk", "--returns", "8", "--seed", "2"]) == 0
    return home


@pytest.fixture
def home(shift: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.setenv("RETURNS_CONSOLE_HOME", str(shift))
    capsys.readouterr()
    return shift


def query(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(home / "station.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def test_labels_for_every_unit_of_an_rma_render_to_pdf_and_zpl_with_their_lpns(
        home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rma, = query(home, "SELECT r.number FROM return_authorizations r JOIN return_items i ON i.rma_id = r.id "
                       "JOIN dispositions d ON d.return_item_id = i.id GROUP BY r.id ORDER BY count(*) DESC LIMIT 1")[0]
    lpns = sorted(lpn for (lpn,) in query(home, f"SELECT d.lpn FROM dispositions d JOIN return_items i ON i.id = "
                                            f"d.return_item_id JOIN return_authorizations r ON r.id = i.rma_id "
                                            f"WHERE r.number = '{rma}'"))
    code, out, _ = run(capsys, "print", "disposition-label", "--rma", rma, "--out", str(tmp_path / "l.pdf"))
    assert code == 0 and out[0]["pages"] == len(lpns)
    decoded = sorted(codes[0][0] for codes in pixels.barcodes((tmp_path / "l.pdf").read_bytes()))
    assert decoded == lpns

    code, out, _ = run(capsys, "print", "lpn-sticker", "--rma", rma, "--format", "zpl", "--dpi", "300",
                       "--out", str(tmp_path / "s.zpl"))
    assert code == 0
    formats = (tmp_path / "s.zpl").read_text(encoding="utf-8").split("^XZ")[:-1]
    assert sorted(b.data for f in formats for b in parse_zpl(f + "^XZ").barcodes) == lpns


def test_printing_without_out_goes_through_the_queue_to_the_folder_printer(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rma, = query(home, "SELECT r.number FROM decisions d JOIN return_authorizations r ON r.id = d.rma_id "
                       "WHERE d.kind IN ('full_refund', 'partial_refund') LIMIT 1")[0]
    code, out, _ = run(capsys, "print", "refund-receipt", "--rma", rma)
    assert code == 0 and out[0]["status"] == "printed" and out[0]["printer"] == "folder"
    printed = home / "printed" / f"refund-receipt-{rma}.pdf"
    assert printed.exists() and "REFUND RECEIPT" in pixels.text(printed.read_bytes())

    code, jobs, _ = run(capsys, "print-queue", "list")
    job = next(j for j in jobs if j["reference"] == rma)
    assert job["status"] == "printed"
    code, out, _ = run(capsys, "print-queue", "reprint", job["id"][:8])
    assert code == 0 and out[0]["of"] == job["id"]
    code, out, _ = run(capsys, "print-queue", "run")
    assert code == 0 and [o["status"] for o in out] == ["printed"]
    assert (home / "printed" / f"refund-receipt-{rma}-2.pdf").read_bytes() == printed.read_bytes()


def test_what_cannot_be_printed_is_one_clear_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rma, = query(home, "SELECT number FROM return_authorizations WHERE status = 'authorized' LIMIT 1")[0]
    code, _, err = run(capsys, "print", "disposition-label", "--rma", rma, "--out", "/tmp/never.pdf")
    assert code == 1 and err.count("\n") == 1 and "no unit with a disposition yet" in err
    code, _, err = run(capsys, "print", "exchange-slip", "--rma", rma, "--out", "/tmp/never.pdf")
    assert code == 1 and "has no exchange decision" in err
    code, _, err = run(capsys, "print", "refund-receipt", "--rma", "R-NOPE", "--out", "/tmp/never.pdf")
    assert code == 1 and "No RMA, tracking number or order matches" in err
    assert not Path("/tmp/never.pdf").exists()
