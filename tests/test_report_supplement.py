"""The report fit for a paper supplement: display names, booktabs LaTeX that compiles, QF axes at the run's QFs,
p-values only where the test can reach significance, a colour legend true for any number of methods, readable
configurations, no absolute paths, no duplicate tiles, printable tables."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
import subprocess
from pathlib import Path

import pytest

from bench.record import DatasetRecord, MethodRecord
from bench.store import ResultsStore
from reports import render_report
from reports.stats import paired_comparison

ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])(?:/[\w.+@-]+){2,}")  # /a/b... not inside a URL or a word
MIN_PAIRS = 6  # two-sided Wilcoxon signed-rank: the smallest p over n pairs is 2 / 2^n, below 0.05 from n = 6



@pytest.fixture(scope="module")
def two_methods(tmp_path_factory, report_run_builder):
    """A run of JPEG and CODiff on 8 images at QF 1, 5, 10, 20, with a method configuration and absolute paths
    in the stored records, as a real run keeps them."""
    root = tmp_path_factory.mktemp("supplement")
    run_dir = report_run_builder(root / "run", datasets={"live1": [f"i{k}.png" for k in range(8)]},
                                 methods={"jpeg": "jpeg", "codiff": "codiff"}, metrics={"psnr": False, "lpips": True},
                                 qfs=(1, 5, 10, 20), failures=False)
    weights = str(root / "home" / "me" / "weights" / "codiff.safetensors")
    with ResultsStore.in_run_dir(run_dir) as store:
        record = store.record()
        record.datasets = [DatasetRecord("live1", "LIVE-1")]
        record.methods = [
            MethodRecord("jpeg", "jpeg", "fp-jpeg", {"name": "jpeg", "blind": True, "steps": 0, "config": {},
                                                     "weights": []}),
            MethodRecord("codiff", "codiff", "fp-codiff",
                         {"name": "codiff", "blind": True, "steps": 1,
                          "config": {"cave": weights, "tile": {"size": 512, "overlap": 64}, "dtype": "fp16"},
                          "weights": [[weights, "ab" * 32]]})]
        store.set_record(record)
        store.set_skipped("metric", {"musiq": f"weights not found: {root}/home/me/.cache/musiq.pth is missing"})
    index = render_report(run_dir)
    html = index.read_text(encoding="utf-8")
    return {"run": run_dir, "root": root, "html": html, "text": _text(html), "report": index.parent}


def _text(html: str) -> str:
    """The page's text as a reader sees it (entities decoded, whitespace collapsed)."""
    parts: list[str] = []
    parser = HTMLParser(convert_charrefs=True)
    parser.handle_data = parts.append
    parser.feed(html)
    return " ".join(" ".join(parts).split())


def test_display_names_everywhere(two_methods):
    html, text = two_methods["html"], two_methods["text"]
    assert re.findall(r"<tr><th>([^<]*)</th>", html[html.index('class="results"'):])[:2] == ["JPEG", "CODiff"]
    assert "<h3>LIVE-1</h3>" in html and "Methods with results JPEG, CODiff" in text
    tex = (two_methods["report"] / "exports" / "table1_live1.tex").read_text()
    assert "\nJPEG &" in tex and "\nCODiff &" in tex and "LIVE-1" in tex
    svg = (two_methods["report"] / "plots" / "metric_vs_qf_live1.svg").read_text()
    assert "<!-- CODiff -->" in svg and "<!-- codiff -->" not in svg  # matplotlib names each text in a comment


def test_latex_is_booktabs_with_a_label_and_compiles(two_methods, tmp_path):
    tex = (two_methods["report"] / "exports" / "table1_live1.tex").read_text()
    spec = re.search(r"\\begin\{tabular\}\{([^}]*)\}", tex).group(1)
    assert "|" not in spec and "\\hline" not in tex and "\\vline" not in tex, "booktabs tables have no vertical rules"
    for rule in ("\\toprule", "\\midrule", "\\bottomrule", "\\cmidrule(lr){2-3}"):
        assert rule in tex
    assert "\\label{tab:results-live1}" in tex and "\\resizebox{\\linewidth}{!}{%" in tex  # 8 columns: scaled
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-recommended; .ci/run does this): "
                    "the LaTeX was checked structurally only")
    document = tmp_path / "doc.tex"
    document.write_text("\\documentclass{article}\\usepackage{booktabs}\\usepackage{xcolor}\\usepackage{graphicx}"
                        "\\begin{document}\n" + tex + "\nSee Table~\\ref{tab:results-live1}.\n\\end{document}\n")
    for _ in range(2):  # the second pass resolves \ref
        done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", document.name], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout[-2000:]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "undefined references" not in log and "Overfull \\hbox" not in log, "the table is wider than the page"


