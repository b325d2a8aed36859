"""`codiff-bench weights`: listing every file of a config's metrics and methods, and `--download` through the
libraries' own downloaders from a mirror on 127.0.0.1 serving stand-in files (never the internet)."""

from __future__ import annotations

import hashlib
import shutil
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.cli import main
from bench.core.weights import WeightFile
from methods.base import Method

COMMIT = "0123456789abcdef0123456789abcdef01234567"
VIT = "timm/vit_base_patch8_224.augreg2_in21k_ft_in1k"


@dataclass(frozen=True)
class OneFileOptions:
    path: str = ""
    url: str = ""
    sha256: str = ""


class OneFileMethod(Method):
    """A method needing one file given by its config (path, url, sha256)."""

    name = "test-weights-file"
    config_class = OneFileOptions

    def required_weights(self) -> list[WeightFile]:
        return [WeightFile("test file", Path(self.opts.path), where="the test's folder", url=self.opts.url,
                           sha256_prefix=self.opts.sha256)]

    def restore(self, request):
        return request.lq


class Mirror(ThreadingHTTPServer):
    """Serves files by URL path: flat names as a plain mirror, `<repo>/resolve/main/<file>` as a Hugging Face
    endpoint (with the commit and ETag headers huggingface_hub reads). Records every request."""

    def __init__(self, files: dict[str, Path]) -> None:
        super().__init__(("127.0.0.1", 0), _MirrorHandler)
        self.files, self.requests = files, []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _MirrorHandler(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        path = self.path.split("?")[0]
        self.server.requests.append((self.command, path))
        source = self.server.files.get(path)
        if source is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(source.stat().st_size))
        self.send_header("ETag", f'"{hashlib.sha256(source.read_bytes()).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()
        if send_body:
            with open(source, "rb") as fh:
                shutil.copyfileobj(fh, self.wfile)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def one_file_method(monkeypatch) -> str:
    """OneFileMethod registered for one test only."""
    from methods.registry import METHODS

    METHODS.register(OneFileMethod.name, OneFileMethod)  # the registries fixture removes it afterwards
    return OneFileMethod.name


@pytest.fixture
def mirror(metrics_standin_root, tmp_path, monkeypatch):
    """A mirror of the session's stand-in files plus one method file; its URL is set as both mirrors."""
    root, _ = metrics_standin_root
    hub = root / "torch" / "hub"
    method_file = tmp_path / "served" / "method.pth"
    method_file.parent.mkdir()
    method_file.write_bytes(b"method weights")
    files = {f"/{p.name}": p for folder in ("checkpoints", "pyiqa") for p in (hub / folder).iterdir()}
    files[f"/{VIT}/resolve/main/model.safetensors"] = next(root.glob("huggingface/hub/models--timm--*/snapshots/*/*"))
    files["/method.pth"] = method_file
    server = Mirror(files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CODIFF_BENCH_WEIGHTS_MIRROR", server.url)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.shutdown()
    thread.join()


def test_lists_missing_files_with_their_folders(metrics_caches, capsys):
    assert main(["weights", "--metrics", "psnr,lpips,maniqa", "--methods", "jpeg"]) == 1
    out = capsys.readouterr().out
    hub = metrics_caches / "torch" / "hub"
    assert "metric psnr: PSNR in dB" in out and "higher is better\n  (no files)" in out
    assert "metric lpips: LPIPS v0.1, AlexNet features (pyiqa 'lpips'); lower is better" in out
    assert f"  missing     alexnet-owt-7be5be79.pth\n{'':14}{hub / 'checkpoints' / 'alexnet-owt-7be5be79.pth'}" in out
    assert "belongs in: torchvision weights, folder $TORCH_HOME/hub/checkpoints" in out
    assert "from: https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in out
    assert str(hub / "pyiqa" / "ckpt_koniq10k.pt") in out
    assert f"missing     {VIT}/model.safetensors" in out and "Hugging Face cache" in out
    assert "method jpeg\n  (no files)" in out
    assert "4 files: 4 missing" in out


def test_reads_metrics_and_methods_from_a_config(metrics_caches, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("metrics: [psnr, musiq]\nmethods: [jpeg, {name: jpeg-again, method: jpeg}]\n")
    assert main(["weights", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "metric musiq" in out and "musiq_koniq_ckpt-e95806b9.pth" in out and "method jpeg-again" in out
    assert main(["weights", "--config", str(config), "--metrics", "psnr"]) == 0
    assert "no files needed" in capsys.readouterr().out
    assert main(["weights", "--metrics", "psnrr"]) == 2
    assert "unknown metric 'psnrr' (did you mean 'psnr'" in capsys.readouterr().err
    assert main(["weights", "--metrics", "psnr", "--methods", "nosuch"]) == 2
    assert "unknown method 'nosuch'" in capsys.readouterr().err


def test_reports_wrong_hashes_of_present_files(metrics_standins, capsys):
    assert main(["weights", "--metrics", "lpips,maniqa,clipiqa", "--methods", "jpeg"]) == 1
    out = capsys.readouterr().out
    # Stand-ins sit where the real files go but cannot match the hashes their names carry.
    assert "  wrong hash  alexnet-owt-7be5be79.pth" in out and "  wrong hash  LPIPS_v0.1_alex-df73285e.pth" in out
    assert f"  present     {VIT}/model.safetensors" in out and "  present     ckpt_koniq10k.pt" in out
    assert "  missing     RN50.pt" in out
    assert "5 files: 1 missing, 2 present, 2 wrong hash" in out


def test_reports_unreadable_files(metrics_standins, metrics_standin_root, tmp_path, monkeypatch, capsys):
    root, _ = metrics_standin_root
    shutil.copytree(root / "torch", tmp_path / "torch")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoint = tmp_path / "torch" / "hub" / "pyiqa" / "ckpt_koniq10k.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:4096])
    assert main(["weights", "--metrics", "maniqa", "--methods", "jpeg"]) == 1
    out = capsys.readouterr().out
    assert f"  present     {VIT}/model.safetensors" in out and "  unreadable  ckpt_koniq10k.pt" in out
    assert "cannot be read as a weights file without running code" in out and "2 files: 1 present, 1 unreadable" in out


@pytest.mark.slow
def test_download_fetches_missing_files_into_the_library_caches(mirror, metrics_caches, one_file_method, tmp_path,
                                                                capsys):
    from bench.metrics import check_metrics

    cache = tmp_path / "prefetched"
    method_path = tmp_path / "methods" / "method.pth"
    config = tmp_path / "run.yaml"
    sha = hashlib.sha256(b"method weights").hexdigest()[:8]
    config.write_text(f"metrics: [lpips, musiq, maniqa]\nmethods:\n  - name: mine\n    method: {one_file_method}\n"
                      f"    path: {method_path}\n    url: https://example.invalid/weights/method.pth\n"
                      f"    sha256: {sha}\n")
    argv = ["weights", "--config", str(config), "--download", "--cache-dir", str(cache)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    hub = cache / "torch" / "hub"
    # torchvision's file is checked against the hash in its name: the stand-in is refused and not kept.
    assert "alexnet-owt-7be5be79.pth: download failed" in captured.err and "hash" in captured.err
    assert not (hub / "checkpoints" / "alexnet-owt-7be5be79.pth").exists()
    assert "  missing     alexnet-owt-7be5be79.pth" in captured.out
    # pyiqa's downloader keeps what it fetched; the listing then flags the hash.
    served = mirror.files["/musiq_koniq_ckpt-e95806b9.pth"].read_bytes()
    assert (hub / "pyiqa" / "musiq_koniq_ckpt-e95806b9.pth").read_bytes() == served
    assert "  wrong hash  musiq_koniq_ckpt-e95806b9.pth" in captured.out
    # huggingface_hub stores the ViT in its own cache layout.
    vit = cache / "huggingface" / "hub" / "models--timm--vit_base_patch8_224.augreg2_in21k_ft_in1k"
    assert (vit / "refs" / "main").read_text() == COMMIT
    assert (vit / "snapshots" / COMMIT / "model.safetensors").is_file()
    assert method_path.read_bytes() == b"method weights"
    assert f"  present     {VIT}/model.safetensors" in captured.out and "  present     test file" in captured.out
    # The run engine's check finds them where the libraries will look (hashes are not its business).
    available, skipped = check_metrics(["lpips", "musiq", "maniqa"])
    assert available == ["musiq", "maniqa"] and "alexnet-owt-7be5be79.pth is missing" in skipped["lpips"]

    # A second pass fetches only what is still missing.
    mirror.requests.clear()
    assert main(argv) == 1
    assert {path for method, path in mirror.requests if method == "GET"} == {"/alexnet-owt-7be5be79.pth"}
