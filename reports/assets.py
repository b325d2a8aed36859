"""A report that travels: the run folder's files the page links are copied into `report/files/`, and the page can
be written as one HTML file with every image, style, script and download inlined as a data URI."""

from __future__ import annotations

import base64
import filecmp
import html
import mimetypes
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

from bench.core.atomic import atomic_path, atomic_write_text
from reports.extras import ASSETS

LOCAL_LINK = re.compile(r'(?P<attr>\b(?:src|href))="(?P<url>[^"#:?]+)"')  # no scheme, no fragment: a file
STYLESHEET = re.compile(r'<link rel="stylesheet" href="(?P<url>[^"]+)">')
SCRIPT = re.compile(r'<script src="(?P<url>[^"]+)"></script>')
MAX_DOWNLOAD_BYTES = 8 * 2**20  # a linked file (not an image) above this is named in the single file, not embedded
STANDALONE = "standalone.html"


def local_links(page: str) -> list[str]:
    """Every file the page links or loads, as paths relative to its folder."""
    return list(dict.fromkeys(unquote(html.unescape(m.group("url"))) for m in LOCAL_LINK.finditer(page)))


def copy_assets(page: str, run_dir: Path, out: Path) -> list[Path]:
    """Copy each `files/<path>` the page links from `<run_dir>/<path>` to `<out>/files/<path>` (atomically, only
    when it changed); return the copies."""
    root = run_dir.resolve()
    copies = []
    for link in local_links(page):
        if not link.startswith(f"{ASSETS}/"):
            continue
        source = (run_dir / link[len(ASSETS) + 1:]).resolve()
        if root not in source.parents or not source.is_file():
            continue
        target = out / link
        if not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        copies.append(target)
    return copies


def single_file(index: Path, target: Path) -> Path:
    """Write the page `index` as one file: styles and scripts inline, every local image and download a data URI
    (a download above MAX_DOWNLOAD_BYTES stays a name, its link removed, so that nothing points outside)."""
    folder = index.parent
    page = index.read_text(encoding="utf-8")
    page = STYLESHEET.sub(lambda m: f"<style>\n{_read(folder, m['url'])}</style>", page)
    page = SCRIPT.sub(lambda m: f"<script>\n{_read(folder, m['url'])}</script>", page)

    def inline(match: re.Match) -> str:
        name = unquote(html.unescape(match["url"]))
        path = folder / name
        if not path.is_file() or (match["attr"] == "href" and path.stat().st_size > MAX_DOWNLOAD_BYTES):
            return f'title="{html.escape(Path(name).name)} is not embedded in this single file"'
        uri = data_uri(path)
        if match["attr"] == "href":
            return f'href="{uri}" download="{html.escape(path.name)}"'
        return f'src="{uri}"'

    return atomic_write_text(target, LOCAL_LINK.sub(inline, page))


def data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _read(folder: Path, url: str) -> str:
    return (folder / unquote(url)).read_text(encoding="utf-8")
