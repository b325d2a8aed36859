"""Profile rows beside the paper's Table 2, and the files they are written to (JSON, CSV, LaTeX).

`profile.json` holds {"schema", "size", "device", "conventions", "notes", "rows", "stages", "parts",
"provenance"}; `profile.csv` the rows; `stages.csv` the per-stage breakdown; `parts.csv` the parameter
breakdown; `profile.tex` a LaTeX table; `summary.json` the title, captions and notes for the HTML report.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_text
from bench.profile.core import MethodProfile, ProfileOptions
from bench.profile.peaks import mac_floor_s, peak_flops

SCHEMA = "codiff-bench.profile/1"
G, T = 1e9, 1e12
PAPER_NOTE = ("Paper values: the CODiff paper's Table 2 (1024 x 1024 input, one A6000; SUPIR on two). MACs and time "
              "are shown beside measurements only at 1024 x 1024, time only for CUDA measurements.")
CONVENTIONS = {
    "params_g": "parameters of the built parts in billions, counted on the meta device; LoRA adapters included "
                "when the method runs them unmerged (params_lora_g is their share)",
    "macs_t": "fvcore MACs per image in 10^12, calls x per-call MACs: convolutions, linear layers, matmuls, norms, "
              "upsampling; elementwise ops and attention run through scaled_dot_product_attention (diffusers, "
              "transformers) are skipped, attention written as explicit matmuls (timm's Swin while tracing) is "
              "counted; stages.csv lists the skipped operators per stage",
    "macs_t_flopcounter": "torch.utils.flop_counter.FlopCounterMode FLOPs / 2 on the meta device at full size "
                          "(convolutions, matmuls and attention; no norms or elementwise ops)",
    "macs_t_attention": "the attention products inside macs_t_flopcounter (batched matmuls / SDPA)",
    "time_s": "median seconds per image: sum over stages of calls x per-call median (stages timed one by one "
              "after warm-up; CUDA events on GPU, wall time on CPU, see time_kind)",
    "time_p90_s": "the same sum with per-call 90th percentiles (an upper estimate of the per-image p90)",
    "memory_gb": "peak memory in GB (1e9 bytes), see memory_kind",
    "floor_s": "MAC-bound floor: macs_t_flopcounter x 2 / the GPU's peak dense FLOP/s for the dtype",
    "floor_ratio": "time_s / floor_s",
    "built_*": "sums over the parts that are built, also for methods with parts missing",
    "shown_*": "the value the table headlines: measured when every part is built, else the paper's (shown_source)",
}


def _num(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, digits)


def paper_rows() -> dict[str, dict[str, Any]]:
    """The paper's Table 2 keyed by the paper's method spelling (bench/data/paper_tables/table2_complexity.csv)."""
    from bench.core.paper import table2

    return {str(r["paper_method"]): r for r in table2().to_dict("records")}


def _paper_size(paper: dict[str, Any]) -> tuple[int, int] | None:
    try:
        w, h = (int(x) for x in str(paper.get("input", "")).lower().split("x"))
        return w, h
    except ValueError:
        return None


def _extents(extents: dict[str, tuple[int, int]]) -> str:
    return ", ".join(f"{name} {e[0]}x{e[1]}" for name, e in sorted(extents.items())) or "fixed"


def method_rows(profile: MethodProfile, options: ProfileOptions, paper: dict[str, dict[str, Any]],
                gpu_name: str | None) -> list[dict[str, Any]]:
    """One row per measured dtype (one row when latency was not measured)."""
    arch = profile.arch
    p = paper.get(arch.paper_method or "", {})
    same_size = _paper_size(p) == (options.width, options.height) if p else False
    complete = arch.complete and not profile.error
    status = "error" if profile.error else ("no cost" if not arch.stages else
                                           "measured" if arch.complete else "partial")
    fv, fc = profile.macs_total("fvcore"), profile.macs_total("flopcounter")
    base = {
        "method": arch.method, "label": arch.label, "status": status, "steps": arch.steps,
        "size": f"{options.width}x{options.height}", "device": options.device,
        "params_g": _num(profile.params_total / G, 6) if complete else None,
        "params_lora_g": _num(profile.params_lora / G, 6) if complete else None,
        "macs_t": _num(fv / T) if complete else None,
        "macs_t_flopcounter": _num(fc / T) if complete else None,
        "macs_t_attention": _num(profile.attention_macs / T) if complete else None,
        "built_params_g": _num(profile.params_total / G, 6), "built_macs_t": _num(fv / T),
        "built_macs_t_flopcounter": _num(fc / T),
        "missing": [f"{m.name}: {m.reason}" for m in arch.missing],
        "paper_method": arch.paper_method,
        "paper_steps": p.get("steps"), "paper_params_g": p.get("params_g"),
        "paper_macs_t": p.get("macs_t") if same_size else None,
        "paper_time_s": p.get("time_s") if same_size and options.device.startswith("cuda") else None,
        "paper_gpu": p.get("gpu"),
        "notes": [*arch.notes, *(f"{x.part}: {x.note}" for x in profile.params if x.note),
                  *([profile.latency_note] if profile.latency_note else []),
                  *([f"error: {profile.error}"] if profile.error else [])],
    }
    timings = profile.timings or {None: None}
    rows = []
    for dtype, timing in timings.items():
        row = dict(base, dtype=dtype, time_s=None, time_p90_s=None, time_kind=None, memory_gb=None,
                   memory_kind=None, runs=None, floor_s=None, floor_ratio=None, peak_source=None)
        if timing is not None:
            row.update(time_s=_num(timing.median_s), time_p90_s=_num(timing.p90_s), time_kind=timing.time_kind,
                       memory_gb=_num(timing.memory_bytes / G), memory_kind=timing.memory_kind, runs=options.runs)
            if options.device.startswith("cuda") and gpu_name:
                peak, source = peak_flops(gpu_name, dtype, options.peak_tflops)
                row["peak_source"] = source
                if peak:
                    row["floor_s"] = _num(mac_floor_s(fc, peak), 5)
                    row["floor_ratio"] = _num(timing.median_s / row["floor_s"], 2) if row["floor_s"] else None
        for key in ("params_g", "macs_t", "time_s"):
            measured, claimed = row[key], row[f"paper_{key}"]
            row[f"diff_{key}"] = _num(measured - claimed) if measured is not None and claimed is not None else None
            row[f"rel_{key}"] = (_num((measured - claimed) / claimed) if measured is not None and claimed else None)
        _shown(row, complete)
        rows.append(row)
    return rows


def _shown(row: dict[str, Any], complete: bool) -> None:
    """Headline values: measured for complete methods, the paper's (labelled) where parts are missing."""
    if complete:
        row.update(shown_params_g=row["params_g"], shown_macs_t=row["macs_t"], shown_time_s=row["time_s"],
                   shown_source="measured")
        return
    missing = "; ".join(m.split(":")[0] for m in row["missing"]) or "error"
    row.update(shown_params_g=row["paper_params_g"], shown_macs_t=row["paper_macs_t"],
               shown_time_s=row["paper_time_s"], shown_source=f"paper (not built here: {missing})")


