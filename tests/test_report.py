"""The HTML report, plots and exports rendered from a synthetic run folder written through the results store."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest

from bench.core.paper import table1, table2
from bench.store import ResultsStore
from reports import render_report
from reports.paper import compare_quality

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]


class Page(HTMLParser):
    """Elements of a page as (tag, attributes, text inside) for structural checks."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.cells: list[tuple[dict[str, str], list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag in ("td", "th"):
            self._cell = []
            self.cells.append((dict(attrs), self._cell))

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def tags(self, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == name]


def _profile_and_cave(run_dir: Path) -> None:
    """Optional inputs as `codiff-bench profile` and `cave-analysis` leave them."""
    from PIL import Image

    (run_dir / "profile").mkdir()
    (run_dir / "profile" / "profile.json").write_text(json.dumps({"notes": ["MACs counted with fvcore"], "rows": [
        {"method": "codiff", "steps": 1, "params_g": 1.01, "macs_t": 7.5, "time_s": 12.0, "device": "cpu <x>"},
        {"method": "jpeg", "steps": 0, "params_g": 0.0, "macs_t": 0.0, "time_s": 0.001, "device": "cpu"}]}))
    cave = run_dir / "analyses" / "cave"
    cave.mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 30, 30)).save(cave / "tsne.png")
    (cave / "tsne.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="3"></svg>')
    Image.new("RGB", (40, 30), (30, 30, 200)).save(cave / "qf_mse.png")
    (cave / "silhouette.csv").write_text("checkpoint,overall,unseen\ndual,0.41,0.22\nexplicit,0.18,0.05\n")
    (cave / "broken.json").write_text("{not json")
    (cave / "samples.csv").write_text("qf,estimate\n" + "".join(f"{q},{q + 1}\n" for q in range(150)))
    (cave / "embeddings.npz").write_bytes(b"PK")
    (cave / "summary.json").write_text(json.dumps({
        "title": "CaVE: separation of compression levels",
        "captions": {"tsne.png": "t-SNE <of> CaVE embeddings", "silhouette.csv": "Silhouette per checkpoint"},
        "data": [{"file": "embeddings.npz", "caption": "Mean-pooled embeddings"}],
        "notes": ["dual separates QFs better"]}))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, report_run_builder):
    run_dir = report_run_builder(tmp_path_factory.mktemp("report") / "run")
    _profile_and_cave(run_dir)
    before = hashlib.sha256((run_dir / "results.sqlite").read_bytes()).hexdigest()
    index = render_report(run_dir)
    text = index.read_text(encoding="utf-8")
    return {"run": run_dir, "index": index, "html": text, "page": Page(text), "db_hash": before}


def _means(run_dir: Path) -> pd.DataFrame:
    with ResultsStore.in_run_dir(run_dir, readonly=True) as store:
        return store.results_frame().groupby(["dataset", "method", "qf", "metric"])["value"].mean()


def test_report_is_written_where_the_run_engine_expects(rendered):
    assert rendered["index"] == rendered["run"] / "report" / "index.html"
    assert not list(rendered["run"].rglob(".tmp-*")), "a temporary file was left behind"
    digest = hashlib.sha256((rendered["run"] / "results.sqlite").read_bytes()).hexdigest()
    assert digest == rendered["db_hash"], "rendering changed the results store"


