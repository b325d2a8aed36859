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
PARTIAL_MARK = "\u2020"


def latex_escape(text: str) -> str:
    return LATEX_SPECIAL.sub(lambda m: LATEX_REPLACE.get(m.group(1), "\\" + m.group(1)), str(text))


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g"))


def latex_table(table: QualityTable) -> str:
    """One dataset as a booktabs table; needs \\usepackage{booktabs} and \\usepackage{xcolor}."""
    k = len(table.metrics)
    arrows = {m: r"$\downarrow$" if table.arrows[m] == "\u2193" else r"$\uparrow$" for m in table.metrics}
    lines = ["% Requires \\usepackage{booktabs} and \\usepackage{xcolor}.",
             "\\begin{table}[t]", "\\centering",
             (f"\\caption{{{latex_escape(table.dataset_label)}: mean over images. "
              "Best in \\textcolor{red}{red}, second in \\textcolor{blue}{blue}.}"),
             "\\begin{tabular}{l" + ("|" + "c" * k) * len(table.qfs) + "}", "\\toprule",
             " & ".join(["QF"] + [f"\\multicolumn{{{k}}}{{c}}{{{qf}}}" for qf in table.qfs]) + " \\\\",
             " ".join(f"\\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(table.qfs))),
             " & ".join(["Method"] + [f"{latex_escape(table.metric_labels[m])}{arrows[m]}" for _, m in table.columns])
             + " \\\\", "\\midrule"]
    for method in table.methods:
        cells = [_latex_cell(table.cell(method, qf, metric)) for qf, metric in table.columns]
        lines.append(" & ".join([latex_escape(method)] + cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if _any_partial(table):
        lines.append("\\par{\\footnotesize $^\\dagger$ over fewer images than the column's maximum}")
    lines += ["\\end{table}", ""]
    return "\n".join(lines)


def _latex_cell(cell: Cell | None) -> str:
    if cell is None:
        return "--"
    text = cell.text + ("$^\\dagger$" if cell.partial else "")
    colour = LATEX_COLOURS.get(cell.rank)
    return f"\\textcolor{{{colour}}}{{{text}}}" if colour else text


def markdown_tables(tables: list[QualityTable]) -> str:
    """Every dataset as a pipe table: best in bold, second in italics (Markdown has no colours)."""
    out = [("Means over images. Best in **bold**, second in *italics*; "
            f"{PARTIAL_MARK} over fewer images than the column's maximum."), ""]
    for table in tables:
        out += [f"## {_md(table.dataset_label)}", "",
                "| Method | " + " | ".join(f"QF{qf} {table.metric_labels[m]}{table.arrows[m]}" for qf, m in table.columns)
                + " |", "|---|" + "---:|" * len(table.columns)]
        for method in table.methods:
            cells = [_md_cell(table.cell(method, qf, metric)) for qf, metric in table.columns]
            out.append(f"| {_md(method)} | " + " | ".join(cells) + " |")
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
