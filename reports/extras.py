"""Optional inputs of a report written by other commands into the run folder: `profile/` (complexity, from
`codiff-bench profile`) and `cave_analysis/` (from `codiff-bench cave-analysis`).

Both are shown generically: every figure with its caption, every CSV or JSON table. Captions and notes
come from a `summary.json` in the folder when present: {"captions": {file: text}, "notes": [text, ...],
"title": text} (captions may also be given as top-level {file: text} entries). A file that cannot be read
becomes a visible problem line, never a failed report.

Every file a section shows is linked under `report/files/` (`href`), where the report copies it, so that the
report folder works wherever it is copied.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from bench.core.paper import table2

MAX_ROWS = 100
ASSETS = "files"  # the report's copies of the run folder's files it shows, by their path in the run folder
ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/\\-])(?:/[^\s/\"'<>,;:()\[\]{}|]+){2,}/?")
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")
PROFILE_NUMBERS = ("steps", "params_g", "macs_t", "time_s")


@dataclass
class Figure:
    href: str
    caption: str
    svg: str | None = None


@dataclass
class Link:
    name: str
    href: str
    caption: str


@dataclass
class DataTable:
    title: str
    columns: list[str]
    rows: list[list[str]]
    href: str | None = None
    left_out: int = 0


@dataclass
class Section:
    """A folder of extra results, ready to show."""

    title: str
    folder: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[DataTable] = field(default_factory=list)
    files: list[Link] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    profile_rows: list[dict[str, Any]] = field(default_factory=list)


def href(run_dir: Path, path: Path) -> str:
    """The link from `report/index.html` to the report's copy of a file of the run folder."""
    return f"{ASSETS}/" + quote(path.relative_to(run_dir).as_posix())


def portable(value: Any) -> Any:
    """Text with every absolute path (of this machine, which a reader of the report does not share) cut to its
    last component; other values unchanged."""
    if not isinstance(value, str):
        return value
    return ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], value)