def test_table1_marks_best_red_and_second_blue_per_column(rendered):
    page, means = rendered["page"], _means(rendered["run"])
    tables = [a for a in page.tags("table") if "results" in a.get("class", "") and "paired" not in a.get("class", "")]
    assert [t["data-dataset"] for t in tables] == ["live1", "sample"]
    html = rendered["html"]
    start = html.index('data-dataset="live1"')
    live = html[start:html.index("</table>", start)]
    rows = {m: re.findall(r"<td class=\"num ([a-z ]*?)\s*(?:group-start)?\s*\" title=\"([^\"]*)\">([^<]*)", r)
            for m, r in re.findall(r"<tr><th>([^<]*)</th>(.*?)</tr>", live, re.DOTALL)}
    methods = ["JPEG", "FBCNN", "CODiff", "x&amp;&lt;i&gt;y&lt;/i&gt;$"]
    assert list(rows) == methods
    columns = [(q, m) for q in (5, 10) for m in ("psnr", "ssim", "psnr_b", "lpips")]
    real = ["jpeg", "fbcnn", "codiff", "x&<i>y</i>$"]
    for col, (qf, metric) in enumerate(columns):
        values = {name: means[("live1", name, qf, metric)] for name in real}
        order = sorted(values, key=values.get, reverse=metric != "lpips")
        marks = {name: rows[label][col][0].strip() for name, label in zip(real, methods)}
        assert marks[order[0]] == "best" and marks[order[1]] == "second", (qf, metric, marks)
        assert all(marks[n] == "" for n in order[2:])
        shown = float(rows[methods[real.index(order[0])]][col][2])
        assert shown == pytest.approx(values[order[0]], abs=1e-2)
        assert "95% bootstrap CI [" in rows[methods[0]][col][1]
    assert "LPIPS&nbsp;\u2193" in live and "PSNR&nbsp;\u2191" in live
    # codiff failed one unit at QF 10: its means there are over fewer images, and the page says so
    assert "fewer images" in rows["CODiff"][4][1] and "fewer images" not in rows["CODiff"][0][1]


def test_text_from_files_and_configs_is_escaped(rendered):
    html, page = rendered["html"], rendered["page"]
    for raw in HOSTILE + ["<b>bold</b>", "<i>y</i>", "<b>x</b>", "<desc>", "<of>", "cpu <x>"]:
        assert raw not in html, f"{raw} reached the page as markup"
    text = "".join(page.text)
    for raw in HOSTILE:
        assert f"{raw}.png" in text, f"{raw}.png is not shown as text"
    assert "MethodError: out of memory <b>bold</b>" in text
    assert [a.get("src") for a in page.tags("script")] == ["static/report.js"]
    assert not any(k.startswith("on") for _, attrs in page.elements for k in attrs)
    assert all(a.get("src") != "x" for a in page.tags("img"))
    assert not page.tags("i") and not page.tags("b")


def test_every_link_resolves_to_a_local_file(rendered):
    page, report = rendered["page"], rendered["index"].parent
    ids = {a["id"] for _, a in page.elements if "id" in a}
    links = [a["href"] for a in page.tags("a") + page.tags("link")] + [a["src"] for a in page.tags("img") + page.tags("script")]
    assert len(links) > 50
    for link in links:
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc, f"{link} leaves the report folder for the network"
        if link.startswith("#"):
            assert link[1:] in ids, link
            continue
        target = (report / unquote(parsed.path)).resolve()
        assert target.is_file(), f"{link} does not resolve"
        assert report.resolve() in target.parents, f"{link} leaves the report folder: it breaks when copied"
        if link.startswith("files/"):  # the report's copy of a run file, byte for byte
            assert target.read_bytes() == (rendered["run"] / unquote(link[len("files/"):])).read_bytes()
    # the visual comparison shows LQ, every method and HQ for each chosen image
    images = [a["src"] for a in page.tags("img")]
    assert any(s.startswith("visual/") for s in images) and any(s.startswith("files/hq/") for s in images)
    assert any(s.startswith("files/outputs/") for s in images)
    assert any(a["href"].startswith("files/lq/") and a["href"].endswith(".jpg") for a in page.tags("a"))


def test_lq_tiles_show_the_jpeg_as_the_harness_decodes_it(rendered):
    import cv2

    from bench.core.protocol import decode_jpeg

    html = rendered["html"]
    report = rendered["index"].parent
    tile, jpeg = re.search(r'<img src="(visual/[^"]+)".*?href="(files/lq/[^"]+\.jpg)"', html, re.DOTALL).groups()
    shown = cv2.imread(str(report / tile))[:, :, ::-1]
    expected = decode_jpeg((report / unquote(jpeg)).read_bytes())
    assert np.array_equal(shown, expected)


