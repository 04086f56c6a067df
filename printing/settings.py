"""Printer settings: which printers the station has, and per document type which printer,
format, resolution, size and number of copies. ``printers.toml`` beside ``config.toml``.

With no file, every document goes as PDF to the folder printer (``<data dir>/printed``), so a
fresh station prints — into files — before anyone has set up a printer.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from console.errors import EnvironmentProblem
from console.files import write_atomically
from printing.content import DOCUMENTS

FOLDER = "folder"

# What each document can be rendered as, and the sizes it is laid out for (the first is the default).
FORMATS: dict[str, tuple[str, ...]] = {
    "disposition-label": ("pdf", "zpl"),
    "lpn-sticker": ("pdf", "zpl"),
    "exchange-slip": ("pdf",),
    "refund-receipt": ("pdf", "escpos"),
    "claim-packet": ("pdf",),
}
SIZES: dict[str, tuple[str, ...]] = {
    "disposition-label": ("4x6",),
    "lpn-sticker": ("2x1",),
    "exchange-slip": ("4x6",),
    "refund-receipt": ("80mm",),
    "claim-packet": ("letter", "a4"),
}
DPIS = (203, 300, 600)
BACKENDS = ("folder", "tcp", "cups", "serial")


@dataclass(frozen=True)
class DocumentRoute:
    printer: str = FOLDER
    format: str = "pdf"
    dpi: int = 203
    size: str = ""
    copies: int = 1

    def checked(self, document: str, printers: dict[str, dict[str, Any]]) -> DocumentRoute:
        if self.format not in FORMATS[document]:
            raise ValueError(f"{document} can be printed as {' or '.join(FORMATS[document])}, not {self.format!r}")
        if self.dpi not in DPIS:
            raise ValueError(f"dpi must be one of {', '.join(map(str, DPIS))}, not {self.dpi}")
        size = self.size or SIZES[document][0]
        if size not in SIZES[document]:
            raise ValueError(f"{document} comes in {', '.join(SIZES[document])}, not {size!r}")
        if not 1 <= self.copies <= 99:
            raise ValueError(f"copies must be 1 to 99, not {self.copies}")
        if self.printer not in printers:
            raise ValueError(f"printer {self.printer!r} is not set up; known are {', '.join(sorted(printers))}")
        return replace(self, size=size)


@dataclass(frozen=True)
class PrinterSettings:
    printers: dict[str, dict[str, Any]]
    documents: dict[str, DocumentRoute] = field(default_factory=dict)

    def route(self, document: str) -> DocumentRoute:
        if document not in DOCUMENTS:
            raise EnvironmentProblem(f"unknown document {document!r}; known are {', '.join(DOCUMENTS)}")
        default = DocumentRoute(dpi=300 if document == "claim-packet" else 203)
        return self.documents.get(document, default).checked(document, self.printers)


def printers_file(config_file: Path) -> Path:
    return config_file.with_name("printers.toml")


def default_settings(data_dir: Path) -> PrinterSettings:
    return PrinterSettings({FOLDER: {"backend": "folder", "path": str(data_dir / "printed")}})


def _printer(name: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise EnvironmentProblem(f"[printers.{name}] in printers.toml must be a table of settings")
    if table.get("backend") not in BACKENDS:
        raise EnvironmentProblem(f"[printers.{name}] needs backend = one of {', '.join(BACKENDS)}")
    return {**table, "name": name}


def load_printer_settings(path: Path, data_dir: Path) -> PrinterSettings:
    base = default_settings(data_dir)
    if not path.exists():
        return base
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise EnvironmentProblem(f"printer settings {path} cannot be read: {exc}") from None
    unknown = sorted(set(data) - {"printers", "documents"})
    if unknown:
        raise EnvironmentProblem(f"printers.toml has unknown sections {', '.join(unknown)}; "
                                 "known are [printers.NAME] and [documents.DOCUMENT]")
    printers = dict(base.printers)
    printers.update({name: _printer(name, table) for name, table in data.get("printers", {}).items()})
    documents: dict[str, DocumentRoute] = {}
    for document, table in data.get("documents", {}).items():
        if document not in DOCUMENTS:
            raise EnvironmentProblem(f"[documents.{document}] in printers.toml: unknown document; "
                                     f"known are {', '.join(DOCUMENTS)}")
        try:
            documents[document] = DocumentRoute(**table).checked(document, printers)
        except (TypeError, ValueError) as exc:
            raise EnvironmentProblem(f"[documents.{document}] in printers.toml: {exc}") from None
    return PrinterSettings(printers, documents)


def save_printer_settings(path: Path, settings: PrinterSettings) -> None:
    """Atomic, like devices.toml: a crash mid-write leaves the old file."""
    data: dict[str, Any] = {
        "printers": {name: {k: v for k, v in table.items() if k != "name" and v is not None}
                     for name, table in settings.printers.items()},
        "documents": {doc: {k: v for k, v in vars(route).items() if v not in ("", None)}
                      for doc, route in settings.documents.items()},
    }
    write_atomically(path, tomli_w.dumps(data).encode("utf-8"))


def make_printers(settings: PrinterSettings) -> dict[str, Any]:
    """Every configured printer, built; EnvironmentProblem names the one whose settings are wrong."""
    from printing.printers import make_printer

    try:
        return {name: make_printer(table) for name, table in settings.printers.items()}
    except ValueError as exc:
        raise EnvironmentProblem(f"printers.toml: {exc}") from None