def stage_rows(profile: MethodProfile) -> list[dict[str, Any]]:
    """Per stage call: MACs under both conventions, fvcore's skipped operators, and timings per dtype."""
    rows = []
    for call in profile.macs:
        row = {"method": profile.arch.method, "stage": call.stage, "extents": _extents(call.extents),
               "calls": call.count, "note": call.note,
               "macs_g_per_call": _num(call.fvcore.total / G), "macs_g": _num(call.count * call.fvcore.total / G),
               "macs_g_flopcounter": _num(call.count * call.flopcounter.total / G),
               "macs_g_attention": _num(call.count * call.attention / G),
               "fvcore_by_op_g": {k: _num(v / G) for k, v in sorted(call.fvcore.by_op.items())},
               "flopcounter_by_op_g": {k: _num(v / G) for k, v in sorted(call.flopcounter.by_op.items())},
               "fvcore_skipped": ", ".join(f"{k} x{v}" for k, v in sorted(call.fvcore.skipped.items())),
               "fvcore_method": call.fvcore.method, "conv_agrees": call.conv_agrees,
               "dense_agrees": call.dense_agrees}
        for dtype, timing in profile.timings.items():
            match = [t for t in timing.calls if t.stage == call.stage and t.extents == call.extents]
            if match:
                row[f"time_s_{dtype}"] = _num(match[0].median_s, 5)
                row[f"time_p90_s_{dtype}"] = _num(match[0].p90_s, 5)
        rows.append(row)
    return rows


def part_rows(profile: MethodProfile) -> list[dict[str, Any]]:
    return [{"method": profile.arch.method, "part": p.part, "params_m": _num(p.total / 1e6, 3),
             "lora_m": _num(p.lora / 1e6, 3), "children_m": {k: _num(v / 1e6, 3) for k, v in p.children.items()},
             "note": p.note} for p in profile.params]


def gap_notes(rows: list[dict[str, Any]]) -> list[str]:
    """For each paper method with complete measurements at the paper's size: every convention beside the paper's
    MACs, and which one comes closest."""
    notes = []
    by_paper: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:  # one row per method (dtypes share their counts)
        if row["paper_macs_t"] and row["macs_t"] is not None:
            by_paper.setdefault(row["paper_method"], {}).setdefault(row["method"], row)
    for name, methods in by_paper.items():
        group = list(methods.values())
        claimed = group[0]["paper_macs_t"]
        options = []
        for row in group:
            for key, label in (("macs_t", "fvcore"), ("macs_t_flopcounter", "FlopCounterMode")):
                value = row[key]
                options.append((abs(value - claimed), f"{row['label']} {label} {value:.2f} T "
                                                      f"({100 * (value - claimed) / claimed:+.1f}%)"))
        best = min(options)[1]
        notes.append(f"{name} MACs: the paper reports {claimed} T at 1024 x 1024 without naming its counter. "
                     "Measured: " + "; ".join(o[1] for o in options) + f". Closest: {best}. fvcore skips attention, "
                     "FlopCounterMode counts it but not norms; unmerged LoRA adds its low-rank branches; the "
                     "release's latent tiling (rows marked tiled) runs the UNet on overlapping tiles, which costs "
                     "more.")
    return notes


