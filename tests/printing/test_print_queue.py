"""The print queue on a real station database, printing to a real folder and to the fake
9100 label printer (a real TCP server): jobs stored before sending, faults leave them
waiting with the reason, a crash never re-sends, reprint and cancel, and the documents a
decision prints."""
from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from console import print_queue
from console.deciding import DecideCommand, decide
from console.inspection import inspect_item
from console.print_jobs import print_after_decision, submit
from console.print_queue import Dispatcher
from console.printouts import store_credit_code
from console.receiving import receive_parcel, scan_item
from db.models import AuditEvent, PrintJob, ReturnItem
from printing.content import LpnSticker
from printing.fake_printer import FakeLabelPrinter
from printing.printers import FolderPrinter, PrintPayload, RawTcpPrinter
from printing.settings import DocumentRoute, PrinterSettings, default_settings
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world


@pytest.fixture
def world(tmp_path: Path):
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


def decided(world: World, kind: str = "full_refund", grade: str = "A", exchange_sku: str | None = None,
            currency: str = "USD") -> uuid.UUID:
    order = add_order(world, [LineSpec("AP-1", 4000, gtin="0012345678905"), LineSpec("AP-2", 2000)],
                      currency=currency)
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    for code in ("0012345678905", "AP-2"):
        with world.uow() as uow:
            scan_item(uow, ctx, receipt.receipt_id, code)
    with world.uow() as uow:
        items = uow.session.scalars(select(ReturnItem.id).where(ReturnItem.rma_id == rma.id)).all()
    for item_id in items:
        with world.uow() as uow:
            inspect_item(uow, ctx, item_id, grade)
    decision_id = uuid.uuid4()
    with world.uow() as uow:
        decide(uow, ctx, DecideCommand(decision_id=decision_id, rma_id=rma.id, kind=kind, exchange_sku=exchange_sku))
    return decision_id


def sessions(world: World) -> sessionmaker[Session]:
    return sessionmaker(world.engine, expire_on_commit=False)


def folder_dispatcher(world: World, folder: Path) -> Dispatcher:
    return Dispatcher(sessions(world), {"folder": FolderPrinter(folder)}, clock=world.clock)


def job_rows(world: World) -> list[PrintJob]:
    with world.uow() as uow:
        rows = list(uow.session.scalars(select(PrintJob).order_by(PrintJob.created_at)))
        for r in rows:
            uow.session.expunge(r)
        return rows


