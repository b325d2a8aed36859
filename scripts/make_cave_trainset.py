"""Rebuild the small CaVE training set from Debian's `mate-backgrounds` nature photos, from scratch.

The package is fetched with `apt-get download` (or read from `--deb`) and unpacked with `dpkg -x` into a
temporary folder (nothing is installed). Each nature photo is downscaled with an area filter by at least
`--min-factor` (so the originals' own JPEG artefacts vanish) to at most `--max-side` pixels on the long side
and written as PNG, either to `train/` or to the disjoint `heldout/` folder (a fixed split: the sorted names
permuted by `--seed`). A `manifest.json` records the package, the split, every file and its SHA-256.

    python scripts/make_cave_trainset.py --out data/cave-train [--deb mate-backgrounds_1.26.0-1_all.deb]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "mate-backgrounds"
NATURE_DIR = "usr/share/backgrounds/mate/nature"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_deb(workdir: Path) -> Path:
    """`apt-get download` the package into `workdir` and return the .deb path."""
    subprocess.run(["apt-get", "download", PACKAGE], cwd=workdir, check=True)
    debs = sorted(workdir.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        raise SystemExit(f"apt-get download {PACKAGE} produced no .deb in {workdir}")
    return debs[-1]


def deb_fields(deb: Path) -> dict[str, str]:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], check=True, capture_output=True,
                         text=True).stdout
    return dict(line.split(": ", 1) for line in out.strip().splitlines())


def sample_image_hashes() -> dict[str, str]:
    """SHA-256 of each file of the `sample` evaluation set (never to be trained on), by name."""
    from bench.datasets import resolve_dataset

    return {p.name: sha256(p.read_bytes()) for p in resolve_dataset("sample").files}


def split_names(names: list[str], heldout: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, heldout): the sorted names permuted by `seed`; the first `heldout` are held out."""
    names = sorted(names)
    order = np.random.default_rng(seed).permutation(len(names))
    held = sorted(names[i] for i in order[:heldout])
    return [n for n in names if n not in held], held


def downscale(rgb: np.ndarray, min_factor: float, max_side: int) -> tuple[np.ndarray, float]:
    """Area-filter downscale by max(min_factor, long side / max_side); returns the image and the factor."""
    import cv2

    h, w = rgb.shape[:2]
    factor = max(float(min_factor), max(h, w) / float(max_side))
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), factor


def build(deb: Path, out: Path, heldout: int, seed: int, min_factor: float, max_side: int) -> dict:
    from bench.core.atomic import atomic_write_bytes, atomic_write_text
    from bench.core.imageio import encode_png, read_rgb8

    fields = deb_fields(deb)
    if fields.get("Package") != PACKAGE:
        raise SystemExit(f"{deb} is {fields.get('Package')!r}, not {PACKAGE}")
    excluded = sample_image_hashes()
    with tempfile.TemporaryDirectory(prefix="mate-") as tmp:
        subprocess.run(["dpkg", "-x", str(deb), tmp], check=True)
        sources = sorted((Path(tmp) / NATURE_DIR).glob("*.jpg"))
        if not sources:
            raise SystemExit(f"{deb} has no photos under /{NATURE_DIR}")
        train, held = split_names([p.stem for p in sources], heldout, seed)
        files = []
        for src in sources:
            data = src.read_bytes()
            if src.name in excluded or sha256(data) in excluded.values():
                raise SystemExit(f"{src.name} is a `sample` evaluation image and must not be trained on")
            rgb = read_rgb8(src).rgb
            small, factor = downscale(rgb, min_factor, max_side)
            split = "heldout" if src.stem in held else "train"
            png = encode_png(small)
            target = out / split / f"{src.stem}.png"
            atomic_write_bytes(target, png)
            files.append({"split": split, "file": f"{split}/{target.name}", "source": f"/{NATURE_DIR}/{src.name}",
                          "source_sha256": sha256(data), "source_size": [rgb.shape[1], rgb.shape[0]],
                          "factor": round(factor, 4), "size": [small.shape[1], small.shape[0]],
                          "sha256": sha256(png)})
            print(f"{split:8s} {src.name:18s} {rgb.shape[1]}x{rgb.shape[0]} -> {small.shape[1]}x{small.shape[0]}")
    manifest = {
        "package": fields["Package"], "version": fields["Version"], "deb": deb.name,
        "deb_sha256": sha256(deb.read_bytes()),
        "selection": f"every /{NATURE_DIR}/*.jpg",
        "downscale": {"filter": "cv2.INTER_AREA", "min_factor": min_factor, "max_side": max_side},
        "split": {"seed": seed, "heldout": heldout, "rule": "sorted names permuted by numpy default_rng(seed); "
                                                            "the first `heldout` are held out"},
        "excluded_sample_images": sorted(excluded),
        "counts": {"train": len(train), "heldout": len(held)},
        "files": files,
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/cave-train"), help="output folder")
    parser.add_argument("--deb", type=Path, help="a downloaded mate-backgrounds .deb (default: apt-get download)")
    parser.add_argument("--heldout", type=int, default=3, help="photos held out for validation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split")
    parser.add_argument("--min-factor", type=float, default=4.0, help="smallest downscale factor")
    parser.add_argument("--max-side", type=int, default=768, help="largest long side after downscaling")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mate-deb-") as tmp:
        deb = args.deb.resolve() if args.deb else fetch_deb(Path(tmp))
        manifest = build(deb, args.out, args.heldout, args.seed, args.min_factor, args.max_side)
    print(f"{manifest['counts']['train']} training and {manifest['counts']['heldout']} held-out images "
          f"in {args.out} ({manifest['package']} {manifest['version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
