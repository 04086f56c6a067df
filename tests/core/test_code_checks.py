"""The code's own habits, checked in every test run: the dependency rule (import-linter's
contracts in pyproject.toml), no import circle, ruff and mypy. Each runs the real tool on the
checkout; a broken rule fails the run with the tool's own report."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PACKAGES = ("console", "db", "ui", "devices", "printing")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_the_layers_hold_ui_console_db_and_adapters_import_only_the_kernel() -> None:
    proc = _run(str(BIN / "lint-imports"), "--no-cache")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), i.e. the import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_circle_check_sees_a_circle() -> None:
    """The check above can fail: a graph with a circle in it is reported."""
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_kernel_imports_nothing_of_ours() -> None:
    """console.errors and console.files are what db/, devices/ and printing/ may use of console."""
    graph = grimp.build_graph(*PACKAGES)
    for kernel in ("console.errors", "console.files"):
        ours = {m for m in graph.find_modules_directly_imported_by(kernel) if m.split(".")[0] in PACKAGES}
        assert ours == set(), (kernel, ours)


def test_ruff_finds_nothing() -> None:
    proc = _run(str(BIN / "ruff"), "check", "--no-cache", *PACKAGES, "scripts", "tests")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_mypy_finds_nothing_in_console_and_db() -> None:
    proc = _run(str(BIN / "mypy"), "--no-incremental")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.stdout.startswith("Success")
