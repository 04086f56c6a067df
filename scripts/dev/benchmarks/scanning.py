"""Scanning benchmarks: how fast a scan becomes a typed result, and a serial scan a Qt signal.

- interpretation throughput: ``interpret`` over a corpus of real parcel codes from the benchmark
  database plus GTINs, GS1 element strings, AIM-prefixed codes and garbage;
- last character to result: the wedge detector takes the scan's final key (Enter) and the
  code is interpreted — what a clerk waits for after the beep (target ≤ 1 ms at p99);
- serial scan latency: from the simulator's write of the terminator on a real pty to the Qt
  signal delivered on the GUI thread (target p99 ≤ 20 ms).
"""
from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from console.barcodes import GS, interpret
from console.checkdigits import gs1_check_digit
from devices.wedge import WedgeConfig, WedgeDetector

if TYPE_CHECKING:
    from scripts.dev.benchmarks.common import Row, Sizes


def scan_corpus(path: Path, count: int, seed: int = 5) -> list[str]:
    from scripts.dev.benchmarks.common import sample_codes

    rng = random.Random(seed)
    parcel = sample_codes(path, count // 2)
    others: list[str] = []
    while len(parcel) + len(others) < count:
        body = f"{rng.randrange(10**12):012d}"
        gtin = body + str(gs1_check_digit(body))
        choice = rng.randrange(6)
        if choice == 0:
            others.append(gtin)
        elif choice == 1:
            others.append("]E0" + gtin)
        elif choice == 2:
            others.append(f"]C101{gtin.zfill(14)}10LOT{rng.randrange(999)}{GS}17261231")
        elif choice == 3:
            others.append(f"]d201{gtin.zfill(14)}21SN{rng.randrange(10**8)}")
        elif choice == 4:
            others.append("".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-") for _ in range(rng.randrange(4, 30))))
        else:
            others.append(gtin[:-1] + str((int(gtin[-1]) + 1) % 10))  # a misread check digit
    corpus = parcel + others
    rng.shuffle(corpus)
    return corpus


def bench_interpret(path: Path, sizes: Sizes) -> list[Row]:
    from scripts.dev.benchmarks.common import Row, percentile

    corpus = scan_corpus(path, sizes.lookups * 4)
    for code in corpus[:200]:
        interpret(code)  # warm the caches (regexes, spec data)
    started = time.perf_counter()
    for code in corpus:
        interpret(code)
    elapsed = time.perf_counter() - started
    per_second = len(corpus) / elapsed

    # The clerk's wait: the final key of a 2 ms-per-key burst, then the interpretation.
    detector = WedgeDetector(WedgeConfig())
    latencies: list[float] = []
    t = 0.0
    for code in corpus:
        for ch in code:
            detector.feed(ch, t)
            t += 2.0
        begin = time.perf_counter_ns()
        actions = detector.feed("\r", t)
        scanned = [a for a in actions if hasattr(a, "code")]
        if scanned:
            interpret(scanned[0].code)  # type: ignore[attr-defined]
        latencies.append((time.perf_counter_ns() - begin) / 1e6)
        t += 500.0
    p99 = percentile(latencies, 99)
    return [
        Row(f"barcode interpretation ({len(corpus):,} mixed codes)", round(per_second), "codes/s", None, "",
            None, "informative", None),
        Row("last scanned character to decoded result, p99", round(p99, 4), "ms", 1.0, "target",
            round(p99 / 1.0, 3), "≤ 1 ms", p99 <= 1.0),
    ]


def measure_serial_to_signal(count: int) -> list[float]:
    """Milliseconds from the simulator's terminator write to the Qt slot on the GUI thread."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop

    from devices.scanner_simulator import ScannerSimulator
    from devices.serial_scanner import SerialScannerConfig
    from ui.devices import ScannerBridge

    from ui.app import application

    app = application()  # a QApplication: the same kind the console and the tests run
    arrived: list[int] = []
    latencies: list[float] = []
    with ScannerSimulator() as sim:
        bridge = ScannerBridge(SerialScannerConfig(port=sim.path))
        bridge.scanned.connect(lambda _code, _t: arrived.append(time.perf_counter_ns()))
        bridge.start()
        try:
            deadline = time.monotonic() + 5
            while not bridge.reader.is_connected and time.monotonic() < deadline:
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
                time.sleep(0.005)
            time.sleep(0.1)  # pyserial flushes input right after opening
            for i in range(count):
                sim.send(f"1Z{i:015d}0")
                deadline = time.monotonic() + 2
                while len(arrived) <= i and time.monotonic() < deadline:
                    app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
                if len(arrived) <= i:
                    raise RuntimeError(f"scan {i} did not arrive within 2 s")
                latencies.append((arrived[i] - sim.sent_at_ns[i]) / 1e6)
        finally:
            bridge.stop()
    return latencies


def bench_serial(path: Path, sizes: Sizes) -> list[Row]:
    from scripts.dev.benchmarks.common import Row, percentile

    latencies = measure_serial_to_signal(max(100, sizes.lookups // 5))
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return [
        Row(f"serial scan to Qt signal, p50 ({len(latencies)} scans, pty)", round(p50, 3), "ms", None, "", None,
            "informative", None),
        Row("serial scan to Qt signal, p99", round(p99, 3), "ms", 20.0, "target", round(p99 / 20.0, 3),
            "≤ 20 ms", p99 <= 20.0),
    ]
