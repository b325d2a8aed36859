"""The weight files each learned metric reads, taken from the libraries' own tables (URLs, names, configs).

Every entry says where its library looks for it (TORCH_HOME or the Hugging Face cache), where it is
downloaded from, and how to build, with empty weights, the network whose tensors it must hold.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from bench.core.weights import WeightFile
from bench.metrics.caches import (
    hf_endpoint,
    hf_hub_cache,
    library_caches,
    torch_hub_dir,
)
from bench.metrics.files import MetricFile, Reference

# torch hub's naming convention: "<name>-<first hex digits of the SHA-256>.<ext>".
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.\w+$")

# CLIP's published hashes are the full SHA-256, the folder above the file name in its URL.
_CLIP_HASH = re.compile(r"/([a-f0-9]{64})/[^/]+$")

_SHAPES: dict[str, dict[str, torch.Tensor]] = {}  # meta_state's results by key


def meta_state(key: str, build: Callable[[], torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The tensors (as meta tensors: names, shapes, dtypes, aliases) of the module `build()` makes.

    Its parameters are created empty (accelerate's `init_empty_weights`: no memory, no initialisation);
    backbone weights it loads on construction are read from the cache, offline. Shapes depend only on the
    architecture, so the result is kept under `key` for the life of the process.
    """
    if key not in _SHAPES:
        from accelerate import init_empty_weights

        with library_caches(), warnings.catch_warnings(), init_empty_weights(include_buffers=False):
            warnings.filterwarnings("ignore", message=".*non-meta parameter.*")
            state = build().state_dict(keep_vars=True)
        metas: dict[int, torch.Tensor] = {}
        _SHAPES[key] = {k: metas.setdefault(id(v), torch.empty_like(v, device="meta")) for k, v in state.items()}
    return _SHAPES[key]


def pyiqa_options(pyiqa_name: str, options: dict[str, Any]) -> dict[str, Any]:
    """pyiqa's default options for a metric, updated with the caller's (what pyiqa.create_metric uses)."""
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    return {**DEFAULT_CONFIGS[pyiqa_name]["metric_opts"], **options}


def pyiqa_reference(pyiqa_name: str, options: dict[str, Any]) -> Reference:
    """The network pyiqa builds for the metric, without its own pretrained file (backbones still load)."""
    from pyiqa.archs import build_network

    opts = {**pyiqa_options(pyiqa_name, options), "pretrained": False}
    key = "pyiqa " + json.dumps(opts, sort_keys=True, default=str)
    return lambda: meta_state(key, lambda: build_network(dict(opts)))


def _hash_from_name(name: str) -> str | None:
    match = _HASH_IN_NAME.search(name)
    return match.group(1) if match else None


def torchvision_file(weights: Any, build: Callable[[], torch.nn.Module]) -> MetricFile:
    """A torchvision ImageNet checkpoint (a `WeightsEnum` member), in $TORCH_HOME/hub/checkpoints."""
    name = weights.url.rsplit("/", 1)[-1]
    return MetricFile(
        WeightFile(label=name, path=torch_hub_dir() / "checkpoints" / name, url=weights.url,
                   sha256_prefix=_hash_from_name(name),
                   where="torchvision weights, folder $TORCH_HOME/hub/checkpoints"),
        fetch="torch-hub", reference=lambda: meta_state(f"torchvision {name}", build))


def pyiqa_file(url: str, reference: Reference, required_prefixes: tuple[str, ...] = ()) -> MetricFile:
    """A pyiqa checkpoint, in $TORCH_HOME/hub/pyiqa (pyiqa's load_file_from_url folder)."""
    name = url.rsplit("/", 1)[-1]
    return MetricFile(
        WeightFile(label=name, path=torch_hub_dir() / "pyiqa" / name, url=url, sha256_prefix=_hash_from_name(name),
                   where="pyiqa weights, folder $TORCH_HOME/hub/pyiqa"),
        fetch="pyiqa", reference=reference, required_prefixes=required_prefixes)


def hf_file(repo: str, filename: str, reference: Reference) -> MetricFile:
    """A file of a Hugging Face repository, in the hub cache (snapshots/<commit>/<filename>)."""
    cache = hf_hub_cache()
    repo_folder = cache / ("models--" + repo.replace("/", "--"))
    ref = repo_folder / "refs" / "main"
    commit = ref.read_text().strip() if ref.is_file() else None
    # Until the repository is cached its commit is unknown: point at the repository folder.
    path = repo_folder / "snapshots" / commit / filename if commit else repo_folder
    return MetricFile(
        WeightFile(label=f"{repo}/{filename}", path=path, url=f"{hf_endpoint()}/{repo}/resolve/main/{filename}",
                   where=f"Hugging Face cache $HF_HUB_CACHE, repository {repo}, stored as "
                         f"snapshots/<commit>/{filename}"),
        fetch="hf", reference=reference, hf_repo=repo, hf_filename=filename)


