"""Whole-image restoration on the `cave-eval` photos: JPEG, Debian's `jpegqs -q 6`, and small CaVEs.

Each photo goes through the project's protocol (OpenCV encoder, 4:2:0) at every `--qfs` QF; the JPEG, the
`jpegqs` result of that same JPEG file (decoded the same way) and each `--cave` restoration (the `cave`
method: gated as its checkpoint says, tiled as the method tiles) are scored with the harness's PSNR, PSNR-B
and SSIM (luma), and each CaVE's QF estimate of the whole JPEG (as estimate-qf makes it) by its absolute
error. Prints and writes (`--out`) per-QF means and each method's gain over the JPEG with a 95% bootstrap
interval over photos, and the per-photo values.

    python scripts/measure_cave_eval.py --eval data/cave-seeds/cave-eval --cave cave-small \\
        --cave new=runs/.../cave.safetensors --out data/cave-seeds/analysis/restorers.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

METRICS = ("psnr", "psnr_b", "ssim")


def jpegqs(jpeg: bytes, workdir: Path, quality: int = 6) -> np.ndarray:
    """The decoded result of `jpegqs -q quality` on the JPEG file `jpeg`."""
    from bench.core.protocol import decode_jpeg

    source, target = workdir / "in.jpg", workdir / "out.jpg"
    source.write_bytes(jpeg)
    subprocess.run(["jpegqs", "-q", str(quality), "-t", "1", "-i", "0", str(source), str(target)], check=True,
                   capture_output=True)
    return decode_jpeg(target.read_bytes())


def cave_method(spec: str):
    """A `cave` method for NAME=PATH (or the shipped `cave-small`)."""
    from methods.registry import create_method

    if spec == "cave-small":
        return "cave-small", create_method("cave-small")
    name, _, path = spec.partition("=")
    return name, create_method("cave", cave=path)


def interval(values: list[float], rng: np.random.Generator) -> dict[str, float]:
    values = np.asarray(values)
    draws = values[rng.integers(len(values), size=(2000, len(values)))].mean(axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"mean": float(values.mean()), "low": float(low), "high": float(high)}


def measure(eval_folder: Path, qfs: list[int], caves: list[str], use_jpegqs: bool,
            restore: bool = True) -> dict[str, Any]:
    from bench.core.imageio import list_images, read_rgb8, to_tensor
    from bench.core.protocol import JpegProtocol, decode_jpeg
    from bench.metrics import create_metric
    from methods.base import RestoreRequest

    protocol = JpegProtocol()
    metrics = {name: create_metric(name) for name in METRICS}
    methods = [cave_method(spec) for spec in caves]
    use_jpegqs = use_jpegqs and restore
    names = ["jpeg"] + (["jpegqs"] if use_jpegqs else []) + ([name for name, _ in methods] if restore else [])
    scores: dict[int, dict[str, dict[str, list[float]]]] = {q: {n: {m: [] for m in METRICS} for n in names}
                                                           for q in qfs}
    photos = list_images(eval_folder)
    qf_errors: dict[str, dict[int, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="cave-eval-") as tmp:
        for path in photos:
            hq8 = protocol.prepare_hq(read_rgb8(path).rgb)
            hq = to_tensor(hq8)
            for qf in qfs:
                jpeg = protocol.encode(hq8, qf)
                lq = to_tensor(decode_jpeg(jpeg))
                outputs = {"jpeg": lq}
                if use_jpegqs:
                    outputs["jpegqs"] = to_tensor(jpegqs(jpeg, Path(tmp)))
                for name, method in methods:
                    with torch.inference_mode():
                        if restore or method.model is None:
                            outputs[name] = method.restore(RestoreRequest(lq=lq, jpeg_bytes=jpeg))
                        estimate = float(method.model.predict_qf(lq))
                    qf_errors.setdefault(name, {}).setdefault(qf, []).append(abs(estimate - qf))
                for name, out in outputs.items() if restore else ():
                    out8 = (out.clamp(0, 1) * 255).round() / 255
                    for metric, fn in metrics.items():
                        scores[qf][name][metric].append(float(fn(out8, hq)))
            print(f"{path.name}: done", file=sys.stderr)
    rng = np.random.default_rng(0)
    summary: dict[str, Any] = {"photos": [p.name for p in photos], "qfs": qfs, "per_photo": scores, "summary": {},
                               "qf_mae": {name: {str(q): float(np.mean(v)) for q, v in errors.items()}
                                          for name, errors in qf_errors.items()}}
    for qf in qfs if restore else ():
        cell = summary["summary"][str(qf)] = {}
        for name in names:
            cell[name] = {m: float(np.mean(scores[qf][name][m])) for m in METRICS}
            if name != "jpeg":
                for m in METRICS:
                    gains = np.subtract(scores[qf][name][m], scores[qf]["jpeg"][m])
                    cell[name][f"{m}_gain"] = interval(list(gains), rng)
            if name not in ("jpeg", "jpegqs") and use_jpegqs:
                for m in METRICS:
                    lead = np.subtract(scores[qf][name][m], scores[qf]["jpegqs"][m])
                    cell[name][f"{m}_vs_jpegqs"] = interval(list(lead), rng)
    return summary


def main(argv: list[str] | None = None) -> int:
    from bench.core.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", dest="eval_folder", type=Path, required=True, help="the cave-eval folder")
    parser.add_argument("--qfs", default="1,5,10,20,30,40,50,60,70,80,90")
    parser.add_argument("--cave", action="append", default=[], help="cave-small or NAME=PATH (repeatable)")
    parser.add_argument("--no-jpegqs", dest="jpegqs", action="store_false", help="leave jpegqs out")
    parser.add_argument("--qf-only", dest="restore", action="store_false",
                        help="only the CaVEs' QF estimates (no restoration, no jpegqs)")
    parser.add_argument("--out", type=Path, help="results JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.jpegqs and args.restore and shutil.which("jpegqs") is None:
        parser.error("jpegqs is not installed (apt-get install jpegqs), or pass --no-jpegqs")
    result = measure(args.eval_folder, [int(q) for q in args.qfs.split(",")], args.cave, args.jpegqs, args.restore)
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    for qf, cell in result["summary"].items():
        print(f"QF {qf}: " + "; ".join(f"{n} " + " ".join(f"{m} {v[m]:.3f}" for m in METRICS)
                                       for n, v in cell.items()))
    for name, errors in result["qf_mae"].items():
        print(f"{name} QF estimate MAE: " + ", ".join(f"QF {q} {v:.1f}" for q, v in errors.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
