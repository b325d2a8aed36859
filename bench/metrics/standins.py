"""Stand-in weight files: random tensors with the names and shapes of the real ones, in the real places.

They let tests run every learned metric through pyiqa's own loading code, offline. Their scores mean
nothing, so they are written only into a cache folder of their own, never into the user's caches.
Large tensors repeat one random slice along their first dimension, so that torch files stay small
(safetensors files cannot share memory and are written in full).
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from bench.core.atomic import atomic_path, atomic_write_text
from bench.metrics.caches import cache_dir, hf_hub_cache, torch_hub_dir
from bench.metrics.files import MetricFile, check_intact, unaliased
from bench.metrics.registry import metric_files

LEARNED_METRICS = ("lpips", "dists", "musiq", "maniqa", "clipiqa")
_LARGE = 1 << 16  # tensors with more elements than this repeat one random slice


def standin_tensor(name: str, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random tensor shaped like `like`, scaled so that a network made of them stays finite."""
    shape = tuple(like.shape)
    if not like.is_floating_point():
        return torch.zeros(shape, dtype=like.dtype)
    if name.endswith("running_var"):
        return torch.ones(shape, dtype=like.dtype)
    if name.endswith("running_mean"):
        return torch.zeros(shape, dtype=like.dtype)
    if len(shape) >= 2:
        scale = 1.0 / math.sqrt(math.prod(shape[1:]) or 1)
        if math.prod(shape) > _LARGE:
            return (torch.randn(shape[1:], generator=generator) * scale).to(like.dtype).expand(shape)
        return (torch.randn(shape, generator=generator) * scale).to(like.dtype)
    values = torch.randn(shape, generator=generator)
    if name.endswith("weight"):  # the scale of a normalisation layer
        return (1 + 0.1 * values).to(like.dtype)
    return (0.02 * values).to(like.dtype)


def standin_state(expected: Mapping[str, torch.Tensor], seed: int = 0,
                  required_prefixes: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Stand-in tensors for every name of `expected` (only those with `required_prefixes` when given)."""
    generator = torch.Generator().manual_seed(seed)
    names = [k for k in unaliased(expected) if k.startswith(required_prefixes)] if required_prefixes \
        else list(expected)
    return {name: standin_tensor(name, expected[name], generator) for name in names}


class _Holder(torch.nn.Module):
    """A module that only holds tensors, so that a state dict can be saved as a TorchScript archive."""


def _holder(state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    root = _Holder()
    for name, tensor in state.items():
        *path, leaf = name.split(".")
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, _Holder())
            module = getattr(module, part)
        if tensor.is_floating_point():
            module.register_parameter(leaf, torch.nn.Parameter(tensor, requires_grad=False))
        else:
            module.register_buffer(leaf, tensor)
    return root


def write_state(path: Path, state: Mapping[str, torch.Tensor], torchscript: bool = False) -> Path:
    """Save tensors atomically: as safetensors (by extension), a TorchScript archive, or with torch.save."""
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
        elif torchscript:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.save(torch.jit.script(_holder(state)), str(tmp))
        else:
            torch.save(dict(state), tmp)
    return path


def hf_cache_file(repo: str, filename: str) -> Path:
    """Where a file of `repo` goes in the Hugging Face cache, creating refs/main for a stand-in commit."""
    folder = hf_hub_cache() / ("models--" + repo.replace("/", "--"))
    ref = folder / "refs" / "main"
    if ref.is_file():
        commit = ref.read_text().strip()
    else:
        commit = hashlib.sha1(f"stand-in {repo}".encode()).hexdigest()
        atomic_write_text(ref, commit)
    return folder / "snapshots" / commit / filename


def write_standin(item: MetricFile, seed: int = 0) -> Path:
    """Write a stand-in for one file where its library looks for it; return its path."""
    if item.reference is None:
        raise ValueError(f"{item.weight.label} has no known layout to imitate (its loader checks the exact hash)")
    path = hf_cache_file(item.hf_repo, item.hf_filename) if item.fetch == "hf" else item.path
    state = standin_state(item.reference(), seed + zlib.crc32(item.weight.label.encode()), item.required_prefixes)
    return write_state(path, state, torchscript=item.torchscript)


def write_standins(root: str | os.PathLike, names: Iterable[str] = LEARNED_METRICS,
                   seed: int = 0) -> dict[str, dict[str, Any]]:
    """Write stand-ins for every file of `names` into caches under `root` (never the user's own caches):
    <root>/torch is their TORCH_HOME and <root>/huggingface their HF_HOME, as `--cache-dir <root>` sets.

    Returns, per metric, the `create_metric` options that use them: clipiqa reads a CLIP RN50 TorchScript
    archive from `clip_path` (<root>/torch/hub/clip/RN50-standin.pt), because pyiqa accepts a file under
    OpenAI's name only with its published hash.
    """
    options: dict[str, dict[str, Any]] = {}
    with cache_dir(root):
        for name in names:
            opts = {"clip_path": str(torch_hub_dir() / "clip" / "RN50-standin.pt")} if name == "clipiqa" else {}
            for item in metric_files(name, **opts):  # backbones come first: the later files' networks load them
                if check_intact(item) is not None:
                    write_standin(item, seed)
            options[name] = opts
    return options
