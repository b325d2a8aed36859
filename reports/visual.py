"""Visual comparison panels (LQ / each method / HQ per QF) and the per-image results table.

Outputs and HQ images are linked under `report/files/` (copies of the run folder's files, made by the report).
The LQ is shown as the harness decoded it, saved losslessly under `report/visual/`: browsers decode a JPEG shown
smaller than its size with DCT scaling, which would make the LQ tile look unlike what the methods received.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.atomic import atomic_write_bytes
from bench.core.protocol import decode_jpeg
from reports.extras import href
from reports.rundata import RunData
from reports.tables import decimals, fmt, per_image_wide

DEFAULT_PER_DATASET = 2


@dataclass
class Tile:
    label: str
    href: str | None
    caption: str = ""
    missing: str = ""
    jpeg: str | None = None
    also: list[str] = field(default_factory=list)  # methods whose output is this very image

    @property
    def note(self) -> str:
        if not self.also:
            return ""
        return f"= {' = '.join(self.also)} output (the same pixels, shown once)"


@dataclass
class Panel:
    anchor: str
    dataset: str
    image: str
    width: int
    height: int
    notes: list[str]
    rows: list[tuple[int, list[Tile]]] = field(default_factory=list)

    @property
    def columns(self) -> int:
        """Tiles of the widest row: every row uses this grid, so that a tile stays above the same method's."""
        return max((len(tiles) for _, tiles in self.rows), default=1)

    @property
    def aspect(self) -> str:
        """The tiles' width / height: the image's, kept between portrait and wide limits."""
        return f"{min(max(self.width / max(self.height, 1), 0.6), 1.8):.3f}"


def choose_images(data: RunData, requested: list[str] | None) -> tuple[list[tuple[str, str]], list[str]]:
    """The (dataset, image) pairs to show and the requested names that match none.

    A request is an image name (in any dataset) or `dataset:image`; without requests, the first
    images by name of each dataset.
    """
    available = [(d, i) for d, i in data.images[["dataset", "image"]].itertuples(index=False)]
    if not requested:
        chosen = []
        for dataset in data.datasets:
            chosen += sorted((d, i) for d, i in available if d == dataset)[:DEFAULT_PER_DATASET]
        return chosen, []
    chosen, unknown = [], []
    for name in requested:
        hits = [(d, i) for d, i in available if i == name or f"{d}:{i}" == name]
        if not hits:
            unknown.append(name)
        chosen += [h for h in hits if h not in chosen]
    return chosen, unknown


def panels(data: RunData, chosen: list[tuple[str, str]], folder: Path) -> tuple[list[Panel], list[Path]]:
    """The panels of the chosen images, and the decoded LQ files written for them under `folder`.

    Each QF row shows the LQ input and each method's output, an image that repeats one shown before it in the
    row (the JPEG method returns its input) once, under every name it stands for; the HQ reference is shown
    once per panel, in its first row.
    """
    digits = _digits(data.results)
    written = []
    values = {k: g for k, g in data.results.groupby(["dataset", "image", "method", "qf"])}
    result = []
    for index, (dataset, image) in enumerate(chosen):
        info = data.images[(data.images["dataset"] == dataset) & (data.images["image"] == image)].iloc[0]
        panel = Panel(f"visual-{index}", dataset, image, int(info["width"]), int(info["height"]), _notes(info["notes"]))
        hq = data.run_file(info["hq_path"])
        lq = data.lq[(data.lq["dataset"] == dataset) & (data.lq["image"] == image)]
        out = data.outputs[(data.outputs["dataset"] == dataset) & (data.outputs["image"] == image)]
        for qf in data.qfs:
            shown: dict[str, Tile] = {}  # pixel digest -> the tile showing that image
            tiles = []
            lq_row = lq[lq["qf"] == qf]
            jpeg = data.run_file(lq_row.iloc[0]["path"]) if not lq_row.empty else None
            tile = Tile(f"JPEG QF {qf}", None, missing="no JPEG input stored")
            if jpeg is not None:
                try:
                    png = _decoded_png(jpeg, folder / f"{index}-qf{qf}.png")
                except (ValueError, OSError) as exc:
                    tile.missing = f"{jpeg.name}: cannot be decoded: {exc}"
                else:
                    written.append(png)
                    tile = Tile(tile.label, f"{folder.name}/{png.name}",
                                _bpp(int(lq_row.iloc[0]["bytes"]), panel.width, panel.height),
                                jpeg=href(data.run_dir, jpeg))
                    shown[_digest(png)] = tile
            tiles.append(tile)
            for method in data.method_order:
                row = out[(out["method"] == method) & (out["qf"] == qf)]
                path = data.run_file(row.iloc[0]["path"]) if not row.empty else None
                group = values.get((dataset, image, method, qf))
                caption = "" if group is None else " \u00b7 ".join(
                    f"{data.labels.metric(m)} {fmt(v, digits.get(m, 4))}"
                    for m, v in sorted(zip(group["metric"], group["value"]), key=lambda x: data.metrics.index(x[0])))
                label = data.labels.method(method)
                key = _digest(path) if path else None
                same = shown.get(key) if key else None
                if same is not None:
                    same.also.append(label)
                    same.caption = " \u00b7 ".join(filter(None, [same.caption, caption]))
                    continue
                tile = _tile(data, label, path, caption, _error(data, dataset, image, method, qf))
                if key:
                    shown[key] = tile
                tiles.append(tile)
            if not panel.rows:
                tiles.append(_tile(data, "HQ (reference)", hq, f"{panel.width} x {panel.height}", "HQ file missing"))
            panel.rows.append((qf, tiles))
        result.append(panel)
    return result, written