def test_header_shows_provenance_skips_and_failures(rendered):
    text = " ".join(rendered["page"].text)
    for expected in ("0123abcd (uncommitted changes)", "weights not found: musiq.pth is missing <b>x</b>",
                     "supir", "not a readable image (unknown or corrupt format)", "grayscale expanded",
                     "opencv", "2 failed units", "ab" * 32):
        assert expected in text, expected


def test_paper_comparison_matches_names_and_values(rendered):
    frame = pd.read_csv(rendered["run"] / "report" / "exports" / "paper_comparison.csv")
    means = _means(rendered["run"])
    row = frame[(frame["method"] == "jpeg") & (frame["qf"] == 5) & (frame["metric"] == "lpips")].iloc[0]
    assert row["paper"] == pytest.approx(0.4384) and row["paper_method"] == "JPEG"
    assert row["measured"] == pytest.approx(means[("live1", "jpeg", 5, "lpips")], rel=1e-5)
    assert row["difference"] == pytest.approx(row["measured"] - 0.4384, rel=1e-6)
    assert set(frame["method"]) == {"jpeg", "fbcnn", "codiff"}  # cave-small has no paper counterpart
    assert set(frame["metric"]) == {"lpips"} and set(frame["dataset"]) == {"live1"}
    assert "Comparison with the paper" in rendered["html"] and ">CODiff<" in rendered["html"]


def test_paper_tables_load_in_our_names():
    t1, t2 = table1(), table2()
    assert set(t1["dataset"]) == {"live1", "urban100", "div2k-val"}
    assert {"jpeg", "fbcnn", "codiff", "diffbir", "osediff", "supir"} <= set(t1["method"])
    assert set(t1["metric"]) == {"lpips", "dists", "musiq", "maniqa", "clipiqa"}
    codiff = t1[(t1["dataset"] == "live1") & (t1["method"] == "codiff") & (t1["qf"] == 5) & (t1["metric"] == "lpips")]
    assert len(codiff) == 1
    assert t2.set_index("method").loc["codiff", "params_g"] == pytest.approx(1.00)
    summary = pd.DataFrame([("live1", "ours", 10, "dists", 0.2, 0.19, 0.3, 29)],
                           columns=["dataset", "method", "qf", "metric", "mean", "ci_low", "ci_high", "n"])
    hit = compare_quality(summary, {"ours": "fbcnn"})
    assert hit["paper"].tolist() == [pytest.approx(0.1785)] and hit["paper_in_ci"].tolist() == [False]


def test_paired_comparison_against_the_best_method(rendered):
    from scipy.stats import wilcoxon

    frame = pd.read_csv(rendered["run"] / "report" / "exports" / "paired_comparison.csv")
    with ResultsStore.in_run_dir(rendered["run"], readonly=True) as store:
        results = store.results_frame()
    col = results[(results["dataset"] == "live1") & (results["qf"] == 5) & (results["metric"] == "psnr")]
    values = col.pivot_table(index="image", columns="method", values="value")
    best = values.mean().idxmax()
    rows = frame[(frame["dataset"] == "live1") & (frame["qf"] == 5) & (frame["metric"] == "psnr")]
    assert set(rows["reference"]) == {best} and best not in set(rows["method"])
    row = rows[rows["method"] == "fbcnn"].iloc[0]
    diff = values["fbcnn"] - values[best]
    assert row["wins"] == int((diff > 0).sum()) and row["n"] == len(diff)
    assert row["win_rate"] == pytest.approx((diff > 0).mean())
    assert row["p_wilcoxon"] == pytest.approx(wilcoxon(diff).pvalue)
    assert row["mean_improvement"] == pytest.approx(diff.mean())
    # three images per column here: too few for the test to reach 0.05, so the page gives the reason, no p-value
    assert "Paired comparison" in rendered["html"] and "cannot reach p &lt; 0.05" in rendered["html"]
    assert "Wilcoxon p =" not in rendered["html"]


