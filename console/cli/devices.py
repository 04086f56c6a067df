"""Headless device reads (the simulators are training features: console.demo.devices).

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
import time
from typing import Any

from console.config import Settings
from console.errors import EnvironmentProblem, InvalidInput


NAMES = ("scanner", "scale")


def add_parsers(sub: Any) -> None:
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    return {("scanner", "listen"): scanner_listen, ("scale", "read"): scale_read}[(args.command, args.action)](args)
