"""The reduced-precision measurement: 8-bit level errors, and which dtypes a device can measure."""

from __future__ import annotations

import torch

from methods.codiff import precision as codiff_precision
from methods.codiff.precision import level_errors, measure, unmeasured_reason


def test_level_errors_count_8_bit_levels():
    ref = torch.full((1, 3, 4, 4), 100 / 255)
    out = ref.clone()
    out[0, 0, 0, 0] = 110 / 255  # 10 levels off
    out[0, 1, 0, :2] = 103 / 255  # 3 levels off, twice
    out[0, 2, 0, 0] = 102 / 255  # 2 levels: not counted as "over 2"
    errors = level_errors(out, ref)
    assert errors["max_levels"] == 10 and errors["share_over_2"] == 3 / 48
    assert abs(errors["mean_levels"] - (10 + 3 + 3 + 2) / 48) < 1e-6


def test_measure_compares_each_dtype_with_fp32_and_says_why_one_is_unmeasured(monkeypatch):
    monkeypatch.setattr(codiff_precision, "native_bf16_cpu", lambda: True)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}

    def build(dtype):  # a "pipeline" whose only error is rounding its input to the dtype
        return lambda x: x.to(dtypes[dtype]).float()

    lq = torch.linspace(0, 1, 3 * 64 * 64).reshape(1, 3, 64, 64)
    results = measure(build, lq, ["bf16", "fp16"], "cpu")
    assert set(results) == {"fp32", "bf16", "fp16"} and "CUDA" in results["fp16"]["unmeasured"]
    assert results["bf16"]["max_levels"] == level_errors(build("bf16")(lq), lq)["max_levels"] > 0
    monkeypatch.setattr(codiff_precision, "native_bf16_cpu", lambda: False)
    assert "no native bf16" in unmeasured_reason("bf16", "cpu") and unmeasured_reason("bf16", "cuda") is None
