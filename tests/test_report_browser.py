"""The report in a real browser: headless Chromium opens it from disk, logs no console message, and its
sorting and synchronised zoom work; a screenshot is kept in the run folder. The report folder copied alone to
an empty folder, and the single-file report alone, load every image, style and script they use."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from reports import render_report

pytestmark = pytest.mark.slow

PROBE = """<script>
(function () {
  var out = {};
  var table = document.querySelector('table.per-image');
  var psnr = table.tHead.rows[0].cells[3];
  psnr.click();
  out.ascending = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[3].getAttribute('data-v'); });
  psnr.click();
  out.descending = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[3].getAttribute('data-v'); });
  var panel = document.querySelector('.cmp');
  var imgs = panel.querySelectorAll('.vp img');
  out.before = Array.prototype.map.call(imgs, function (i) { return i.style.width; });
  var vp = panel.querySelector('.vp');
  vp.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, bubbles: true, cancelable: true}));
  vp.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, bubbles: true, cancelable: true}));
  var r = vp.getBoundingClientRect();
  vp.dispatchEvent(new MouseEvent('mousemove', {clientX: r.right - 1, clientY: r.bottom - 1, bubbles: true}));
  out.after = Array.prototype.map.call(imgs, function (i) { return i.style.width; });
  out.left = Array.prototype.map.call(imgs, function (i) { return i.style.left; });
  out.zoom = panel.querySelector('.zoom-value').textContent;
  out.rendering = getComputedStyle(imgs[0]).imageRendering;
  out.pageWidth = document.documentElement.scrollWidth;
  out.windowWidth = window.innerWidth;
  document.body.setAttribute('data-probe', JSON.stringify(out));
}());
</script>
</body>"""


LOADS = """<script>
(function () {
  var images = Array.prototype.slice.call(document.images);
  images.forEach(function (img) { img.loading = 'eager'; });  // lazy ones too: the load event waits for them
  window.addEventListener('load', function () {
    document.body.setAttribute('data-loads', JSON.stringify({
      images: images.length,
      failed: images.filter(function (i) { return !i.complete || !i.naturalWidth; })
                    .map(function (i) { return i.getAttribute('src').slice(0, 200); }),
      styled: getComputedStyle(document.querySelector('header')).position,
      scripted: document.querySelector('.vp img').style.width !== ''}));  // report.js placed the crops
  });
}());
</script>
</body>"""


def chromium() -> str:
    """The Chromium executable (`.ci/run` installs Debian's package where it is missing)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does this before the tests)")
    return exe


def open_headless(exe: str, page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, page.resolve().as_uri()]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=180)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_in_headless_chromium(tmp_path, report_run_builder):
    exe = chromium()
    run_dir = report_run_builder(tmp_path / "run")
    index = render_report(run_dir)

    shot = run_dir / "report_screenshot.png"
    done = open_headless(exe, index, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,3000")
    assert console_messages(done.stderr) == [], "the report logged to the console"
    from PIL import Image, ImageStat

    with Image.open(shot) as img:
        assert img.size == (1400, 3000)
        assert max(ImageStat.Stat(img.convert("L")).stddev) > 10, "the screenshot is blank"

    probe = index.parent / "probe.html"
    probe.write_text(index.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    try:
        done = open_headless(exe, probe, tmp_path / "profile", "--dump-dom")
    finally:
        probe.unlink()
    assert console_messages(done.stderr) == [], "the report's scripts failed"
    match = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert match, "the probe did not run"
    result = json.loads(html.unescape(match.group(1)))
    values = [float(v) for v in result["ascending"]]
    assert values == sorted(values) and len(values) > 10
    assert [float(v) for v in result["descending"]] == sorted(values, reverse=True)
    # the wheel zoomed every tile of the panel alike, and the pointer moved every crop alike
    assert result["zoom"] == "1.6\u00d7"
    assert len(set(result["after"])) == 1 and result["after"] != result["before"]
    assert len(set(result["left"])) == 1 and float(result["left"][0].rstrip("px")) < 0
    assert result["rendering"] == "pixelated", "zoomed tiles must show pixels (8x8 blocks), not smoothing"
    assert result["pageWidth"] <= result["windowWidth"], "a table is wider than the page instead of scrolling"


def loads(exe: str, page: Path, profile: Path) -> dict:
    """Open `page` with a probe that loads every image (lazy ones too) and reports the ones that failed."""
    probe = page.with_name("probe-loads.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", LOADS), encoding="utf-8")
    try:
        done = open_headless(exe, probe, profile, "--virtual-time-budget=20000", "--dump-dom")
    finally:
        probe.unlink()
    assert console_messages(done.stderr) == [], "the copied report logged to the console"
    match = re.search(r'data-loads="([^"]*)"', done.stdout)
    assert match, "the load probe did not finish"
    return json.loads(html.unescape(match.group(1)))


def test_copied_report_and_single_file_load_everything_alone(tmp_path, report_run_builder):
    """`report/` copied to an empty folder (no run folder beside it), and `standalone.html` copied alone, show
    every image with their styles and scripts: no request fails, nothing is logged."""
    from bench.cli import main

    exe = chromium()
    run_dir = report_run_builder(tmp_path / "run")
    assert main(["report", str(run_dir), "--single-file"]) == 0
    copied = tmp_path / "elsewhere" / "supplement"
    shutil.copytree(run_dir / "report", copied)
    shutil.rmtree(run_dir)  # nothing of the run folder is left to reach
    alone = tmp_path / "mail" / "report.html"
    alone.parent.mkdir()
    shutil.move(copied / "standalone.html", alone)

    for page in (copied / "index.html", alone):
        result = loads(exe, page, tmp_path / "profile")
        assert result["images"] > 10 and result["failed"] == [], (page.name, result["failed"])
        assert result["styled"] == "sticky", f"{page.name}: the stylesheet did not load"
        assert result["scripted"], f"{page.name}: the script did not run"
    text = alone.read_text(encoding="utf-8")
    links = re.findall(r'(?:src|href)="([^"#][^"]*)"', text)
    assert links and all(link.startswith("data:") for link in links), [x[:60] for x in links if not x.startswith("data:")]
    assert "<style>" in text and "<script>" in text and 'src="static/' not in text
    # every link of the copied folder (downloads too) resolves inside it
    index = (copied / "index.html").read_text(encoding="utf-8")
    for link in re.findall(r'(?:src|href)="([^"#][^"]*)"', index):
        target = (copied / unquote(html.unescape(link))).resolve()
        assert target.is_file() and copied.resolve() in target.parents, link
