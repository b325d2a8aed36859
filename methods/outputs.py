"""Precomputed restorations from any tool, so that methods without a native adapter join a benchmark.

The official JDEC, PromptCIR, DiffBIR, SUPIR and OSEDiff scripts write a folder of images per dataset and
QF; this method reads the file for each image through a filename template. The run engine tells it which
image it is restoring (the request's `unit`). A missing file or one of the wrong size is a per-image error
naming the path: restorations are never resized.

Config:
  root           the folder the tool wrote (needed when the template uses {root})
  template       filename template, default "{root}/{dataset}/qf{qf}/{stem}.png". Placeholders:
                 {root}; {dataset} (the run's dataset name, or its entry in `dataset_names`); {qf};
                 {image} (the image id: its path inside the dataset, extension included, e.g. "sub/a.bmp");
                 {name} (the id without its extension, e.g. "sub/a"); {stem} (the harness's file-safe name,
                 equal to {name} for plain names: the LQ files the harness writes are <stem>.jpg).
  dataset_names  {run dataset name: folder name the tool used}, e.g. {live1: LIVE1}
Where the template's file is absent, the same name with another image extension is read instead (a tool
that writes .jpg where the template says .png); JPEG files are decoded as the harness decodes its LQ files.
Cached results are keyed on this configuration, not on the files' contents: after replacing the files, use
a new `root` or run folder.
"""

from __future__ import annotations

import glob
import itertools
import string
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from methods.base import Method, MethodError, RestoreRequest, Unit


@dataclass(frozen=True)
class TemplateOptions:
    """How restored files are found: a filename template and the tool's names for the datasets."""

    template: str = ""
    dataset_names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputsOptions(TemplateOptions):
    """The `outputs` method's configuration (see the module docstring)."""

    template: str = "{root}/{dataset}/qf{qf}/{stem}.png"
    root: str | None = None


