"""Rebuild the small CaVE training set from photos that install on any Debian machine, from scratch.

Sources (SOURCES): the photos of three Debian wallpaper packages, fetched with `apt-get download` (or read
from `--debs`) and unpacked with `dpkg -x` into a temporary folder (nothing is installed; run `apt-get update`
first), and the sample photos shipped inside two Python packages of the environment (scikit-learn, matplotlib).
Each photo is downscaled with an area filter by at least its source's factor (so the originals' own JPEG
artefacts vanish) to at most `--max-side` pixels on the long side and written as PNG to `train/` or to the
disjoint `heldout/` folder. The split is by photo, per source: the sorted names permuted by `--seed`, the
first `max(1, round(heldout_fraction * n))` held out (sources of one photo go to training). `manifest.json`
records each source (package, version, .deb SHA-256), each photo's licence (from the package's copyright
file), the split and every file with its SHA-256. No evaluation photo is ever used: a photo with the name or
bytes of a `sample` image, one that EVAL_SOURCES selects (the `cave-eval` set, scripts/make_cave_evalset.py),
or one whose original or converted bytes a `cave-eval` manifest lists (`--eval-manifest`) stops the build.

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
    `include` the file patterns taken there (paths relative to it) and `exclude` the names left out
    (drawings, not photos).
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
    # scikit-image's photos outside the `sample` set (motorcycle_right is the stereo twin of a `sample` photo)
    Source("scikit-image", "python", "scikit-image", "data", include=("rocket.jpg",), module="skimage",
           min_factor=2.0, licence="public domain (SpaceX launch photo; see skimage.data.rocket)"),
    Source("scikit-image-textures", "python", "scikit-image", "data",
           include=("brick.png", "grass.png", "gravel.png"), module="skimage", min_factor=1.0,
           licence="CC0-1.0 (CC0Textures; see skimage.data.brick, grass, gravel)"),
    # OpenCV's sample photos not in the evaluation set (leuvenB is leuvenA's scene, which is evaluated)
    Source("opencv-doc", "deb", "opencv-doc", "usr/share/doc/opencv-doc/examples",
           include=("data/aloeL.jpg", "data/smarties.png", "reg/home.png", "alphamat/input_images/plant.jpg",
                    "text/scenetext01.jpg", "text/scenetext02.jpg", "text/scenetext04.jpg",
                    "text/scenetext05.jpg"), min_factor=2.0),
)
HELDOUT_FRACTION = 0.2

# The `cave-eval` evaluation set (scripts/make_cave_evalset.py): photos of wallpaper packages that training
# never uses and four OpenCV sample photos, all held out as a whole (no split).
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                 "Kite", "OneStandsOut", "Path", "summer_1am")
LXQT_PHOTOS = ("Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png",
               "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg")
EVAL_SOURCES = (
    Source("plasma-workspace-wallpapers", "deb", "plasma-workspace-wallpapers", "usr/share/wallpapers",
           include=tuple(f"{name}/contents/images/2560x1600.jpg" for name in PLASMA_PHOTOS)),
    Source("lxqt-themes", "deb", "lxqt-themes", "usr/share/lxqt/wallpapers", include=LXQT_PHOTOS),
    Source("opencv-doc", "deb", "opencv-doc", "usr/share/doc/opencv-doc/examples",
           include=("data/leuvenA.jpg", "data/ela_original.jpg", "data/board.jpg", "data/fruits.jpg"),
           min_factor=2.0),
)


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
    """The source's photos in `folder`, sorted by their names (`photo_name`)."""
    found = {p for pattern in source.include for p in folder.glob(pattern)}
    return sorted((p for p in found if p.name not in source.exclude), key=lambda p: photo_name(p, folder))


def photo_name(path: Path, folder: Path) -> str:
    """A photo's name in its source: its file name, or for a KDE wallpaper (`Name/contents/images/WxH.jpg`,
    named by its size) the wallpaper's name."""
    parts = path.relative_to(folder).parts
    return parts[0] if parts[1:3] == ("contents", "images") else path.name


