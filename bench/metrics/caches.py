"""Where the libraries keep weights (TORCH_HOME, the Hugging Face cache), and keeping them offline.

pyiqa and huggingface_hub read their cache folders and offline switch once, at import; `library_caches()`
points them at the folders the environment names now and, offline, forbids every download.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

# Libraries that log every weight file they load at INFO; quietened to WARNING unless debugging.
_CHATTY_LOGGERS = ("pyiqa", "timm")

MIRROR_ENV = "CODIFF_BENCH_WEIGHTS_MIRROR"
"""Base URL of a mirror serving weight files by file name (`<mirror>/<file name>`), used instead of each
file's own URL by `codiff-bench weights --download`. Hugging Face repositories follow `HF_ENDPOINT`."""


class NetworkForbidden(RuntimeError):
    """A library tried to download a file while the harness requires the local cache only."""


def torch_hub_dir() -> Path:
    """`$TORCH_HOME/hub` (torch's own resolution), where torchvision, pyiqa and CLIP weights live."""
    import torch.hub

    return Path(torch.hub.get_dir())


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, resolved from the environment as huggingface_hub does."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(os.path.expanduser(explicit)))
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"


def hf_endpoint() -> str:
    """The Hugging Face endpoint (`HF_ENDPOINT`, read now rather than at import)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def mirror_url(url: str) -> str:
    """`url`, or the same file name under the mirror named by CODIFF_BENCH_WEIGHTS_MIRROR."""
    mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
    return f"{mirror}/{url.rsplit('/', 1)[-1]}" if mirror else url


def cache_environment(folder: str | os.PathLike) -> dict[str, str]:
    """The variables that put every cache under `folder`: TORCH_HOME=<folder>/torch, HF_HOME=<folder>/huggingface."""
    folder = Path(folder).expanduser().resolve()
    return {"TORCH_HOME": str(folder / "torch"), "HF_HOME": str(folder / "huggingface"),
            "HF_HUB_CACHE": str(folder / "huggingface" / "hub")}


def use_cache_dir(folder: str | os.PathLike) -> Path:
    """Put every cache under `folder` for the rest of the process (see `cache_environment`)."""
    os.environ.update(cache_environment(folder))
    return Path(folder).expanduser().resolve()


@contextlib.contextmanager
def cache_dir(folder: str | os.PathLike) -> Iterator[Path]:
    """Put every cache under `folder` for the duration of the block."""
    with contextlib.ExitStack() as undo:
        for name, value in cache_environment(folder).items():
            undo.callback(_restore_env, name, os.environ.get(name))
            os.environ[name] = value
        yield Path(folder).expanduser().resolve()


@contextlib.contextmanager
def library_caches(offline: bool = True) -> Iterator[None]:
    """Sync pyiqa's and huggingface_hub's cache folders and offline switch with the environment, for a while.

    Offline (the default) sets HF_HUB_OFFLINE, so that huggingface_hub answers from its cache at once
    instead of retrying the network, and makes torch's and pyiqa's URL downloaders raise
    `NetworkForbidden`; `offline=False` (explicit downloads) lifts HF_HUB_OFFLINE for the duration.
    pyiqa's and timm's INFO messages about each file they load are held back unless debugging.
    """
    import huggingface_hub.constants as hf_constants
    import pyiqa.utils.download_util as pyiqa_download
    import torch.hub
    from pyiqa.utils import get_root_logger

    def refuse(url: str, dst: str, *args, **kwargs) -> None:
        raise NetworkForbidden(f"refusing to download {url} to {dst}: weights are read from the cache only "
                               f"(fetch them with `codiff-bench weights --download`)")

    patches = [(hf_constants, "HF_HUB_CACHE", str(hf_hub_cache())),
               (pyiqa_download, "DEFAULT_CACHE_DIR", str(torch_hub_dir() / "pyiqa")),
               (hf_constants, "HF_HUB_OFFLINE", offline)]
    if offline:
        patches += [(torch.hub, "download_url_to_file", refuse), (pyiqa_download, "download_url_to_file", refuse)]
    get_root_logger()  # pyiqa sets its logger's level when first asked for it
    with contextlib.ExitStack() as undo:
        for obj, attr, value in patches:
            undo.callback(setattr, obj, attr, getattr(obj, attr))
            setattr(obj, attr, value)
        if not log.isEnabledFor(logging.DEBUG):
            for logger in map(logging.getLogger, _CHATTY_LOGGERS):
                undo.callback(logger.setLevel, logger.level)
                logger.setLevel(max(logger.level, logging.WARNING))
        undo.callback(_restore_env, "HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE"))
        os.environ["HF_HUB_OFFLINE"] = "1" if offline else "0"
        yield


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