def test_exports_csv_latex_markdown(rendered):
    exports = rendered["run"] / "report" / "exports"
    with ResultsStore.in_run_dir(rendered["run"], readonly=True) as store:
        n_values = len(store.results_frame())
    assert len(pd.read_csv(exports / "results_long.csv")) == n_values
    wide = pd.read_csv(exports / "summary_wide.csv")
    assert {"psnr@qf5", "lpips@qf10"} <= set(wide.columns) and len(wide) == 8
    per_image = pd.read_csv(exports / "results_wide.csv")
    assert {"image", "qf", "method", "psnr", "lpips"} <= set(per_image.columns)
    summary = pd.read_csv(exports / "summary_long.csv")
    one_image = summary["dataset"] == "sample"
    assert summary.loc[one_image, "ci_low"].isna().all()
    ci = summary[~one_image]
    assert (ci["ci_low"] <= ci["mean"] + 1e-9).all() and (ci["mean"] <= ci["ci_high"] + 1e-9).all()
    tex = (exports / "table1_live1.tex").read_text()
    for token in ("\\toprule", "\\midrule", "\\bottomrule", "\\cmidrule(lr){2-5}", "\\multicolumn{4}{c}{5}",
                  "LPIPS$\\downarrow$", "PSNR$\\uparrow$", "x\\&<i>y</i>\\$", "$^\\dagger$"):
        assert token in tex, token
    best = _means(rendered["run"])[("live1", "x&<i>y</i>$", 5, "psnr")]
    assert f"\\textcolor{{red}}{{{best:.2f}}}" in tex and "\\textcolor{blue}{" in tex
    md = (exports / "table1.md").read_text()
    assert "| QF5 PSNR\u2191" in md and "x&\\<i\\>y\\</i\\>$" in md and f"**{best:.2f}**" in md


def test_plots_are_png_and_svg(rendered):
    from PIL import Image

    plots = rendered["run"] / "report" / "plots"
    for stem in ("metric_vs_qf_live1", "metric_vs_qf_sample", "complexity"):
        with Image.open(plots / f"{stem}.png") as img:
            assert img.width > 300 and img.height > 150
        assert (plots / f"{stem}.svg").read_text().lstrip().startswith("<?xml")


def test_profile_and_cave_sections(rendered):
    html, text = rendered["html"], " ".join(rendered["page"].text)
    assert "Complexity (profile)" in text and "CaVE: separation of compression levels" in text
    assert html.index("t-SNE &lt;of&gt;") < html.index("qf_mse.png")  # the summary's order first
    assert html.index("Silhouette per checkpoint") < html.index("samples.csv")
    assert "150 rows (the first 100 shown)" in text and "Mean-pooled embeddings" in text
    assert 'href="files/analyses/cave/embeddings.npz"' in html
    assert "t-SNE <of> CaVE embeddings" in text and "dual separates QFs better" in text
    assert 'src="files/analyses/cave/tsne.png"' in html and 'href="files/analyses/cave/tsne.svg"' in html
    assert 'src="files/analyses/cave/qf_mse.png"' in html and "0.41" in text
    assert "analyses/cave/broken.json: cannot be read" in text
    assert "MACs counted with fvcore" in text and "paper_params_g" in text
    # CODiff: 1.01 G measured against the paper's 1.00 G
    assert re.search(r"<td>1\.01</td>.*?<td>1</td>.*?<td>0\.01</td>", html, re.DOTALL)


