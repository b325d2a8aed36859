"""A metric's weight file: where it lives, how its library fetches it, and how to tell a usable copy.

A file is checked before any library reads it: present, of the known size and hash (when known, or when
its library insists on it), readable without executing code (`torch.load(weights_only=True)` or
safetensors), and holding the tensors, names and shapes, that the network loading it expects.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from bench.core.torchload import load_weights_only
from bench.core.weights import WeightFile

Reference = Callable[[], Mapping[str, torch.Tensor]]

# Tensors that loaders drop before loading (CLIP's build_model deletes these entries).
_IGNORED_KEYS = ("input_resolution", "context_length", "vocab_size")


@dataclass(frozen=True)
class MetricFile:
    """A `WeightFile` plus what the harness needs to check and fetch it.

    `fetch` is 'torch-hub' (torch.hub.download_url_to_file, hash-checked when the name carries one),
    'pyiqa' (pyiqa's load_file_from_url) or 'hf' (huggingface_hub, `hf_repo`/`hf_filename`).
    `reference` gives (as meta tensors) the tensors the loading network expects; `required_prefixes`
    limits which of them the file must hold when the loader is not strict (the others may be absent).
    `hash_enforced`: the library re-downloads a file whose hash differs, so a mismatch makes it unusable.
    `torchscript`: the loader wants a TorchScript archive (OpenAI's CLIP format) rather than a state dict.
    """

    weight: WeightFile
    fetch: str
    reference: Reference | None = None
    required_prefixes: tuple[str, ...] = ()
    hash_enforced: bool = False
    torchscript: bool = False
    hf_repo: str | None = None
    hf_filename: str | None = None

    @property
    def path(self) -> Path:
        return self.weight.path


def is_torchscript(path: Path) -> bool:
    """True for a TorchScript archive (a zip holding constants.pkl), which torch.load refuses."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def load_tensors(path: Path) -> Mapping[str, torch.Tensor]:
    """The tensors of a weights file without running Python code: safetensors, a TorchScript archive's state
    dict (TorchScript's own restricted format), or torch.load(weights_only=True)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as fh:
            return {key: fh.get_slice(key) for key in fh.keys()}
    if is_torchscript(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    state = load_weights_only(path, mmap=zipfile.is_zipfile(path))
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}, not a state dict")
    # pyiqa strips the "module." prefix of checkpoints saved from DataParallel before loading.
    return {k.removeprefix("module."): v for k, v in state.items()}


def unaliased(expected: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of `expected` without aliases (a module registered twice appears under both names)."""
    seen: set[int] = set()
    names = []
    for key, value in expected.items():
        if id(value) not in seen:
            seen.add(id(value))
            names.append(key)
    return names


def _shape(value) -> tuple[int, ...] | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    get_shape = getattr(value, "get_shape", None)  # a safetensors slice
    return tuple(get_shape()) if get_shape else None


def _listing(items: list[str], limit: int = 4) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def compare_state(found: Mapping[str, object], expected: Mapping[str, torch.Tensor],
                  required_prefixes: tuple[str, ...] = ()) -> str | None:
    """None when `found` fits `expected` (names and shapes), else what differs."""
    exp = {k: tuple(v.shape) for k, v in expected.items()}
    required = [k for k in unaliased(expected) if not required_prefixes or k.startswith(required_prefixes)]
    got = {k: _shape(v) for k, v in found.items() if k not in _IGNORED_KEYS}
    missing = [k for k in required if k not in got]
    unexpected = [k for k in got if k not in exp]
    wrong = [f"{k} is {list(got[k])} instead of {list(exp[k])}" for k in got if k in exp and got[k] != exp[k]]
    if not (missing or unexpected or wrong):
        return None
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} of {len(required)} expected tensors: {_listing(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors: {_listing(unexpected)}")
    if wrong:
        parts.append(f"wrong shapes: {_listing(wrong)}")
    return "; ".join(parts)


def expected_summary(expected: Mapping[str, torch.Tensor], required_prefixes: tuple[str, ...] = ()) -> str:
    keys = [k for k in unaliased(expected) if not required_prefixes or k.startswith(required_prefixes)]
    first = keys[0] if keys else ""
    return f"a state dict of {len(keys)} tensors such as {first} {list(expected[first].shape) if first else ''}"


def _place(w: WeightFile) -> str:
    return f"{w.path}" + (f" ({w.where})" if w.where else "")


def check_intact(item: MetricFile, *, verify_hash: bool = False) -> str | None:
    """None if the file is present with the known size and hash, else a sentence naming it and where it goes.

    The hash is compared when `verify_hash` or when the file's library insists on it.
    """
    w = item.weight
    if not w.path.is_file():
        return f"{w.label} is missing: expected at {_place(w)}"
    size = w.path.stat().st_size
    if w.size is not None and size != w.size:
        return f"{w.label} has {size} bytes, expected {w.size} (truncated or a different file): {_place(w)}"
    if w.sha256_prefix and (verify_hash or item.hash_enforced):
        digest = w.sha256()
        if not digest.startswith(w.sha256_prefix):
            return (f"{w.label} has SHA-256 {digest[:len(w.sha256_prefix)]}..., expected {w.sha256_prefix} "
                    f"(a different or damaged file): {_place(w)}")
    return None


def check_tensors(item: MetricFile) -> str | None:
    """None if the file reads without running code and holds the tensors its network expects."""
    w = item.weight
    if item.reference is None:
        return None
    try:
        expected = item.reference()
    except Exception as exc:  # noqa: BLE001 - the network may need other files that are unusable
        return f"{w.label} could not be checked, the network that loads it could not be built ({exc}): {_place(w)}"
    wanted = f"expected {expected_summary(expected, item.required_prefixes)}"
    try:
        found = load_tensors(w.path)
    except Exception as exc:  # noqa: BLE001 - any failure to read means the file is unusable
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (f"{w.label} ({w.path.stat().st_size} bytes) cannot be read as a weights file without running "
                f"code (truncated, corrupt or not a state dict: {reason}; {wanted}): {_place(w)}")
    problem = compare_state(found, expected, item.required_prefixes)
    if problem:
        return f"{w.label} does not hold the expected tensors ({wanted}; {problem}): {_place(w)}"
    return None


def first_tensor_problem(items: list[MetricFile]) -> tuple[int, str] | None:
    """(index, problem) of the first file, in order, whose tensors are wrong or unreadable, else None.

    Files come backbones first, and the network that defines a file's expected tensors reads the files
    before it (with its library's own loader, which may unpickle freely): so checking stops at the first
    unusable file, before any later network is built.
    """
    for index, item in enumerate(items):
        problem = check_tensors(item)
        if problem:
            return index, problem
    return None


def inspect_files(items: list[MetricFile], *, verify_hash: bool = False) -> list[str]:
    """The problems of a metric's files: every missing or damaged one, else the first with wrong tensors."""
    problems = [p for item in items if (p := check_intact(item, verify_hash=verify_hash))]
    if problems:
        return problems
    first = first_tensor_problem(items)
    return [first[1]] if first else []
