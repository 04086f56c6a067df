"""The command line (`returns-console`): the composition root and one module per command group."""
from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from console.cli.root import main as run

    return run(argv)