def check_template(text: str, allowed: set[str], what: str) -> None:
    """Refuse placeholders outside `allowed` (and attribute or index access), naming the template."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise MethodError(f"{what} {text!r} is not a valid template: {exc}") from exc
    bad = sorted({name for _, name, _, _ in parsed if name is not None and name not in allowed})
    if bad:
        raise MethodError(f"{what} {text!r} uses unknown placeholders {bad}; known: {sorted(allowed)} "
                          "(write {{ and }} for literal braces)")


_PER_IMAGE = "\0"  # stands for the per-image placeholders when only the folder is wanted


class PrecomputedOutputs(Method):
    """Reads each restoration from a file another tool wrote."""

    blind = True
    steps = 0
    description = "precomputed restorations read from files"
    placeholders: ClassVar[set[str]] = {"root", "dataset", "qf", "image", "name", "stem"}
    config_class = OutputsOptions
    example: ClassVar[dict[str, Any]] = {"name": "jdec", "root": "restored/jdec", "dataset_names": {"live1": "LIVE1"}}

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        check_template(self.opts.template, self.placeholders, f"{self.name}: template")
        if "{root" in self.opts.template and not getattr(self.opts, "root", None):
            raise MethodError(f"{self.name}: the template {self.opts.template!r} uses {{root}}: set `root` to the "
                              "folder of restored images")

    # -- locating files ------------------------------------------------------------------------------
    def template_values(self, unit: Unit) -> dict[str, Any]:
        """The placeholder values for one unit."""
        return {"root": str(Path(getattr(self.opts, "root", None) or ".").expanduser()),
                "dataset": self.opts.dataset_names.get(unit.dataset, unit.dataset),
                "qf": int(unit.qf), "image": unit.image, "name": str(PurePosixPath(unit.image).with_suffix("")),
                "stem": unit.stem}

    def expected_path(self, unit: Unit) -> Path:
        """Where the restoration of `unit` must be."""
        return Path(self.opts.template.format(**self.template_values(unit))).expanduser()

    def found_path(self, unit: Unit) -> Path:
        """The restoration of `unit`: the template's file, else the first file that differs from it only by an
        image extension (case ignored), else the template's path (absent)."""
        from bench.core.imageio import IMAGE_SUFFIXES

        expected = self.expected_path(unit)
        if expected.is_file() or not expected.parent.is_dir():
            return expected
        others = [p for p in expected.parent.glob(glob.escape(expected.stem) + ".*")
                  if p.stem == expected.stem and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        return min(others, key=lambda p: (IMAGE_SUFFIXES.index(p.suffix.lower()), p.name), default=expected)

    # -- work ----------------------------------------------------------------------------------------
    def restore(self, request: RestoreRequest):
        if request.unit is None:
            raise MethodError(f"{self.name}: restores units of a run only (the request names no unit)")
        if request.lq.shape[0] != 1:
            raise MethodError(f"{self.name}: restores one image at a time, got a batch of {request.lq.shape[0]}")
        return self.read(self.found_path(request.unit), request).to(request.lq.device)

    def read(self, path: Path, request: RestoreRequest):
        """The restoration in `path` as a 1 x 3 x H x W tensor, checked against the size of the request's LQ."""
        from bench.core.imageio import ImageError, to_tensor

        unit = request.unit
        what = f"image {unit.image!r} of {unit.dataset!r} at QF {unit.qf}"
        if not path.is_file():
            raise MethodError(f"{path}: restoration not found for {what} (template {self.opts.template!r})")
        try:
            rgb = _decode(path)
        except ImageError as exc:
            raise MethodError(f"restoration for {what} is unreadable: {exc}") from exc
        height, width = request.lq.shape[-2:]
        if rgb.shape[:2] != (height, width):
            raise MethodError(f"{path}: restoration is {rgb.shape[1]}x{rgb.shape[0]} but {what} is "
                              f"{width}x{height} under this protocol (restorations are never resized)")
        return to_tensor(rgb)

    def input_folders(self, datasets: list[str], qfs: list[int]) -> dict[Path, list[str]]:
        """The template's folder for each dataset and QF: the path up to its first per-image placeholder."""
        folders: dict[Path, list[str]] = {}
        for dataset in datasets:
            for qf in qfs:
                unit = Unit(dataset, _PER_IMAGE, _PER_IMAGE, qf, Path(), Path())
                parts = self.expected_path(unit).parts
                folder = Path(*itertools.takewhile(lambda part: _PER_IMAGE not in part, parts))
                folders.setdefault(folder, []).append(f"restorations of {dataset} at QF {qf}")
        return folders

    def preflight(self, units: list[Unit]) -> list[str]:
        """An absent `root`, and one line per dataset and QF with absent files: how many, the first few paths."""
        root = getattr(self.opts, "root", None)
        if root and not Path(root).expanduser().is_dir():
            return [f"folder {Path(root).expanduser()} not found (`root`: the restorations of this method)"]
        missing: dict[tuple[str, int], list[Path]] = {}
        totals: dict[tuple[str, int], int] = {}
        for unit in units:
            block = (unit.dataset, int(unit.qf))
            totals[block] = totals.get(block, 0) + 1
            path = self.found_path(unit)
            if not path.is_file():
                missing.setdefault(block, []).append(path)
        lines = []
        for (dataset, qf), paths in missing.items():
            shown = ", ".join(str(p) for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
            lines.append(f"{dataset} qf{qf}: {len(paths)} of {totals[(dataset, qf)]} restorations missing "
                         f"(template {self.opts.template!r}): {shown}")
        return lines


def _decode(path: Path):
    """H x W x 3 uint8 RGB: a JPEG file as the harness decodes JPEG, any other image with `read_rgb8`."""
    from bench.core.imageio import ImageError, read_rgb8
    from bench.core.protocol import ProtocolError, decode_jpeg

    with open(path, "rb") as fh:
        is_jpeg = fh.read(3) == b"\xff\xd8\xff"
    if not is_jpeg:
        return read_rgb8(path).rgb
    try:
        return decode_jpeg(path.read_bytes())
    except ProtocolError as exc:
        raise ImageError(f"{path}: {exc}") from None
