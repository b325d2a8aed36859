"""The report in a real browser: headless Chromium opens it from disk, logs no console message, and its
sorting and synchronised zoom work; a screenshot is kept in the run folder."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

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