def _digest(path: Path) -> str:
    """What an image shows, as a hash of its decoded pixels (files of other formats or names can be equal)."""
    import cv2

    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        return f"unreadable:{path}"
    return hashlib.sha256(f"{pixels.shape}{pixels.dtype}".encode() + pixels.tobytes()).hexdigest()


def _decoded_png(jpeg: Path, target: Path) -> Path:
    """The JPEG decoded as the run engine decodes it, written as a lossless PNG."""
    import cv2

    rgb = decode_jpeg(jpeg.read_bytes())
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError(f"cannot encode the decoded {jpeg} as PNG")
    return atomic_write_bytes(target, buf.tobytes())


def _tile(data: RunData, label: str, path, caption: str, missing: str) -> Tile:
    return Tile(label, href(data.run_dir, path) if path else None, caption, "" if path else missing)


def _error(data: RunData, dataset: str, image: str, method: str, qf: int) -> str:
    errors = data.errors[(data.errors["dataset"] == dataset) & (data.errors["image"] == image)
                         & (data.errors["method"].isin([method, "*"])) & (data.errors["qf"].isin([qf, 0]))]
    return "; ".join(errors["message"].astype(str)) if not errors.empty else "no output stored"


def _bpp(size: int, width: int, height: int) -> str:
    return f"{size:,} bytes, {size * 8 / max(width * height, 1):.3f} bpp"


def _notes(raw) -> list[str]:
    try:
        notes = json.loads(raw) if isinstance(raw, str) else (raw or [])
    except ValueError:
        return [str(raw)]
    return [str(n) for n in notes] if isinstance(notes, list) else [str(notes)]


def _digits(results: pd.DataFrame) -> dict[str, int]:
    return {m: decimals(g["value"].tolist()) for m, g in results.groupby("metric")}


@dataclass
class ImageTable:
    """One dataset's per-image values: rows (image, QF, method), one column per metric."""

    dataset: str
    metrics: list[str]
    rows: list[dict] = field(default_factory=list)


def image_tables(data: RunData, panel_list: list[Panel]) -> list[ImageTable]:
    """Per-image values; the outputs of the images shown in the visual comparison are linked (the report
    carries copies of those only)."""
    wide = per_image_wide(data.results)
    digits = _digits(data.results)
    anchors = {(p.dataset, p.image): p.anchor for p in panel_list}
    outputs = {(r.dataset, r.image, r.method, int(r.qf)): r.path for r in data.outputs.itertuples()}
    tables = []
    for dataset in data.datasets:
        part = wide[wide["dataset"] == dataset]
        if part.empty:
            continue
        metrics = [m for m in data.metrics if m in part.columns and part[m].notna().any()]
        table = ImageTable(dataset, metrics)
        order = {m: i for i, m in enumerate(data.method_order)}
        part = part.assign(_o=part["method"].map(order)).sort_values(["image", "qf", "_o"])
        for r in part.to_dict("records"):
            anchor = anchors.get((dataset, r["image"]))
            path = data.run_file(outputs.get((dataset, r["image"], r["method"], int(r["qf"])))) if anchor else None
            table.rows.append({
                "image": r["image"], "qf": int(r["qf"]), "method": data.labels.method(r["method"]),
                "anchor": anchor, "href": href(data.run_dir, path) if path else None,
                "values": [(_sort_key(r[m]), fmt(r[m], digits.get(m, 4))) for m in metrics]})
        tables.append(table)
    return tables


def _sort_key(value) -> str:
    return "" if value is None or not math.isfinite(value) else repr(float(value))
