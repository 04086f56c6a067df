"""`scripts/bench [--quick] [--only NAME] [--out FILE]`: every benchmark, printed as a table and
written as JSON (``bench-results.json``). Each area's benchmarks are in their own module; a module
is imported only when its benchmarks run (the window's pull in Qt)."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from scripts.dev.benchmarks.common import FULL, QUICK, Row, Sizes, bench_database, format_table

# name (as --only matches it) -> (module, function), in the order the table shows them.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "lookup": ("lookup", "bench_lookup"),
    "simulate": ("clerk", "bench_simulate"),
    "interpret": ("scanning", "bench_interpret"),
    "serial": ("scanning", "bench_serial"),
    "printing": ("labels", "bench_printing"),
    "station": ("window", "bench_station"),
    "risk": ("risk", "bench_risk"),
    "sync": ("sync", "bench_sync"),
}


def _benchmark(name: str) -> Callable[[Path, Sizes], list[Row]]:
    module, function = BENCHMARKS[name]
    fn: Callable[[Path, Sizes], list[Row]] = getattr(
        importlib.import_module(f"scripts.dev.benchmarks.{module}"), function)
    return fn


def run_benchmarks(*, quick: bool, out: Path, only: list[str] | None = None) -> int:
    sizes = QUICK if quick else FULL
    unknown = [o for o in only or () if not any(name.startswith(o) for name in BENCHMARKS)]
    if unknown:
        print(f"bench: no benchmark is named {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
        return 2
    path = bench_database(sizes.orders)
    rows: list[Row] = []
    for name in BENCHMARKS:
        if only and not any(name.startswith(o) for o in only):
            continue
        rows.extend(_benchmark(name)(path, sizes))
    print(format_table(rows))
    result = {
        "when": datetime.now(timezone.utc).isoformat(), "quick": quick,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "sizes": asdict(sizes), "results": [asdict(r) for r in rows],
    }
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nwritten to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description="run the benchmarks and print a table")
    parser.add_argument("--quick", action="store_true", help="small data, for CI (a few minutes)")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"run only benchmarks whose name starts with this ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    return run_benchmarks(quick=args.quick, out=args.out, only=args.only)