def clip_archive(backbone: str) -> MetricFile:
    """OpenAI's CLIP archive as pyiqa's CLIP loader wants it: $TORCH_HOME/hub/clip, matching its full SHA-256."""
    from pyiqa.archs.clip_model import _MODELS

    url = _MODELS[backbone]
    name = url.rsplit("/", 1)[-1]
    return MetricFile(
        WeightFile(label=name, path=torch_hub_dir() / "clip" / name, url=url,
                   sha256_prefix=_CLIP_HASH.search(url).group(1),
                   where="OpenAI CLIP archive, folder $TORCH_HOME/hub/clip; pyiqa checks its full SHA-256 and "
                         "downloads it again on a mismatch"),
        fetch="torch-hub", hash_enforced=True)


def clip_file_at(path: Path, reference: Reference) -> MetricFile:
    """A CLIP TorchScript archive at a path of the user's choice, read by pyiqa's CLIP `load(path)`.

    pyiqa checks the hash only of archives it finds by name, so this also serves a copy of OpenAI's file
    kept elsewhere (or a stand-in); its tensors are checked against the CLIP architecture instead.
    """
    return MetricFile(WeightFile(label=path.name, path=path, where="CLIP TorchScript archive given as clip_path"),
                      fetch="none", reference=reference, torchscript=True)


def clip_rn50_reference() -> Reference:
    """CLIP RN50 (the backbone of pyiqa's clipiqa): 1024-d embeddings, ResNet (3, 4, 6, 3) of width 64 at
    224 px, a 12-layer 512-wide text transformer over 77 tokens of a 49408-word vocabulary."""
    from pyiqa.archs.clip_model import CLIP

    return lambda: meta_state("clip RN50", lambda: CLIP(1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12))


# -- the learned metrics --------------------------------------------------------------------------------

def lpips_files(options: dict[str, Any]) -> list[MetricFile]:
    import torchvision.models as tvm
    from pyiqa.archs.lpips_arch import default_model_urls

    opts = pyiqa_options("lpips", options)
    backbone = {"alex": (tvm.AlexNet_Weights.IMAGENET1K_V1, tvm.alexnet),
                "vgg": (tvm.VGG16_Weights.IMAGENET1K_V1, tvm.vgg16)}[opts["net"]]
    return [torchvision_file(*backbone),
            pyiqa_file(default_model_urls[f"{opts['version']}_{opts['net']}"], pyiqa_reference("lpips", options),
                       required_prefixes=("lin",))]


def dists_files(options: dict[str, Any]) -> list[MetricFile]:
    import torchvision.models as tvm
    from pyiqa.archs.dists_arch import default_model_urls

    return [torchvision_file(tvm.VGG16_Weights.IMAGENET1K_V1, tvm.vgg16),
            pyiqa_file(default_model_urls["url"], pyiqa_reference("dists", options),
                       required_prefixes=("alpha", "beta"))]


def musiq_files(options: dict[str, Any]) -> list[MetricFile]:
    from pyiqa.archs.musiq_arch import default_model_urls

    opts = pyiqa_options("musiq", options)
    return [pyiqa_file(default_model_urls[opts["pretrained"]], pyiqa_reference("musiq", options))]


def maniqa_files(options: dict[str, Any]) -> list[MetricFile]:
    import timm
    from pyiqa.archs.maniqa_arch import default_model_urls
    from timm.models._hub import HF_SAFE_WEIGHTS_NAME

    # pyiqa's MANIQA builds timm's "vit_base_patch8_224" with its default pretrained tag.
    cfg = timm.models.get_pretrained_cfg("vit_base_patch8_224")
    vit = hf_file(cfg.hf_hub_id, HF_SAFE_WEIGHTS_NAME,
                  lambda: meta_state("timm vit_base_patch8_224",
                                     lambda: timm.create_model("vit_base_patch8_224", pretrained=False)))
    opts = pyiqa_options("maniqa", options)
    return [vit, pyiqa_file(default_model_urls[opts["train_dataset"]], pyiqa_reference("maniqa", options))]


def clipiqa_files(options: dict[str, Any]) -> list[MetricFile]:
    if options.get("clip_path"):
        return [clip_file_at(Path(options["clip_path"]), clip_rn50_reference())]
    import inspect

    from pyiqa.archs.clipiqa_arch import CLIPIQA

    default = inspect.signature(CLIPIQA).parameters["backbone"].default
    return [clip_archive(pyiqa_options("clipiqa", options).get("backbone", default))]


def clipiqa_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """`clip_path` (a CLIP RN50 TorchScript archive) goes to pyiqa's CLIP loader in place of the backbone name."""
    options = dict(options)
    path = options.pop("clip_path", None)
    if path:
        options["backbone"] = str(path)
    return options