def test_minimal_run_jpeg_only_one_image(tmp_path, report_run_builder):
    run_dir = report_run_builder(tmp_path / "run", datasets={"sample": ["only.png"]}, methods={"jpeg": "jpeg"},
                                 metrics={"psnr": False, "ssim": False, "psnr_b": False}, qfs=(10,), failures=False)
    index = render_report(run_dir)
    html = index.read_text()
    assert "n/a (one image)" in html and 'class="num best' not in html
    assert "No method, dataset, QF and metric of this run appears in the paper" in html
    assert "Nothing to compare" in html and "Nothing was skipped." in html and "No image failed." in html
    assert "CaVE analysis" not in html
    assert (index.parent / "exports" / "table1_sample.tex").is_file()


def test_cli_reference_images_and_stale_files(tmp_path, report_run_builder):
    from bench.cli import main

    run_dir = report_run_builder(tmp_path / "run", datasets={"live1": ["a.png", "b.png", "c.png"]}, qfs=(5,),
                                 metrics={"psnr": False, "lpips": True}, failures=False)
    stale = run_dir / "report" / "plots" / "metric_vs_qf_gone.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    assert main(["report", str(run_dir), "--images", "b.png", "nope.png"]) == 2  # a name of no image: refused
    assert not (run_dir / "report" / "index.html").exists()
    assert main(["report", str(run_dir), "--reference", "fbcnn", "--images", "b.png", "live1:c.png"]) == 0
    html = (run_dir / "report" / "index.html").read_text()
    assert "Reference in every column: <strong>FBCNN</strong>" in html
    assert re.findall(r"<h3>LIVE1: ([^<]*?) <span", html) == ["b.png", "c.png"]
    assert not stale.exists()
    assert main(["report", str(run_dir), "--reference", "nosuch"]) == 2
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_bootstrap_and_paired_statistics():
    from reports.stats import bootstrap_ci, paired_comparison

    values = np.arange(20, dtype=float)
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high and high - low < 10
    assert bootstrap_ci(values) == (low, high)  # fixed seed: the same numbers on every render
    assert all(np.isnan(bootstrap_ci(np.array([1.0]))))
    p = paired_comparison(np.array([0.1, 0.2, 0.3, 0.2]), np.array([0.2, 0.2, 0.4, 0.1]), lower_better=True)
    assert (p.wins, p.ties, p.losses) == (2, 1, 1) and p.mean_diff == pytest.approx(0.025)
    same = paired_comparison(np.ones(5), np.ones(5), lower_better=False)
    assert same.p_value == 1.0 and same.win_rate == 0.0


def test_protocol_quality_row_names_the_run_qfs_and_the_figure_note_only_present_sections(tmp_path, report_run_builder):
    run_dir = report_run_builder(tmp_path / "run", datasets={"sample": ["only.png"]}, methods={"jpeg": "jpeg"},
                                 metrics={"psnr": False}, qfs=(5, 10), failures=False)
    with ResultsStore.in_run_dir(run_dir) as store:  # as the run engine stores it: quality left unbound
        assert store.record().protocol["quality"] is None
    html = render_report(run_dir).read_text()
    assert "<th>quality</th><td>QF 5, 10 (one JPEG per quality factor)</td>" in html
    text = " ".join(" ".join(Page(html).text).split())
    assert "More figures in their own sections below: Rate-quality ." in text and "Complexity" not in text

    (run_dir / "analyses" / "cave").mkdir(parents=True)
    (run_dir / "analyses" / "cave" / "summary.json").write_text(json.dumps({"title": "CaVE analysis"}))
    text = " ".join(" ".join(Page(render_report(run_dir).read_text()).text).split())
    assert "More figures in their own sections below: Rate-quality , CaVE analysis ." in text
    assert "Complexity" not in text


def test_wide_tables_scroll_inside_their_section(rendered):
    """Results, paper and paired tables grow with methods, QFs and metrics: each sits in a horizontal scroller."""
    html = rendered["html"]
    for kind in ('<table class="results"', '<table class="results paired"', '<table class="data sortable">'):
        assert html.count(kind) and len(re.findall(r'<div class="scroll[^"]*">\s*' + kind, html)) == html.count(kind), kind
