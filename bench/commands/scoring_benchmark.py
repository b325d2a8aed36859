"""`codiff-bench scoring-benchmark`: what one unit of a run costs, part by part, with the functions the run engine
calls: read (the HQ PNG and the JPEG, decoded), restore, write (the output PNG), each metric, store (the results
rows). The parts other than restoring and scoring are the harness's own overhead."""

from __future__ import annotations

import argparse

DEFAULT_METRICS = "psnr,ssim,psnr_b"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def _quality(text: str) -> int:
    value = _positive(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be within 1..100, not {text!r}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scoring-benchmark", help="per-unit cost of a run by part: read, restore, write, each metric, store",
        description=__doc__,
        epilog="The image is scikit-image's 512 x 512 astronaut (0.26 MP) unless --image names another, which is "
               "cropped to --size. Times are medians over --units units, in milliseconds, on the CPU.")
    parser.add_argument("--image", default=None, help="an image file (default: scikit-image's astronaut)")
    parser.add_argument("--size", type=_positive, default=512, help="side of the square crop (default 512)")
    parser.add_argument("--method", default="jpeg", help="the method that restores (default jpeg: the decoded input)")
    parser.add_argument("--qf", type=_quality, default=10, help="JPEG quality factor (default 10)")
    parser.add_argument("--metrics", default=DEFAULT_METRICS, help=f"comma-separated (default {DEFAULT_METRICS})")
    parser.add_argument("--units", type=_positive, default=20, help="units timed (default 20)")
    parser.add_argument("--compare", action="store_true",
                        help="also time the libraries' implementations of the metrics (pyiqa; PSNR-B's reference)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the figures to this JSON file")
    parser.set_defaults(func=scoring_benchmark_command)


def scoring_benchmark_command(args: argparse.Namespace) -> int:
    import json
    import tempfile
    from pathlib import Path

    from bench.core.atomic import atomic_write_text
    from bench.metrics import check_metrics, create_metric
    from methods.registry import create_method

    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    check_metrics(names, strict=True)
    method = create_method(args.method)
    rgb = _image(args.image, args.size)
    with tempfile.TemporaryDirectory(prefix="scoring-benchmark-") as folder:
        metrics = {name: create_metric(name) for name in names}
        if args.compare:
            metrics.update({f"{name} (reference)": create_metric(name, reference=True) for name in names})
        method.load()
        times = _time_units(Path(folder), rgb, args.qf, method, metrics, args.units)
    figures = _figures(times, names, rgb.shape[0] * rgb.shape[1], args)
    print(_table(figures))
    if args.json_path:
        atomic_write_text(args.json_path, json.dumps(figures, indent=2) + "\n")
    return 0


def _image(path: str | None, size: int):
    """The top-left size x size crop of the image (8-bit RGB); BenchError when it cannot be read or is smaller."""
    from bench.core.errors import BenchError
    from bench.core.imageio import read_rgb8

    if path is None:
        from skimage import data

        rgb = data.astronaut()
    else:
        rgb = read_rgb8(path).rgb
    if min(rgb.shape[:2]) < size:
        raise BenchError(f"the image is {rgb.shape[1]} x {rgb.shape[0]}, smaller than --size {size}")
    return rgb[:size, :size].copy()


def _time_units(folder, rgb, qf: int, method, metrics: dict, units: int) -> dict[str, list[float]]:
    """Seconds of each part of `units` units, each part as the run engine does it."""
    import time

    import torch

    from bench.core.atomic import atomic_write_bytes
    from bench.core.imageio import encode_png, to_tensor, to_uint8
    from bench.core.protocol import JpegProtocol, decode_jpeg
    from bench.core.imageio import read_rgb8
    from bench.store import ResultsStore
    from methods.base import RestoreRequest

    hq_path, lq_path, out_path = folder / "hq.png", folder / "lq.jpg", folder / "out.png"
    atomic_write_bytes(hq_path, encode_png(rgb))
    atomic_write_bytes(lq_path, JpegProtocol().encode(rgb, qf))
    times: dict[str, list[float]] = {}

    def timed(part: str, start: float) -> float:
        now = time.perf_counter()
        times.setdefault(part, []).append(now - start)
        return now

    from tqdm.auto import tqdm

    with ResultsStore(folder / ResultsStore.FILENAME) as store:
        for index in tqdm(range(units + 1), desc="units", unit="unit"):  # the first, untimed, warms up
            key = f"benchmark-unit-{index}"
            start = time.perf_counter()
            hq = to_tensor(read_rgb8(hq_path).rgb)
            jpeg = lq_path.read_bytes()
            lq = to_tensor(decode_jpeg(jpeg))
            start = timed("read", start)
            with torch.inference_mode():
                out = method.restore(RestoreRequest(lq, qf=qf, jpeg_bytes=jpeg))
            start = timed("restore", start)
            rgb8 = to_uint8(out.float().cpu())
            atomic_write_bytes(out_path, encode_png(rgb8))
            out = to_tensor(rgb8)
            start = timed("write", start)
            values = {}
            for name, metric in metrics.items():
                with torch.inference_mode():
                    values[name] = float(metric(out, hq if metric.full_reference else None)[0])
                start = timed(f"metric {name}", start)
            store.put_output(key, out_path.name, "", 0.0, [])
            store.put_results(key, values, {name: "benchmark" for name in values})
            timed("store", start)
            if index == 0:
                times.clear()
    return times


def _figures(times: dict[str, list[float]], names: list[str], pixels: int, args: argparse.Namespace) -> dict:
    """Median milliseconds per part; the totals of the metrics, of the harness's own parts and of one unit."""
    import statistics

    median = {part: 1e3 * statistics.median(values) for part, values in times.items()}
    metrics = sum(median[f"metric {n}"] for n in names)
    harness = median["read"] + median["write"] + median["store"]
    figures = {"megapixels": pixels / 1e6, "units": args.units, "method": args.method, "qf": args.qf,
               "median_ms": median, "metrics_ms": metrics, "harness_ms": harness,
               "unit_ms": harness + median["restore"] + metrics}
    if args.compare:
        reference = {n: median[f"metric {n} (reference)"] for n in names}
        figures["reference_metrics_ms"] = sum(reference.values())
        figures["speedup"] = {n: reference[n] / median[f"metric {n}"] for n in names}
    return figures


def _table(figures: dict) -> str:
    lines = [f"per unit of {figures['megapixels']:.2f} MP, method {figures['method']}, QF {figures['qf']}: median "
             f"of {figures['units']} units, ms", f"{'part':<32}{'ms':>10}"]
    lines += [f"{part:<32}{ms:>10.2f}" for part, ms in figures["median_ms"].items()]
    lines += [f"{'harness (read + write + store)':<32}{figures['harness_ms']:>10.2f}",
              f"{'metrics':<32}{figures['metrics_ms']:>10.2f}",
              f"{'unit (without reference metrics)':<32}{figures['unit_ms']:>10.2f}"]
    for name, ratio in figures.get("speedup", {}).items():
        lines.append(f"{'speed-up of ' + name:<32}{ratio:>9.1f}x")
    return "\n".join(lines)
