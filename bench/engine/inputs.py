"""Prepared inputs: each image's HQ reference and LQ files under a protocol variant, made once per content.

Keyed on (image identity, protocol key[, QF]) in the results store, each with the SHA-256 of the file
written; a file is reused only while it still holds that content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bench.config import Variant
from bench.core.imageio import ImageError, encode_png, read_rgb8
from bench.core.protocol import ProtocolError
from bench.core.terminal import shown
from bench.engine.layout import RunFolderError, RunLayout
from bench.engine.planner import ImageEntry
from bench.store import ResultsStore, input_subject

log = logging.getLogger(__name__)


class InputMaker:
    """Writes and records HQ and LQ files; an image that cannot be prepared becomes an input error."""

    def __init__(self, layout: RunLayout, store: ResultsStore, qfs: list[int], max_pixels: int | None,
                 progress: bool) -> None:
        self.layout, self.store, self.qfs = layout, store, qfs
        self.max_pixels, self.progress = max_pixels, progress

    def prepare(self, entries: Iterable[ImageEntry], variant: Variant, clean: bool) -> list[ImageEntry]:
        """Prepare every entry under `variant`; return those that could be prepared."""
        from tqdm.auto import tqdm

        entries = list(entries)
        good = []
        desc = "inputs" if clean else shown(f"inputs {variant.label}")
        for entry in tqdm(entries, desc=desc, unit="img", disable=not self.progress or not entries):
            subject = input_subject(entry.image_id, variant.key)
            try:
                self._prepare_one(entry, variant)
            except RunFolderError:
                raise
            except (ImageError, ProtocolError) as exc:
                self.store.put_error(subject, "input", describe_input(exc, entry.path))
                continue
            except Exception as exc:  # noqa: BLE001 - one bad image never ends the run
                self.store.put_error(subject, "input", describe(exc, entry.path))
                continue
            good.append(entry)
        return good

    def _prepare_one(self, entry: ImageEntry, variant: Variant) -> None:
        """Write what is not already in place: the files live at the entry's own paths (per-folder tools read
        the dataset's LQ folder), each checked against the content recorded for the image's identity."""
        key, layout = variant.key, self.layout
        row = self.store.get_input(entry.image_id, key)
        lq_rows = self.store.get_lq(entry.image_id, key)
        hq_file = layout.hq(entry.dataset, key, entry.stem)
        lq_files = {qf: layout.lq(entry.dataset, key, qf, entry.stem) for qf in self.qfs}
        hq_ok = row is not None and layout.holds(layout.relative(hq_file), row["hq_sha256"])
        lq_todo = [qf for qf, path in lq_files.items()
                   if qf not in lq_rows or not layout.holds(layout.relative(path), lq_rows[qf]["sha256"])]
        if hq_ok and not lq_todo:
            return
        p = variant.protocol
        loaded = read_rgb8(entry.path, grayscale=p.grayscale, alpha=p.alpha, exif=p.exif, max_pixels=self.max_pixels)
        prepared = p.prepare_hq(loaded.rgb)
        for qf in lq_todo:
            data = p.compress(prepared, qf)
            self.store.put_lq(entry.image_id, key, qf, *layout.write(lq_files[qf], data), len(data))
        if hq_ok:
            return
        hq = p.reference(prepared)
        notes = list(loaded.notes)
        if prepared.shape != loaded.rgb.shape:
            notes.append(f"HQ {p.resize} from {loaded.rgb.shape[1]}x{loaded.rgb.shape[0]} "
                         f"to {prepared.shape[1]}x{prepared.shape[0]}")
        if hq.shape != prepared.shape:
            notes.append(f"HQ reference {hq.shape[1]}x{hq.shape[0]} after the variant's shift or resize")
        self.store.put_input(entry.image_id, key, *layout.write(hq_file, encode_png(hq)), hq.shape[1], hq.shape[0],
                             notes)


def describe(exc: BaseException, path) -> str:
    """An error message that names the file once."""
    text = f"{type(exc).__name__}: {exc}"
    return text if str(path) in text else f"{path}: {text}"


def describe_input(exc: BaseException, path) -> str:
    """An input error names the file and the reason (a ProtocolError says only the reason)."""
    return str(exc) if str(path) in str(exc) else f"{path}: {exc}"