def test_a_refund_prints_a_label_per_unit_and_the_receipt_into_the_folder(world: World, tmp_path: Path) -> None:
    decision_id = decided(world)
    settings = default_settings(tmp_path)
    with world.uow() as uow:
        queued = print_after_decision(uow, world.ctx(), settings, decision_id)
        uow.commit()
    assert [q.document for q in queued] == ["disposition-label", "disposition-label", "refund-receipt"]
    assert all(q.printer == "folder" for q in queued)
    assert [j.status for j in job_rows(world)] == ["waiting"] * 3  # stored before anything is sent

    outcomes = folder_dispatcher(world, tmp_path / "printed").run_once()
    assert [o.status for o in outcomes] == ["printed"] * 3
    files = sorted((tmp_path / "printed").iterdir())
    assert len(files) == 3 and all(f.suffix == ".pdf" for f in files)
    texts = {f.name: "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(f)) for f in files}
    receipt = next(t for n, t in texts.items() if n.startswith("refund-receipt"))
    assert "USD 60.00" in receipt and "REFUND" in receipt
    labels = [t for n, t in texts.items() if n.startswith("disposition-label")]
    assert all("RESTOCK" in t for t in labels)
    # Every print is audited.
    with world.uow() as uow:
        actions = uow.session.scalars(select(AuditEvent.action).where(AuditEvent.entity == "print_job")).all()
    assert actions.count("print_requested") == 3
    # Sent jobs are not sent again.
    assert folder_dispatcher(world, tmp_path / "printed").run_once() == []
    assert len(list((tmp_path / "printed").iterdir())) == 3


def test_a_denial_prints_nothing(world: World, tmp_path: Path) -> None:
    decision_id = decided(world, kind="deny")
    with world.uow() as uow:
        assert print_after_decision(uow, world.ctx(), default_settings(tmp_path), decision_id) == []
    assert job_rows(world) == []


def test_an_exchange_prints_the_slip_with_the_replacement_and_the_price_difference(world: World, tmp_path: Path) -> None:
    add_order(world, [LineSpec("AP-9", 5000, gtin="4006381333931")])  # the replacement, as last sold
    decision_id = decided(world, kind="exchange", exchange_sku="ap-9")
    with world.uow() as uow:
        queued = print_after_decision(uow, world.ctx(), default_settings(tmp_path), decision_id)
        uow.commit()
    assert [q.document for q in queued][-1] == "exchange-slip"
    folder_dispatcher(world, tmp_path / "out").run_once()
    slip = next(f for f in (tmp_path / "out").iterdir() if f.name.startswith("exchange-slip"))
    text = pdfium.PdfDocument(slip)[0].get_textpage().get_text_range()
    assert "AP-9" in text and "Customer pays USD 40.00" in text  # 2 × 50.00 − 60.00 paid


def test_store_credit_codes_are_stable_and_checked() -> None:
    from console.checkdigits import luhn_mod36_char

    d = uuid.UUID("12345678-1234-5678-1234-567812345678")
    code = store_credit_code(d)
    assert code == store_credit_code(d) and code.startswith("SC") and len(code) == 15
    assert luhn_mod36_char(code[:-1]) == code[-1]
    assert store_credit_code(uuid.uuid4()) != code


def zpl_route_settings(tmp_path: Path, host: str, port: int, timeout_s: float = 0.5) -> PrinterSettings:
    base = default_settings(tmp_path)
    printers = {**base.printers, "zebra": {"name": "zebra", "backend": "tcp", "host": host, "port": port,
                                           "timeout_s": timeout_s, "query_status": True}}
    return PrinterSettings(printers, {"disposition-label": DocumentRoute(printer="zebra", format="zpl")})


def tcp_dispatcher(world: World, fake: FakeLabelPrinter) -> Dispatcher:
    return Dispatcher(sessions(world), {"zebra": RawTcpPrinter(fake.host, fake.port, name="zebra",
                                                                          timeout_s=0.5)}, clock=world.clock)


def test_a_printer_out_of_paper_keeps_the_job_waiting_with_its_reason_until_it_prints_once(
        world: World, tmp_path: Path) -> None:
    decision_id = decided(world)
    with FakeLabelPrinter() as fake:
        settings = zpl_route_settings(tmp_path, fake.host, fake.port)
        with world.uow() as uow:
            print_after_decision(uow, world.ctx(), settings, decision_id)
            uow.commit()
        label_job = next(j for j in job_rows(world) if j.document == "disposition-label")
        assert label_job.format == "zpl" and label_job.payload.startswith(b"^XA")

        fake.set_state("paper_out")
        dispatcher = tcp_dispatcher(world, fake)
        first = [o for o in dispatcher.run_once() if o.job_id == label_job.id][0]
        assert first.status == "waiting" and "out of paper" in first.message.lower()
        row = next(j for j in job_rows(world) if j.id == label_job.id)
        assert row.status == "waiting" and row.attempts == 1 and "paper" in (row.last_error or "").lower()
        assert row.next_attempt_at > world.clock.now  # backed off
        assert fake.jobs == []

        assert dispatcher.run_once() == []  # not due yet: no hammering of a broken printer
        fake.set_state("ok")
        world.clock.now += timedelta(seconds=10)
        outcomes = dispatcher.run_once()
        assert {o.status for o in outcomes} == {"printed"}
        assert fake.wait_jobs(2)
        assert label_job.payload in fake.jobs  # byte for byte what was stored before the fault
        world.clock.now += timedelta(minutes=10)
        assert dispatcher.run_once() == []  # printed once, never again by itself
        assert len(fake.jobs) == 2


def test_a_silent_printer_times_out_and_an_offline_one_is_reported_offline(world: World, tmp_path: Path) -> None:
    with FakeLabelPrinter() as fake:
        with world.uow() as uow:
            job = print_queue.enqueue(uow, world.ctx(), "lpn-sticker", "LPN000000001X", "zebra",
                                      PrintPayload(b"^XA^FDx^FS^XZ", "zpl", "t"))
            uow.commit()
        dispatcher = tcp_dispatcher(world, fake)
        fake.set_state("silent")
        assert dispatcher.send(job).status == "waiting"
        assert "answer" in (job_rows(world)[0].last_error or "").lower() or \
            "time" in (job_rows(world)[0].last_error or "").lower()
        fake.set_state("offline")
        with world.uow() as uow:
            print_queue.retry_now(uow, world.ctx(), job)
            uow.commit()
        outcome = dispatcher.send(job)
        assert outcome.status == "waiting" and job_rows(world)[0].attempts == 2
        assert fake.jobs == []


def test_a_crash_while_sending_leaves_the_job_uncertain_never_resent_and_a_reprint_is_a_new_job(
        world: World, tmp_path: Path) -> None:
    with world.uow() as uow:
        job = print_queue.enqueue(uow, world.ctx(), "refund-receipt", "R-0000001X", "folder",
                                  PrintPayload(b"%PDF-1.4 test", "pdf", "receipt"))
        uow.commit()
    # The console dies between claiming the job and hearing back from the printer:
    with world.uow() as uow:
        uow.session.get(PrintJob, job).status = "sending"
        uow.commit()
    dispatcher = folder_dispatcher(world, tmp_path / "out")
    assert dispatcher.recover() == 1
    assert job_rows(world)[0].status == "uncertain"
    assert dispatcher.run_once() == []
    with world.uow() as uow, pytest.raises(Exception, match="reprint it instead"):
        print_queue.retry_now(uow, world.ctx(), job)
    with world.uow() as uow:
        again = print_queue.reprint(uow, world.ctx(), job)
        uow.commit()
    assert [o.job_id for o in dispatcher.run_once()] == [again]
    rows = {r.id: r for r in job_rows(world)}
    assert rows[again].reprint_of == job and rows[again].payload == rows[job].payload
    assert (tmp_path / "out" / "refund-receipt-R-0000001X.pdf").read_bytes() == b"%PDF-1.4 test"


def test_a_cancelled_job_is_never_sent_and_an_unknown_printer_fails_with_advice(world: World, tmp_path: Path) -> None:
    with world.uow() as uow:
        a = print_queue.enqueue(uow, world.ctx(), "lpn-sticker", "LPN1", "folder", PrintPayload(b"x", "pdf", "a"))
        b = print_queue.enqueue(uow, world.ctx(), "lpn-sticker", "LPN2", "gone", PrintPayload(b"y", "pdf", "b"))
        uow.commit()
    with world.uow() as uow:
        print_queue.cancel(uow, world.ctx(), a)
        uow.commit()
    outcomes = folder_dispatcher(world, tmp_path / "out").run_once()
    assert [(o.job_id, o.status) for o in outcomes] == [(b, "failed")]
    assert "not set up" in outcomes[0].message
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    with world.uow() as uow:
        print_queue.retry_now(uow, world.ctx(), b, printer="folder")
        uow.commit()
    assert [o.status for o in folder_dispatcher(world, tmp_path / "out").run_once()] == ["printed"]


def test_jobs_survive_a_restart_of_the_station(world: World, tmp_path: Path) -> None:
    with world.uow() as uow:
        job = submit(uow, world.ctx(), default_settings(tmp_path), LpnSticker("LPN000000007X", "AP-1", "B", "R-0000001X"))
        uow.commit()
    world.engine.dispose()  # the console closes; the file is all that is left
    outcomes = folder_dispatcher(world, tmp_path / "out").run_once()
    assert [(o.job_id, o.status) for o in outcomes] == [(job.job_id, "printed")]