def test_wide_latex_tables_are_scaled_to_the_text_width(two_methods):
    from reports.exports import MAX_COLUMNS, latex_table
    from reports.rundata import RunData
    from reports.tables import quality_tables, summarize

    data = RunData.load(two_methods["run"])
    table = quality_tables(data, summarize(data.results))[0]
    assert len(table.columns) > MAX_COLUMNS and "\\resizebox{\\linewidth}{!}{%" in latex_table(table)
    del table.qfs[MAX_COLUMNS // len(table.metrics):]
    assert len(table.columns) == MAX_COLUMNS and "\\resizebox" not in latex_table(table)


def test_qf_axis_is_ticked_at_the_run_qfs_only(two_methods):
    svg = (two_methods["report"] / "plots" / "metric_vs_qf_live1.svg").read_text()
    ticks = re.findall(r"<g id=\"xtick_\d+\">\s*<g id=\"line2d_\d+\">.*?<!-- (.*?) -->", svg, re.DOTALL)
    assert ticks[:4] == ["1", "5", "10", "20"] and set(ticks) == {"1", "5", "10", "20"}, ticks
    assert "7.5" not in ticks and "12.5" not in ticks


def test_p_values_only_where_the_test_can_reach_significance(two_methods, tmp_path, report_run_builder):
    a = [1.0 + k for k in range(MIN_PAIRS)]
    assert paired_comparison(a[:-1], [0.0] * (MIN_PAIRS - 1), lower_better=False).can_reach() is False
    assert paired_comparison(a, [0.0] * MIN_PAIRS, lower_better=False).can_reach() is True
    # eight images: p-values are shown
    html = two_methods["html"]
    assert "Wilcoxon p =" in html and "cannot reach p" not in html
    # three images: none, and the page says why
    run_dir = report_run_builder(tmp_path / "run", datasets={"live1": ["a.png", "b.png", "c.png"]}, qfs=(5,),
                                 methods={"jpeg": "jpeg", "codiff": "codiff"}, metrics={"psnr": False},
                                 failures=False)
    html = render_report(run_dir).read_text()
    start = html.index('<table class="results paired"')
    assert "p=" not in html[start:html.index("</table>", start)]
    assert "cannot reach p &lt; 0.05 below 6 non-zero differences" in html


def test_colour_legend_names_only_the_marks_used(two_methods, tmp_path, report_run_builder):
    html = two_methods["html"]
    assert '<span class="best">Red</span>: better of the two' in html and 'class="second"' not in html
    tex = (two_methods["report"] / "exports" / "table1_live1.tex").read_text()
    assert "Better of the two in \\textcolor{red}{red}." in tex and "blue" not in tex
    three = report_run_builder(tmp_path / "three", datasets={"live1": ["a.png", "b.png"]}, qfs=(5,),
                               methods={"jpeg": "jpeg", "fbcnn": "fbcnn", "codiff": "codiff"},
                               metrics={"psnr": False}, failures=False)
    html = render_report(three).read_text()
    assert '<span class="best">Red</span>: best, <span class="second">Blue</span>: second' in html
    assert "Best in \\textcolor{red}{red}, second in \\textcolor{blue}{blue}." in (
        three / "report" / "exports" / "table1_live1.tex").read_text()


def test_configurations_are_readable_tables(two_methods):
    html = two_methods["html"]
    assert "<pre>" not in html, "the run configuration is a table, not a JSON dump"
    start = html.index('<section id="methods">')
    methods = html[start:html.index("</section>", start)]
    assert "<th>tile.size</th><td>512</td>" in methods and "<th>dtype</th><td>fp16</td>" in methods
    assert "codiff.safetensors" in methods
    for raw in ("{", "[", "&#34;", "&#39;", "None", "True"):
        assert raw not in methods, raw
    assert "<th>qf</th><td>1, 5, 10, 20</td>" in html


def test_no_absolute_paths_of_this_machine(two_methods):
    html = two_methods["html"]
    for root in (two_methods["root"], two_methods["run"], Path.home()):
        assert str(root) not in html
    text = two_methods["text"]
    assert not ABSOLUTE_PATH.findall(text), ABSOLUTE_PATH.findall(text)[:5]
    assert "weights not found: musiq.pth is missing" in text and "Run folder run" in text


def test_visual_comparison_shows_each_image_once(two_methods):
    html = two_methods["html"]
    panel = html[html.index('<div class="cmp" id="visual-0"'):html.index('<div class="cmp" id="visual-1"')]
    rows = re.findall(r'<div class="tiles"[^>]*>(.*?)</div>\s*(?=<div class="tiles"|</div>)', panel, re.DOTALL)
    first = re.findall(r"<figcaption><strong>(?:<a [^>]*>)?([^<]*)", rows[0])
    assert first == ["JPEG QF 1", "CODiff", "HQ (reference)"], first  # the JPEG output is the input, shown once
    assert "= JPEG output (the same pixels, shown once)" in rows[0]
    assert panel.count("HQ (reference)</a>") == 1 and len(rows) == 4
    sources = re.findall(r'<img src="([^"]+)"', panel)
    assert len(sources) == len(set(sources))


def test_tables_print_whole(two_methods):
    css = (two_methods["report"] / "static" / "report.css").read_text()
    assert "@media print" in css
    outside_pre = re.sub(r"pre \{[^}]*\}", "", css)
    assert "max-height" not in outside_pre, "a table in a fixed-height scroll box is cut off on paper"
    assert 'class="scroll tall"' not in two_methods["html"]
    js = (two_methods["report"] / "static" / "report.js").read_text()
    assert "beforeprint" in js  # folded tables open for printing
