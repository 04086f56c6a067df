"""Headless device commands: simulators to try a station without hardware, and plain reads.

- ``simulate scanner --codes FILE``: a scanner on a pty; prints its path, waits until a station
  opens it, then "scans" each code (on Enter in a terminal, else every ``--interval`` seconds).
- ``simulate scale --protocol P --grams G``: a scale on a pty; prints its path and answers until
  stopped; in a terminal, typing a number sets a new weight, ``m`` toggles motion, ``o`` overload.
- ``scanner listen --port PATH``: one JSON line per scan, with what the console makes of it.
- ``scale read --port PATH --protocol P``: the stable weight as JSON, or one line saying what
  went wrong and a non-zero exit.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from console.errors import EnvironmentProblem, InvalidInput


def add_parsers(sub: argparse._SubParsersAction, sim_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    scanner = sim_sub.add_parser("scanner", help="a barcode scanner on a pseudo-terminal, scanning codes from a file")
    scanner.add_argument("--codes", type=Path, required=True, help="text file, one code per line")
    scanner.add_argument("--interval", type=float, default=1.0, help="seconds between scans when not interactive")
    scanner.add_argument("--terminator", choices=("CR", "LF", "CRLF"), default="CR")
    scanner.add_argument("--jitter", type=float, default=0.0, help="up to this many seconds between characters")
    scanner.add_argument("--garbage", action="store_true", help="send some line noise between codes")
    scanner.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a station to open the port")

    scale = sim_sub.add_parser("scale", help="a scale on a pseudo-terminal answering its protocol")
    scale.add_argument("--protocol", required=True, help="mt-sics, toledo-8213, nci, cas or hid")
    scale.add_argument("--grams", default="0", help="the load on the scale, in grams")
    scale.add_argument("--unit", default="g", help="the unit the scale displays (g, kg, lb, oz)")
    scale.add_argument("--motion", action="store_true", help="start in motion")
    scale.add_argument("--overload", action="store_true", help="start over capacity")
    scale.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl+C)")

    listen = sub.add_parser("scanner", help="serial scanner tools").add_subparsers(dest="action", required=True)
    lp = listen.add_parser("listen", help="print one JSON line per scan from a serial scanner")
    lp.add_argument("--port", required=True)
    lp.add_argument("--count", type=int, default=0, help="stop after this many scans (0: until Ctrl+C)")
    lp.add_argument("--baud", type=int, default=9600)
    lp.add_argument("--framing", choices=("8N1", "7E1"), default="8N1")
    lp.add_argument("--terminator", choices=("CR", "LF", "CRLF"), default="CR")
    lp.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds (0: never)")

    read = sub.add_parser("scale", help="scale tools").add_subparsers(dest="action", required=True)
    rp = read.add_parser("read", help="print the stable weight as JSON")
    rp.add_argument("--port", required=True)
    rp.add_argument("--protocol", required=True)
    rp.add_argument("--baud", type=int, default=9600)
    rp.add_argument("--framing", default="8N1")
    rp.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a stable weight")


def _emit(data: dict[str, object]) -> None:
    print(json.dumps(data, ensure_ascii=False), flush=True)


def opened_by_another_process(path: str) -> bool:
    """Whether a process other than this one has ``path`` open (Linux: read from /proc)."""
    target = os.path.realpath(path)
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return True
                except OSError:
                    continue
        except OSError:
            continue
    return False


def _stdin_lines() -> queue.Queue[str | None]:
    """Lines typed in the terminal, read on a thread so the simulator keeps answering."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in sys.stdin:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=pump, name="stdin", daemon=True).start()
    return lines


def simulate_scanner(args: argparse.Namespace) -> int:
    from devices.scanner_simulator import ScannerSimulator

    try:
        # split on newlines only: str.splitlines() would also split at GS (FNC1), which is data here
        codes = [line.rstrip("\r") for line in args.codes.read_text(encoding="utf-8").split("\n")]
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvironmentProblem(f"cannot read codes from {args.codes}: {exc}") from None
    codes = [c for c in codes if c]
    if not codes:
        raise InvalidInput(f"{args.codes} holds no codes: write one code per line")
    interactive = sys.stdin.isatty()
    with ScannerSimulator(terminator=args.terminator, inter_char_s=0.0, jitter_s=args.jitter) as sim:
        _emit({"device": sim.path, "link": sim.link_path, "codes": len(codes),
               "trigger": "press Enter for each scan" if interactive else f"every {args.interval} s"})
        deadline = time.monotonic() + args.wait
        while not opened_by_another_process(sim.path):
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"no station opened {sim.path} within {args.wait:g} s")
            time.sleep(0.05)
        time.sleep(0.2)  # pyserial flushes its input right after opening
        lines = _stdin_lines() if interactive else None
        for code in codes:
            if lines is not None and lines.get() is None:
                break
            if args.garbage:
                sim.send_garbage(b"\x00\xff~\x7f")
            sim.send(code)
            _emit({"sent": code})
            if lines is None:
                time.sleep(args.interval)
        sim.wait_drained(timeout=2.0)
    return 0