def latex_table(rows: list[dict[str, Any]], size: str) -> str:
    """A booktabs table of the headline values beside the paper's; paper values standing in for unbuilt
    methods are marked with a dagger."""
    def cell(value: Any, digits: int, dagger: bool = False) -> str:
        if value is None:
            return "--"
        return f"{value:.{digits}f}" + ("$^\\dagger$" if dagger else "")

    lines = ["\\begin{tabular}{lrrrrrrr}", "\\toprule",
             "Method & \\#Step & Params (G) & MACs (T) & Time (s) & \\multicolumn{3}{c}{Paper: Params / MACs / Time} "
             "\\\\", "\\midrule"]
    for row in rows:
        paper_shown = row["shown_source"] != "measured"
        label = row["label"].replace("_", "\\_") + (f" ({row['dtype']})" if row.get("dtype") else "")
        lines.append(" & ".join([
            label, str(row["steps"]), cell(row["shown_params_g"], 3, paper_shown),
            cell(row["shown_macs_t"], 2, paper_shown), cell(row["shown_time_s"], 3, paper_shown),
            cell(row["paper_params_g"], 2), cell(row["paper_macs_t"], 2), cell(row["paper_time_s"], 2)]) + " \\\\")
    kinds = sorted({r["time_kind"] for r in rows if r.get("time_kind")})
    lines += ["\\bottomrule", "\\end{tabular}",
              (f"% Input {size}. MACs: fvcore (attention through SDPA not counted). $^\\dagger$: the paper's value, "
               "parts of the method not built here. Time: " + ("; ".join(kinds) or "not measured") + ".")]
    return "\n".join(lines) + "\n"


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of the headline values and the paper's, for the terminal."""
    header = ["method", "dtype", "status", "steps", "params_G", "MACs_T", "time_s", "MACs_T(FC)", "p90_s",
              "mem_GB", "built_params_G", "built_MACs_T", "paper_params", "paper_MACs", "paper_time", "source"]
    keys = ["method", "dtype", "status", "steps", "shown_params_g", "shown_macs_t", "shown_time_s",
            "macs_t_flopcounter", "time_p90_s", "memory_gb", "built_params_g", "built_macs_t", "paper_params_g",
            "paper_macs_t", "paper_time_s", "shown_source"]
    table = [header] + [["" if r.get(k) is None else str(r[k]) for k in keys] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("; ".join(map(str, v)) if isinstance(v, list) else
                             json.dumps(v) if isinstance(v, dict) else v) for k, v in row.items()})
    return out.getvalue()


def write_outputs(profiles: list[MethodProfile], options: ProfileOptions, out_dir: Path,
                  provenance: dict[str, Any], gpu_name: str | None = None) -> dict[str, Any]:
    """Write every output file atomically into `out_dir`; return the JSON document."""
    paper = paper_rows()
    rows = [r for p in profiles for r in method_rows(p, options, paper, gpu_name)]
    size = f"{options.width}x{options.height}"
    notes = [PAPER_NOTE, *gap_notes(rows),
             "CODiff's parameters count CaVE's encoder, proj, the UNet and the VAE (with the LoRA adapters when "
             "unmerged); CaVE's decoder and QF head only train CaVE and are not counted.",
             "Rows with status 'partial' have parts that cannot be built faithfully from public configurations; "
             "their headline (shown_*) values are the paper's, their built_* values cover the built parts only."]
    document = {
        "schema": SCHEMA, "size": [options.width, options.height], "device": options.device,
        "dtypes": options.dtypes if options.latency else [], "runs": options.runs, "warmup": options.warmup,
        "conventions": CONVENTIONS, "notes": notes, "rows": rows,
        "stages": [r for p in profiles for r in stage_rows(p)],
        "parts": [r for p in profiles for r in part_rows(p)], "provenance": provenance,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "profile.json", json.dumps(document, indent=1, default=str) + "\n")
    atomic_write_text(out_dir / "profile.csv", _csv_text(rows))
    atomic_write_text(out_dir / "stages.csv", _csv_text(document["stages"]))
    atomic_write_text(out_dir / "parts.csv", _csv_text(document["parts"]))
    atomic_write_text(out_dir / "profile.tex", latex_table(rows, size))
    summary = {"title": f"Complexity at {size}",
               "captions": {"stages.csv": "MACs (and times) per stage call: fvcore, FlopCounterMode, attention",
                            "parts.csv": "Parameters per stored network (millions)"},
               "notes": notes}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    return document