def selected_by(source: Source, package: str, relative: str) -> bool:
    """Whether `source` selects the file at `relative` (to its folder) of `package`."""
    from fnmatch import fnmatch

    return (source.package == package and Path(relative).name not in source.exclude
            and any(fnmatch(relative, pattern) for pattern in source.include))


def unpack(source: Source, debs: Path | None, workdir: Path) -> tuple[Path, dict, dict[str, str]]:
    """(photo folder, source record, licence by file name) of a source, unpacked under `workdir`."""
    if source.kind == "python":
        module = importlib.import_module(source.module)
        folder = Path(module.__file__).parent / source.folder
        record = {"source": source.name, "kind": "python package", "package": source.package,
                  "version": importlib.metadata.version(source.package), "folder": f"{source.module}/{source.folder}"}
        return folder, record, {photo_name(p, folder): source.licence for p in select(folder, source)}
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
    return folder, record, {photo_name(p, folder): licence_of(p.name, stanzas) for p in select(folder, source)}


@dataclass(frozen=True)
class Banned:
    """Photos a build must refuse: by SHA-256 of the original or the converted file (`hashes`: hash -> what it
    is), by file name (`names`), and every file that one of `sources` selects in its package."""

    hashes: dict[str, str]
    names: dict[str, str]
    sources: tuple[Source, ...] = ()

    def reason(self, source: Source, folder: Path, src: Path, digests: tuple[str, ...]) -> str | None:
        relative = src.relative_to(folder).as_posix()
        if src.name in self.names:
            return f"{src.name} has the name of {self.names[src.name]}"
        for digest in digests:
            if digest in self.hashes:
                return f"{source.name}/{relative} has the bytes of {self.hashes[digest]}"
        for other in self.sources:
            if selected_by(other, source.package, relative):
                return f"{source.name}/{relative} is a photo of {other.name} in the other set"
        return None


def sample_banned() -> Banned:
    """The `sample` evaluation images, by name and bytes."""
    hashes = sample_image_hashes()
    return Banned({digest: f"the `sample` image {name}" for name, digest in hashes.items()},
                  {name: "a `sample` image" for name in hashes})


def manifest_banned(path: Path | None, what: str, sources: tuple[Source, ...]) -> Banned:
    """The `sample` images, every file a set's manifest at `path` lists (originals and converted files) and
    every photo `sources` select."""
    banned = sample_banned()
    hashes = dict(banned.hashes)
    if path is not None:
        for entry in json.loads(path.read_text())["files"]:
            label = f"{what} photo {entry['source']}/{entry['original']}"
            hashes[entry["source_sha256"]] = hashes[entry["sha256"]] = label
    return Banned(hashes, banned.names, sources)


def convert_sources(out: Path, debs: Path | None, max_side: int, sources: tuple[Source, ...], banned: Banned,
                    split_of, workdir: Path) -> tuple[list[dict], list[dict]]:
    """Convert every photo of `sources` to PNG under `out`/<split> (split_of(source, names) -> {name: split},
    '' for the folder itself); (source records, file entries). A photo `banned` names stops the build."""
    from bench.core.atomic import atomic_write_bytes
    from bench.core.imageio import encode_png, read_rgb8

    files, records = [], []
    for source in sources:
        folder, record, licences = unpack(source, debs, workdir)
        photos = select(folder, source)
        if not photos:
            raise SystemExit(f"{source.name}: no photos matching {source.include} in {folder}")
        splits = split_of(source, [photo_name(p, folder) for p in photos])
        record.update({"selection": {"include": list(source.include), "exclude": list(source.exclude)},
                       "min_factor": source.min_factor})
        record.update({split or "photos": list(splits.values()).count(split) for split in sorted(set(splits.values()))})
        records.append(record)
        for src in photos:
            name = photo_name(src, folder)
            data = src.read_bytes()
            rgb = read_rgb8(src).rgb
            small, factor = downscale(rgb, source.min_factor, max_side)
            png = encode_png(small)
            refused = banned.reason(source, folder, src, (sha256(data), sha256(png)))
            if refused:
                raise SystemExit(f"refused: {refused}; the training and evaluation photos must stay disjoint")
            split = splits[name]
            file = f"{split}/{Path(name).stem}.png" if split else f"{Path(name).stem}.png"
            atomic_write_bytes(out / file, png)
            entry = {"split": split, "file": file, "source": source.name, "original": name,
                     "path": src.relative_to(folder).as_posix(), "licence": licences[name]}
            entry.update(upstream_credit(src, folder))
            entry.update({"source_sha256": sha256(data), "source_size": [rgb.shape[1], rgb.shape[0]],
                          "factor": round(factor, 4), "size": [small.shape[1], small.shape[0]], "sha256": sha256(png)})
            files.append(entry)
            print(f"{split or 'eval':8s} {source.name:28s} {name:40s} {rgb.shape[1]}x{rgb.shape[0]} -> "
                  f"{small.shape[1]}x{small.shape[0]}")
    names = [f["file"] for f in files]
    if len(set(names)) != len(names):
        raise SystemExit("two photos map to the same output name")
    return records, files


