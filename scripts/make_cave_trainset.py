"""Rebuild the small CaVE training set from photos that install on any Debian machine, from scratch.

Sources (SOURCES): the photos of three Debian wallpaper packages, fetched with `apt-get download` (or read
from `--debs`) and unpacked with `dpkg -x` into a temporary folder (nothing is installed; run `apt-get update`
first), and the sample photos shipped inside two Python packages of the environment (scikit-learn, matplotlib).
Each photo is downscaled with an area filter by at least its source's factor (so the originals' own JPEG
artefacts vanish) to at most `--max-side` pixels on the long side and written as PNG to `train/` or to the
disjoint `heldout/` folder. The split is by photo, per source: the sorted names permuted by `--seed`, the
first `max(1, round(heldout_fraction * n))` held out (sources of one photo go to training). `manifest.json`
records each source (package, version, .deb SHA-256), each photo's licence (from the package's copyright
file), the split and every file with its SHA-256. The `sample` evaluation images are never used: a photo
with the name or bytes of one stops the build.

    apt-get update && python scripts/make_cave_trainset.py --out data/cave-train [--debs DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Source:
    """Photos of one package: a Debian package (`deb`) or an installed Python distribution (`python`).

    `folder` is the photos' folder inside the unpacked .deb or the Python package (`module`'s directory),
    `include` the file patterns taken there and `exclude` the names left out (drawings, not photos).
    `licence` is the licence for Python sources; Debian sources read it from their copyright file.
    """

    name: str
    kind: str
    package: str
    folder: str
    include: tuple[str, ...] = ("*.jpg",)
    exclude: tuple[str, ...] = ()
    min_factor: float = 4.0
    module: str = ""
    licence: str = ""


SOURCES = (
    Source("mate-backgrounds", "deb", "mate-backgrounds", "usr/share/backgrounds/mate/nature"),
    Source("lomiri-wallpapers-16.04", "deb", "lomiri-wallpapers-16.04", "usr/share/backgrounds",
           exclude=("umang_by_Abhishek_Mudgal.jpg",)),  # a colour-gradient drawing
    Source("lomiri-wallpapers-20.04", "deb", "lomiri-wallpapers-20.04", "usr/share/backgrounds",
           include=("Kleiber_by_Lukas_Baubkus.jpg",)),  # the package's only photo; the rest are drawings
    Source("scikit-learn", "python", "scikit-learn", "datasets/images", module="sklearn", min_factor=2.0,
           licence="CC-BY-2.0 (Flickr: danielbuechele, vultilion; see sklearn/datasets/images/README.txt)"),
    Source("matplotlib", "python", "matplotlib", "mpl-data/sample_data", include=("grace_hopper.jpg",),
           module="matplotlib", min_factor=2.0, licence="public domain (U.S. Navy photograph of Grace Hopper)"),
)
HELDOUT_FRACTION = 0.2


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_deb(package: str, workdir: Path) -> Path:
    """`apt-get download` the package into `workdir` and return the .deb path."""
    subprocess.run(["apt-get", "download", package], cwd=workdir, check=True)
    return find_deb(package, workdir)


def find_deb(package: str, folder: Path) -> Path:
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if not debs:
        raise SystemExit(f"no {package}_*.deb in {folder} (apt-get update, then apt-get download {package})")
    return debs[-1]


def deb_fields(deb: Path) -> dict[str, str]:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], check=True, capture_output=True,
                         text=True).stdout
    return dict(line.split(": ", 1) for line in out.strip().splitlines())


def copyright_licences(text: str) -> list[tuple[list[str], str]]:
    """(file patterns, licence) of each `Files:` stanza of a machine-readable Debian copyright file."""
    stanzas = []
    for block in text.split("\n\n"):
        patterns, licence, key = [], "", ""
        for line in block.splitlines():
            if line[:1].isspace() and key == "Files":
                patterns += line.split()
                continue
            key, _, value = line.partition(":")
            if key == "Files":
                patterns += value.split()
            elif key == "License" and not licence:
                licence = value.strip()
        if patterns and licence:
            stanzas.append((patterns, licence))
    return stanzas


def licence_of(name: str, stanzas: list[tuple[list[str], str]]) -> str:
    """The licence of the last stanza (DEP-5: the last match wins) with a pattern that names the file `name`
    (its base name, as installed paths differ from source paths) or is `*`. Wildcards under a folder
    (`debian/*`) describe source files, not the installed photos, and are ignored."""
    found = "unknown"
    for patterns, licence in stanzas:
        if any(p == "*" or (not any(c in p for c in "*?[") and Path(p).name == name) for p in patterns):
            found = licence
    return found


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


def heldout_count(n: int, fraction: float = HELDOUT_FRACTION) -> int:
    """Photos of a source held out: none of a single photo, else at least one and about `fraction`."""
    return 0 if n < 2 else max(1, round(fraction * n))


def downscale(rgb: np.ndarray, min_factor: float, max_side: int) -> tuple[np.ndarray, float]:
    """Area-filter downscale by max(min_factor, long side / max_side); returns the image and the factor."""
    import cv2

    h, w = rgb.shape[:2]
    factor = max(float(min_factor), max(h, w) / float(max_side))
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), factor


def select(folder: Path, source: Source) -> list[Path]:
    """The source's photos in `folder`, sorted by name."""
    found = {p for pattern in source.include for p in folder.glob(pattern)}
    return sorted((p for p in found if p.name not in source.exclude), key=lambda p: p.name)