def text(value: Any) -> str:
    """A table cell for reading: numbers rounded, yes/no for flags, a mapping as `key: value` pairs and a list
    as its items, comma-separated (never JSON or a Python repr)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.1f}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(text(v) for v in value) or "none"
    return str(value)


def flat(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested configuration as (dotted key, readable value) rows for a two-column table."""
    if isinstance(value, dict) and value:
        return [row for k, v in value.items() for row in flat(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, (list, tuple)) and value and any(isinstance(v, (dict, list, tuple)) for v in value):
        return [row for i, v in enumerate(value, 1) for row in flat(v, f"{prefix} {i}")]
    return [(prefix, text(value) or "not set")]


def rows_table(title: str, rows: list[dict[str, Any]], link: str | None = None) -> DataTable:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    shown = rows[:MAX_ROWS]
    return DataTable(title, columns, [[text(r.get(c)) for c in columns] for r in shown], link,
                     len(rows) - len(shown))


def folder_section(run_dir: Path, folder: str, title: str, *, skip: tuple[str, ...] = ()) -> Section | None:
    """Every figure and table under `<run_dir>/<folder>/`, or None when the folder is absent."""
    root = run_dir / folder
    if not root.is_dir():
        return None
    section = Section(title=title, folder=folder)
    summary = _summary(root, section)
    section.title = str(summary.get("title") or title)
    captions = {**{k: v for k, v in summary.items() if isinstance(v, str) and "." in k},
                **(summary.get("captions") or {}),
                **{d["file"]: d.get("caption", "") for d in summary.get("data") or []
                   if isinstance(d, dict) and "file" in d}}
    notes = summary.get("notes") or []
    section.notes = [notes] if isinstance(notes, str) else [str(n) for n in notes]
    listed = list(captions)
    files = sorted((p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: (_position(listed, p.relative_to(root).as_posix()), p.as_posix()))
    names = {p.relative_to(root).as_posix() for p in files}
    for path in files:
        name = path.relative_to(root).as_posix()
        if name in skip or name == "summary.json":
            continue
        suffix = path.suffix.lower()
        if suffix in FIGURE_SUFFIXES:
            stem = name[: -len(path.suffix)]
            if suffix == ".svg" and any(f"{stem}{s}" in names for s in (".png", ".jpg", ".jpeg")):
                continue
            svg = root / f"{stem}.svg"
            section.figures.append(Figure(href(run_dir, path), str(captions.get(name) or captions.get(stem) or name),
                                          href(run_dir, svg) if suffix != ".svg" and svg.is_file() else None))
        elif suffix in (".csv", ".json"):
            try:
                table = _read_table(path, str(captions.get(name) or name), href(run_dir, path))
            except (OSError, ValueError, pd.errors.ParserError) as exc:
                section.problems.append(f"{folder}/{name}: cannot be read: {exc}")
                continue
            if table is not None:
                section.tables.append(table)
        else:
            section.files.append(Link(name, href(run_dir, path), str(captions.get(name) or "")))
    return section


def _position(listed: list[str], name: str) -> int:
    """Files in the order the folder's summary lists them, the others after."""
    return listed.index(name) if name in listed else len(listed)


def _summary(root: Path, section: Section) -> dict[str, Any]:
    path = root / "summary.json"
    if not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        section.problems.append(f"{section.folder}/summary.json: cannot be read: {exc}")
        return {}
    if not isinstance(summary, dict):
        section.problems.append(f"{section.folder}/summary.json: expected an object")
        return {}
    return summary


def _read_table(path: Path, title: str, link: str) -> DataTable | None:
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
        return rows_table(title, frame.to_dict("records"), link)
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        data = data["rows"]
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return rows_table(title, data, link)
    if isinstance(data, dict) and data:
        if all(isinstance(v, dict) for v in data.values()):
            return rows_table(title, [{"key": k, **v} for k, v in data.items()], link)
        return rows_table(title, [{"key": k, "value": v} for k, v in data.items()], link)
    return None


def profile_section(run_dir: Path) -> Section | None:
    """The complexity profile with the paper's Table 2 beside it, plus any other file in `profile/`."""
    section = folder_section(run_dir, "profile", "Complexity (profile)", skip=("profile.json", "profile.csv"))
    if section is None:
        return None
    rows = _profile_rows(run_dir / "profile", section)
    if rows:
        rows = [_with_paper(r) for r in rows]
        section.profile_rows = rows
        source = run_dir / "profile" / ("profile.json" if (run_dir / "profile" / "profile.json").is_file()
                                         else "profile.csv")
        section.tables.insert(0, rows_table("Measured complexity, with the paper's Table 2 values (paper: 1024 x 1024 on an A6000)",
                                            rows, href(run_dir, source)))
    return section


def _profile_rows(folder: Path, section: Section) -> list[dict[str, Any]]:
    for name in ("profile.json", "profile.csv"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".csv"):
                return pd.read_csv(path).to_dict("records")
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            section.problems.append(f"profile/{name}: cannot be read: {exc}")
            continue
        if isinstance(data, dict):
            notes = data.get("notes") or []
            section.notes += [notes] if isinstance(notes, str) else [str(n) for n in notes]
            data = data.get("rows")
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return data
        section.problems.append(f"profile/{name}: expected a list of rows or an object with 'rows'")
    return []


def _with_paper(row: dict[str, Any]) -> dict[str, Any]:
    """Add the paper's Table 2 values (when the row has none) and measured minus paper differences."""
    row = dict(row)
    name = str(row.get("method", "")).rstrip("*").lower()
    paper = table2()
    match = paper[paper["method"] == name]
    if not match.empty and not any(str(k).startswith("paper_") for k in row):
        p = match.iloc[0]
        row.update({f"paper_{k}": p[k] for k in PROFILE_NUMBERS})
    for key in PROFILE_NUMBERS[1:]:
        measured, claimed = number(row.get(key)), number(row.get(f"paper_{key}"))
        if measured is not None and claimed is not None:
            row[f"diff_{key}"] = measured - claimed
    return row


def number(value: Any) -> float | None:
    """`value` as a finite float, or None."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None