def upstream_credit(src: Path, folder: Path) -> dict[str, object]:
    """The licence and authors a wallpaper's own `metadata.json` (KDE's format, beside `contents/`) states."""
    parts = src.relative_to(folder).parts
    metadata = folder / parts[0] / "metadata.json" if len(parts) > 1 else None
    if metadata is None or not metadata.is_file():
        return {}
    plugin = json.loads(metadata.read_text(encoding="utf-8")).get("KPlugin", {})
    return {"upstream_licence": plugin.get("License", ""),
            "authors": [a.get("Name", "") for a in plugin.get("Authors", [])]}


def build(out: Path, debs: Path | None, seed: int, max_side: int, sources: tuple[Source, ...] = SOURCES,
          eval_manifest: Path | None = None) -> dict:
    banned = manifest_banned(eval_manifest, "`cave-eval`", EVAL_SOURCES)

    def split_of(source: Source, names: list[str]) -> dict[str, str]:
        _, held = split_names(names, heldout_count(len(names)), seed)
        return {name: "heldout" if name in held else "train" for name in names}

    with tempfile.TemporaryDirectory(prefix="cave-trainset-") as tmp:
        records, files = convert_sources(out, debs, max_side, sources, banned, split_of, Path(tmp))
    manifest = {
        "sources": records,
        "downscale": {"filter": "cv2.INTER_AREA", "min_factor": "per source", "max_side": max_side},
        "split": {"seed": seed, "unit": "photo", "heldout_fraction": HELDOUT_FRACTION,
                  "rule": "per source: sorted names permuted by numpy default_rng(seed); the first "
                          "max(1, round(fraction * n)) are held out (none for a source of one photo)"},
        "excluded_sample_images": sorted(banned.names),
        "excluded_eval_set": {"sources": [s.name for s in EVAL_SOURCES],
                              "manifest": str(eval_manifest) if eval_manifest else None},
        "counts": {split: sum(f["split"] == split for f in files) for split in ("train", "heldout")},
        "files": files,
    }
    return write_manifest(out, manifest)


def write_manifest(out: Path, manifest: dict) -> dict:
    """`out/manifest.json`, written atomically; returns the manifest."""
    from bench.core.atomic import atomic_write_text

    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def photo_set_parser(doc: str, default_out: str) -> argparse.ArgumentParser:
    """The options every photo-set script shares: --out, --debs, --max-side."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(default_out), help="output folder")
    parser.add_argument("--debs", type=Path, help="a folder holding the downloaded .deb files "
                                                  "(default: apt-get download each)")
    parser.add_argument("--max-side", type=int, default=768, help="largest long side after downscaling")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = photo_set_parser(__doc__, "data/cave-train")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split")
    parser.add_argument("--eval-manifest", type=Path, help="the `cave-eval` set's manifest.json: its photos "
                                                           "(originals and converted files) are refused by hash")
    args = parser.parse_args(argv)
    manifest = build(args.out, args.debs.resolve() if args.debs else None, args.seed, args.max_side,
                     eval_manifest=args.eval_manifest)
    print(f"{manifest['counts']['train']} training and {manifest['counts']['heldout']} held-out photos from "
          f"{len(manifest['sources'])} sources in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
