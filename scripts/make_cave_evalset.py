"""Build the `cave-eval` evaluation set: 26 licensed photos that no small CaVE ever trains on, from scratch.

Sources (EVAL_SOURCES in make_cave_trainset.py): the photos of two Debian wallpaper packages that training
never uses (plasma-workspace-wallpapers, lxqt-themes; their drawings left out) and four of OpenCV's sample
photos (opencv-doc, whose other photos are training photos), fetched with `apt-get download` (or read from
`--debs`) and unpacked with `dpkg -x` into a temporary folder; nothing is installed. Each photo is
downscaled as the training photos are (area filter, by at least its source's factor, to at most `--max-side`
pixels) and written as PNG into `--out`, with `manifest.json` (each source's package, version and .deb
SHA-256; each photo's licence from the package's copyright file and, for KDE wallpapers, its own metadata;
every file's SHA-256). A photo that is a `sample` image, that the training sources select, or whose original
or converted bytes the training set's manifest lists (`--trainset-manifest`) stops the build.

    apt-get update && python scripts/make_cave_evalset.py --out "$CODIFF_BENCH_DATA/cave-eval" \\
        [--trainset-manifest data/cave-train/manifest.json] [--debs DIR]

datasets.yaml registers the folder as `cave-eval` (under the data root, image count checked).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_cave_trainset as photos  # noqa: E402  (a sibling script, not a package)

EXPECTED = 26


def build(out: Path, debs: Path | None, max_side: int, trainset_manifest: Path | None,
          sources: tuple[photos.Source, ...] = photos.EVAL_SOURCES,
          training: tuple[photos.Source, ...] = photos.SOURCES) -> dict:
    """Convert every evaluation photo into `out` and write its manifest; refuses any training photo."""
    banned = photos.manifest_banned(trainset_manifest, "training", training)
    with tempfile.TemporaryDirectory(prefix="cave-evalset-") as tmp:
        records, files = photos.convert_sources(out, debs, max_side, sources, banned,
                                                lambda source, names: {n: "" for n in names}, Path(tmp))
    manifest = {
        "sources": records,
        "downscale": {"filter": "cv2.INTER_AREA", "min_factor": "per source", "max_side": max_side},
        "use": "evaluation only: never cropped for training",
        "excluded": {"sample_images": sorted(banned.names), "training_sources": [s.name for s in training],
                     "trainset_manifest": str(trainset_manifest) if trainset_manifest else None},
        "counts": {"photos": len(files)},
        "files": files,
    }
    return photos.write_manifest(out, manifest)


def main(argv: list[str] | None = None) -> int:
    parser = photos.photo_set_parser(__doc__, "data/cave-eval")
    parser.add_argument("--trainset-manifest", type=Path, help="the training set's manifest.json: its photos "
                                                               "(originals and converted files) are refused")
    args = parser.parse_args(argv)
    manifest = build(args.out, args.debs.resolve() if args.debs else None, args.max_side, args.trainset_manifest)
    count = manifest["counts"]["photos"]
    print(f"{count} evaluation photos from {len(manifest['sources'])} sources in {args.out}")
    if count != EXPECTED:
        print(f"expected {EXPECTED} photos (datasets.yaml's count for cave-eval)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
