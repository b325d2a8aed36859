"""Files to paste elsewhere: CSV (long and wide), LaTeX (booktabs, red best / blue second as in the paper)
and Markdown, all from the same `QualityTable` model as the HTML page."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bench.core.atomic import atomic_write_text
from bench.core.paths import safe_component
from reports.tables import Cell, QualityTable

LATEX_SPECIAL = re.compile(r"([&%$#_{}~^\\])")
LATEX_REPLACE = {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
LATEX_COLOURS = {"best": "red", "second": "blue"}
MD_MARKS = {"best": "**bold**", "second": "*italics*"}
PARTIAL_MARK = "\u2020"
MAX_COLUMNS = 6  # value columns that fit the text width of an article at 10 pt; wider tables are scaled


def latex_escape(text: str) -> str:
    return LATEX_SPECIAL.sub(lambda m: LATEX_REPLACE.get(m.group(1), "\\" + m.group(1)), str(text))


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g"))


def latex_table(table: QualityTable) -> str:
    """One dataset as a booktabs table (no vertical rules; \\label{tab:results-<dataset>}); wider than MAX_COLUMNS
    value columns, it is scaled to the text width. Needs booktabs, xcolor and graphicx."""
    k = len(table.metrics)
    arrows = {m: r"$\downarrow$" if table.arrows[m] == "\u2193" else r"$\uparrow$" for m in table.metrics}
    wide = len(table.columns) > MAX_COLUMNS
    lines = ["% Requires \\usepackage{booktabs}, \\usepackage{xcolor} and \\usepackage{graphicx}.",
             "\\begin{table}[t]", "\\centering",
             f"\\caption{{{latex_escape(table.dataset_label)}: mean over images.{_latex_legend(table)}}}",
             f"\\label{{tab:results-{latex_label(table.dataset)}}}"]
    lines += ["\\resizebox{\\linewidth}{!}{%"] if wide else []
    lines += ["\\begin{tabular}{l" + "c" * len(table.columns) + "}", "\\toprule",
              " & ".join(["QF"] + [f"\\multicolumn{{{k}}}{{c}}{{{qf}}}" for qf in table.qfs]) + " \\\\",
              " ".join(f"\\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(table.qfs))),
              " & ".join(["Method"] + [f"{latex_escape(table.metric_labels[m])}{arrows[m]}" for _, m in table.columns])
              + " \\\\", "\\midrule"]
    for method in table.methods:
        cells = [_latex_cell(table.cell(method, qf, metric)) for qf, metric in table.columns]
        lines.append(" & ".join([latex_escape(table.method_label(method))] + cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}" + ("}" if wide else "")]
    if _any_partial(table):
        lines.append("\\par{\\footnotesize $^\\dagger$ over fewer images than the column's maximum}")
    lines += ["\\end{table}", ""]
    return "\n".join(lines)


def latex_label(name: str) -> str:
    """A name as the key of a \\label: letters, digits and hyphens."""
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") or "table"


def _latex_legend(table: QualityTable) -> str:
    legend = ", ".join(f"{meaning} in \\textcolor{{{LATEX_COLOURS[rank]}}}{{{LATEX_COLOURS[rank]}}}"
                       for rank, meaning in table.marks)
    return f" {legend[0].upper()}{legend[1:]}." if legend else ""


def _latex_cell(cell: Cell | None) -> str:
    if cell is None:
        return "--"
    text = cell.text + ("$^\\dagger$" if cell.partial else "")
    colour = LATEX_COLOURS.get(cell.rank)
    return f"\\textcolor{{{colour}}}{{{text}}}" if colour else text


def markdown_tables(tables: list[QualityTable]) -> str:
    """Every dataset as a pipe table: best in bold, second in italics (Markdown has no colours)."""
    out = [f"Means over images; {PARTIAL_MARK} over fewer images than the column's maximum.", ""]
    for table in tables:
        legend = ", ".join(f"{meaning} in {MD_MARKS[rank]}" for rank, meaning in table.marks)
        out += [f"## {_md(table.dataset_label)}", "", *([legend[0].upper() + legend[1:] + ".", ""] if legend else []),
                "| Method | " + " | ".join(f"QF{qf} {table.metric_labels[m]}{table.arrows[m]}" for qf, m in table.columns)
                + " |", "|---|" + "---:|" * len(table.columns)]
        for method in table.methods:
            cells = [_md_cell(table.cell(method, qf, metric)) for qf, metric in table.columns]
            out.append(f"| {_md(table.method_label(method))} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _md(text: str) -> str:
    return re.sub(r"([|\\*_`<>\[\]])", r"\\\1", str(text))


def _md_cell(cell: Cell | None) -> str:
    if cell is None:
        return "\u2013"
    text = cell.text + (PARTIAL_MARK if cell.partial else "")
    return {"best": f"**{text}**", "second": f"*{text}*"}.get(cell.rank, text)


def _any_partial(table: QualityTable) -> bool:
    return any(c.partial for c in table.cells.values())


def write_exports(folder: Path, frames: dict[str, pd.DataFrame], tables: list[QualityTable]) -> list[Path]:
    """Write `<name>.csv` for each frame, `table1_<dataset>.tex` per dataset and `table1.md`."""
    paths = [write_csv(frame, folder / f"{name}.csv") for name, frame in frames.items()]
    for table in tables:
        paths.append(atomic_write_text(folder / f"table1_{safe_component(table.dataset)}.tex", latex_table(table)))
    paths.append(atomic_write_text(folder / "table1.md", markdown_tables(tables)))
    return paths
