"""Fetch missing weight files through each library's own downloader, into that library's cache.

torchvision and CLIP files: torch.hub.download_url_to_file (checked against the hash in their names);
pyiqa files: pyiqa's load_file_from_url; Hugging Face files: huggingface_hub.hf_hub_download. Each writes
to a temporary file first, so a failed download leaves nothing behind. CODIFF_BENCH_WEIGHTS_MIRROR
replaces the host of plain URLs; HF_ENDPOINT that of Hugging Face repositories.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.core.errors import BenchError
from bench.core.weights import WeightFile
from bench.metrics.caches import hf_endpoint, hf_hub_cache, library_caches, mirror_url
from bench.metrics.files import MetricFile

_HF_URL = re.compile(r"^https?://[^/]+/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")


class DownloadError(BenchError, RuntimeError):
    """A file could not be fetched (no source known, network or hash failure)."""


def as_metric_file(weight: WeightFile) -> MetricFile:
    """Describe a method's file for downloading: a Hugging Face file when its URL and path say so."""
    match = _HF_URL.match(weight.url or "")
    if match and hf_hub_cache() in weight.path.parents:
        return MetricFile(weight, fetch="hf", hf_repo=match["repo"], hf_filename=match["filename"])
    return MetricFile(weight, fetch="torch-hub" if weight.url else "none")


def source_url(item: MetricFile) -> str | None:
    """Where `fetch` gets the file from (after the mirror's substitution)."""
    if item.fetch == "hf":
        return f"{hf_endpoint()}/{item.hf_repo}/resolve/main/{item.hf_filename}"
    return mirror_url(item.weight.url) if item.weight.url else None


def fetch(item: MetricFile) -> Path:
    """Download `item` where its library will look for it; return the path. Raises DownloadError."""
    w = item.weight
    try:
        with library_caches(offline=False):
            if item.fetch == "hf":
                from huggingface_hub import hf_hub_download

                return Path(hf_hub_download(item.hf_repo, item.hf_filename, cache_dir=str(hf_hub_cache()),
                                            endpoint=hf_endpoint()))
            if item.fetch == "pyiqa":
                from pyiqa.utils.download_util import load_file_from_url

                return Path(load_file_from_url(source_url(item), model_dir=str(w.path.parent), file_name=w.path.name))
            if item.fetch == "torch-hub" and w.url:
                import torch.hub

                w.path.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(source_url(item), str(w.path), hash_prefix=w.sha256_prefix)
                return w.path
    except Exception as exc:  # noqa: BLE001 - reported per file; the others are still fetched
        raise DownloadError(f"{w.label}: download failed: {type(exc).__name__}: {exc}") from exc
    raise DownloadError(f"{w.label}: no download source is known; put the file at {w.path} by hand")
