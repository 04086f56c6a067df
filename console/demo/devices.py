"""Simulated devices for practice without hardware (`simulate scanner`, `simulate scale`): the
real protocols on pseudo-terminals (devices.scanner_simulator, devices.scale_simulator).

- ``simulate scanner --codes FILE``: a scanner on a pty; prints its path, waits until a station
  opens it, then "scans" each code (on Enter in a terminal, else every ``--interval`` seconds).
- ``simulate scale --protocol P --grams G``: a scale on a pty; prints its path and answers until
  stopped; in a terminal, typing a number sets a new weight, ``m`` toggles motion, ``o`` overload.
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

from console.errors import EnvironmentProblem, InvalidInput


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