def unpack(source: Source, debs: Path | None, workdir: Path) -> tuple[Path, dict, dict[str, str]]:
    """(photo folder, source record, licence by file name) of a source, unpacked under `workdir`."""
    if source.kind == "python":
        module = importlib.import_module(source.module)
        folder = Path(module.__file__).parent / source.folder
        record = {"source": source.name, "kind": "python package", "package": source.package,
                  "version": importlib.metadata.version(source.package), "folder": f"{source.module}/{source.folder}"}
        return folder, record, {p.name: source.licence for p in select(folder, source)}
    deb = find_deb(source.package, debs) if debs else fetch_deb(source.package, workdir)
    fields = deb_fields(deb)
    if fields.get("Package") != source.package:
        raise SystemExit(f"{deb} is {fields.get('Package')!r}, not {source.package}")
    root = workdir / source.name
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    copyright_file = root / "usr/share/doc" / source.package / "copyright"
    stanzas = copyright_licences(copyright_file.read_text(encoding="utf-8", errors="replace"))
    folder = root / source.folder
    record = {"source": source.name, "kind": "debian package", "package": source.package,
              "version": fields["Version"], "deb": deb.name, "deb_sha256": sha256(deb.read_bytes()),
              "folder": f"/{source.folder}", "copyright": f"/usr/share/doc/{source.package}/copyright"}
    return folder, record, {p.name: licence_of(p.name, stanzas) for p in select(folder, source)}


def build(out: Path, debs: Path | None, seed: int, max_side: int, sources: tuple[Source, ...] = SOURCES) -> dict:
    from bench.core.atomic import atomic_write_bytes, atomic_write_text
    from bench.core.imageio import encode_png, read_rgb8

    excluded = sample_image_hashes()
    files, records, counts = [], [], {"train": 0, "heldout": 0}
    with tempfile.TemporaryDirectory(prefix="cave-trainset-") as tmp:
        for source in sources:
            folder, record, licences = unpack(source, debs, Path(tmp))
            photos = select(folder, source)
            if not photos:
                raise SystemExit(f"{source.name}: no photos matching {source.include} in {folder}")
            train, held = split_names([p.name for p in photos], heldout_count(len(photos)), seed)
            record.update({"selection": {"include": list(source.include), "exclude": list(source.exclude)},
                           "min_factor": source.min_factor, "train": len(train), "heldout": len(held)})
            records.append(record)
            for src in photos:
                data = src.read_bytes()
                if src.name in excluded or sha256(data) in excluded.values():
                    raise SystemExit(f"{src.name} is a `sample` evaluation image and must not be trained on")
                rgb = read_rgb8(src).rgb
                small, factor = downscale(rgb, source.min_factor, max_side)
                split = "heldout" if src.name in held else "train"
                counts[split] += 1
                png = encode_png(small)
                target = out / split / f"{Path(src.name).stem}.png"
                atomic_write_bytes(target, png)
                files.append({"split": split, "file": f"{split}/{target.name}", "source": source.name,
                              "original": src.name, "licence": licences[src.name], "source_sha256": sha256(data),
                              "source_size": [rgb.shape[1], rgb.shape[0]], "factor": round(factor, 4),
                              "size": [small.shape[1], small.shape[0]], "sha256": sha256(png)})
                print(f"{split:8s} {source.name:24s} {src.name:40s} {rgb.shape[1]}x{rgb.shape[0]} -> "
                      f"{small.shape[1]}x{small.shape[0]}")
    names = [f["file"] for f in files]
    if len(set(names)) != len(names):
        raise SystemExit("two photos map to the same output name")
    manifest = {
        "sources": records,
        "downscale": {"filter": "cv2.INTER_AREA", "min_factor": "per source", "max_side": max_side},
        "split": {"seed": seed, "unit": "photo", "heldout_fraction": HELDOUT_FRACTION,
                  "rule": "per source: sorted names permuted by numpy default_rng(seed); the first "
                          "max(1, round(fraction * n)) are held out (none for a source of one photo)"},
        "excluded_sample_images": sorted(excluded),
        "counts": counts,
        "files": files,
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/cave-train"), help="output folder")
    parser.add_argument("--debs", type=Path, help="a folder holding the downloaded .deb files "
                                                  "(default: apt-get download each)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split")
    parser.add_argument("--max-side", type=int, default=768, help="largest long side after downscaling")
    args = parser.parse_args(argv)
    manifest = build(args.out, args.debs.resolve() if args.debs else None, args.seed, args.max_side)
    print(f"{manifest['counts']['train']} training and {manifest['counts']['heldout']} held-out photos from "
          f"{len(manifest['sources'])} sources in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