def simulate_scale(args: argparse.Namespace) -> int:
    from devices.scale_simulator import ScaleSimulator

    try:
        grams = Decimal(args.grams)
    except InvalidOperation:
        raise InvalidInput(f"--grams {args.grams!r} is not a number") from None
    try:
        sim = ScaleSimulator(args.protocol, grams, args.unit)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    with sim:
        if args.motion:
            sim.set_motion(True)
        if args.overload:
            sim.set_overload(True)
        _emit({"device": sim.path, "protocol": sim.protocol, "grams": str(grams), "unit": sim.unit})
        if sys.stdin.isatty():
            print("type grams + Enter to change the load, m = motion on/off, o = overload on/off, q = quit",
                  file=sys.stderr)
            lines = _stdin_lines()
            motion = overload = False
            while (line := lines.get()) not in (None, "q"):
                if line == "m":
                    motion = not motion
                    sim.set_motion(motion)
                elif line == "o":
                    overload = not overload
                    sim.set_overload(overload)
                else:
                    try:
                        sim.set_weight(Decimal(line or "x"))
                    except InvalidOperation:
                        print(f"not a weight: {line!r}", file=sys.stderr)
        else:
            end = time.monotonic() + args.seconds if args.seconds > 0 else None
            while end is None or time.monotonic() < end:
                time.sleep(0.1)
    return 0


def scanner_listen(args: argparse.Namespace) -> int:
    from console.barcodes import interpret
    from devices.serial_scanner import SerialScannerConfig, SerialScannerReader

    if args.count < 0:
        raise InvalidInput("--count must not be negative")
    try:
        config = SerialScannerConfig(port=args.port, baudrate=args.baud, framing=args.framing,
                                     terminator=args.terminator)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if not os.path.exists(args.port):
        raise EnvironmentProblem(f"no device at {args.port}: plug the scanner in, or check the port")
    scans: queue.Queue[str] = queue.Queue()

    def status(state: str, message: str) -> None:
        print(f"scanner: {state}: {message}", file=sys.stderr, flush=True)

    reader = SerialScannerReader(config, on_scan=lambda code, _t: scans.put(code), on_status=status)
    reader.start()
    seen = 0
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    try:
        while args.count == 0 or seen < args.count:
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            try:
                code = scans.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    print(f"returns-console: {seen} of {args.count} scans within {args.timeout:g} s",
                          file=sys.stderr)
                    return 1
                continue
            seen += 1
            reading = interpret(code)
            _emit({"code": code, "kind": reading.kind, "value": reading.value, "valid": reading.valid,
                   "reason": reading.reason, "carrier": reading.carrier, "symbology": reading.symbology})
    finally:
        reader.stop()
    return 0


def scale_read(args: argparse.Namespace) -> int:
    from devices.scales import ScaleError, open_scale
    from devices.weighing import division_grams, whole_grams

    if args.timeout <= 0:
        raise InvalidInput("--timeout must be positive")
    try:
        driver = open_scale(args.protocol, args.port, baudrate=args.baud, framing=args.framing,
                            timeout_s=args.timeout)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    except ScaleError as exc:
        raise EnvironmentProblem(exc.message) from None
    try:
        with driver:
            reading = driver.read_stable(args.timeout)
    except ScaleError as exc:
        raise EnvironmentProblem(exc.message) from None
    assert reading.grams is not None
    _emit({"grams": str(reading.grams), "whole_grams": whole_grams(reading.grams),
           "division_g": division_grams(reading), "raw_value": str(reading.raw_value),
           "raw_unit": reading.raw_unit, "status": reading.status.value, "protocol": args.protocol,
           "port": args.port})
    return 0


COMMANDS = {("simulate", "scanner"): simulate_scanner, ("simulate", "scale"): simulate_scale,
            ("scanner", "listen"): scanner_listen, ("scale", "read"): scale_read}
