"""The CaVE analysis: every figure, table and summary written; silhouettes in embedding space; the t-SNE
perplexity rule; per-QF error; errors recorded; reuse of an up-to-date folder; the command and the run hook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.analysis import AnalysisInputs
from bench.analysis.separation import qf_errors, silhouettes, tsne_perplexity
from bench.core.protocol import JpegProtocol
from methods.codiff.analysis.cave import (
    CaveAnalysis,
    CaveAnalysisConfig,
    CaveAnalysisError,
    run_cave_analysis,
)
from methods.codiff.analysis.samples import crop_boxes
from methods.codiff.cave import CaVE, CaVEConfig, init_cave_weights, save_cave

QFS = [1, 5, 10, 50]


def tiny_cave(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = init_cave_weights(CaVE(CaVEConfig(nc=(4, 8, 8, 16), nb=1)))
    return save_cave(model.eval(), path)


@pytest.fixture
def caves(tmp_path: Path) -> list[str]:
    return [f"explicit={tiny_cave(tmp_path / 'ckpt' / 'a', 0)}", f"dual={tiny_cave(tmp_path / 'ckpt' / 'b', 1)}"]


@pytest.fixture
def images(tmp_path: Path, make_images) -> list[tuple[str, Path]]:
    paths = make_images(tmp_path / "imgs", [(64, 72), (48, 80), (70, 64)])
    return [(p.name, p) for p in paths]


def config(caves: list[str], **kw) -> CaveAnalysisConfig:
    return CaveAnalysisConfig(caves=caves, qfs=QFS, crops=2, crop_size=32, **kw)


def test_tsne_perplexity_rule() -> None:
    assert tsne_perplexity(1000) == 30.0
    assert tsne_perplexity(91) == 30.0
    assert tsne_perplexity(31) == pytest.approx(10.0)
    assert tsne_perplexity(2) == 1.0
    for n in (2, 3, 5, 17, 90, 500):
        assert 1.0 <= tsne_perplexity(n) < n
    with pytest.raises(ValueError):
        tsne_perplexity(1)


def test_silhouettes_are_defined_by_embedding_distances() -> None:
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(0)
    qfs = np.repeat([1, 5, 10, 20], 10)
    centres = {1: 0.0, 5: 0.3, 10: 10.0, 20: 20.0}  # 1 and 5 overlap each other, the rest stand apart
    x = np.stack([rng.normal(centres[q], 1.0, 6) for q in qfs])
    scores = silhouettes(x, qfs, [1, 5])
    assert scores["all"] == pytest.approx(silhouette_score(x, qfs))
    mask = np.isin(qfs, [1, 5])
    assert scores["unseen_only"] == pytest.approx(silhouette_score(x[mask], qfs[mask]))
    assert scores["unseen_only"] < 0.2 < scores["all"]
    separated = np.stack([rng.normal(centres[q] if q > 5 else 40.0 * q, 1.0, 6) for q in qfs])
    assert silhouettes(separated, qfs, [1, 5])["unseen_only"] > 0.9
    # Undefined cases give None rather than a number.
    assert silhouettes(x[:10], qfs[:10], [1, 5]) == {"all": None, "unseen_in_all": None, "unseen_only": None}


def test_qf_errors_per_qf() -> None:
    rows = qf_errors(np.array([10, 10, 50]), np.array([12.0, 6.0, 50.0]))
    assert rows[0] == {"qf": 10, "n": 2, "mse": 10.0, "mae": 3.0, "mean_estimate": 9.0, "std_estimate": 3.0}
    assert rows[1]["mse"] == 0.0


def test_crop_boxes_stay_on_the_block_grid() -> None:
    boxes = crop_boxes(100, 130, 32, 5, np.random.default_rng(0))
    assert len(boxes) == 5
    assert all(t % 8 == 0 and l % 8 == 0 and t + 32 <= 100 and l + 32 <= 130 for t, l, _ in boxes)
    assert crop_boxes(20, 130, 32, 5, np.random.default_rng(0)) == [(0, 0, 0)]
    assert crop_boxes(100, 130, 32, 0, np.random.default_rng(0)) == [(0, 0, 0)]


@pytest.mark.slow
def test_analysis_writes_every_figure_table_and_summary(tmp_path: Path, caves, images) -> None:
    out = tmp_path / "out"
    summary = run_cave_analysis(config(caves), images, out, progress=False)
    n = len(images) * len(QFS) * 2
    for figure in summary["figures"]:
        for kind in ("png", "svg"):
            assert (out / figure[kind]).stat().st_size > 1000
    for table in summary["tables"]:
        assert (out / table["csv"]).is_file()
    assert set(summary["captions"]) >= {"tsne.png", "qf_mse.png", "silhouette.csv", "samples.csv"}
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["key"] == summary["key"] and on_disk["samples_per_checkpoint"] == n
    assert on_disk["tsne"]["perplexity"] == tsne_perplexity(n)
    assert not list(out.glob(".tmp-*"))

    samples = pd.read_csv(out / "samples.csv")
    assert len(samples) == 2 * n and set(samples["checkpoint"]) == {"explicit", "dual"}
    assert samples.loc[samples["qf"].isin([1, 5]), "unseen"].all()
    assert not samples.loc[~samples["qf"].isin([1, 5]), "unseen"].any()
    assert np.allclose(samples["sq_error"], (samples["qf_estimate"] - samples["qf"]) ** 2, rtol=1e-5,
                       atol=1e-3)
    mse = pd.read_csv(out / "qf_mse.csv")
    assert len(mse) == 2 * len(QFS)
    for (label, qf), group in samples.groupby(["checkpoint", "qf"]):
        row = mse[(mse["checkpoint"] == label) & (mse["qf"] == qf)].iloc[0]
        assert row["mse"] == pytest.approx(group["sq_error"].mean(), rel=1e-4)
        assert summary["qf_mse"][label][str(qf)] == pytest.approx(row["mse"], rel=1e-6)

    # The silhouette is the embedding space's, not the t-SNE layout's.
    from sklearn.metrics import silhouette_score

    data = np.load(out / "embeddings.npz")
    sil = pd.read_csv(out / "silhouette.csv")
    for label in ("explicit", "dual"):
        emb = data[f"emb/{label}"]
        assert emb.shape == (n, 16)
        expected = silhouette_score(emb, data["qf"])
        assert summary["silhouette"][label]["all"] == pytest.approx(expected, abs=1e-9)
        assert sil[(sil.checkpoint == label) & (sil.scope == "all")]["score"].iloc[0] == pytest.approx(expected, abs=1e-5)
        layout = samples[samples.checkpoint == label][["tsne_x", "tsne_y"]].to_numpy()
        assert summary["silhouette"][label]["all"] != pytest.approx(silhouette_score(layout, data["qf"]), abs=1e-6)


def test_inputs_key_follows_settings_checkpoints_and_images(tmp_path: Path, caves, images) -> None:
    from methods.codiff.analysis.cave import inputs_key, resolve_cave

    specs = [resolve_cave(c) for c in caves]
    key = inputs_key(config(caves), specs, images, JpegProtocol())
    assert key == inputs_key(config(caves), specs, images, JpegProtocol())
    assert key != inputs_key(config(caves, seed=3), specs, images, JpegProtocol())
    assert key != inputs_key(config(caves), specs, images[:2], JpegProtocol())
    assert key != inputs_key(config(caves), specs, images, JpegProtocol(subsampling="444"))
    tiny_cave(specs[0].path.with_suffix(""), 7)  # same file, new weights
    assert key != inputs_key(config(caves), specs, images, JpegProtocol())


def test_bad_inputs_are_recorded_not_fatal(tmp_path: Path, caves, images) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    missing = str(tmp_path / "missing.safetensors")
    summary = run_cave_analysis(config([*caves[:1], f"gone={missing}"]), [*images[:2], ("broken.png", broken)],
                                tmp_path / "out", progress=False)
    items = {e["item"] for e in summary["errors"]}
    assert items == {"broken.png", "gone"} and list(summary["silhouette"]) == ["explicit"]
    with pytest.raises(CaveAnalysisError, match="no checkpoint"):
        run_cave_analysis(config([missing]), images, tmp_path / "out2", progress=False)
    analysis = CaveAnalysis(caves=[str(missing)], qfs=QFS, crops=1, crop_size=32)
    with pytest.raises(CaveAnalysisError, match="missing"):
        analysis.run(AnalysisInputs(images, JpegProtocol(), tmp_path / "run", progress=False))


@pytest.mark.slow
def test_command_writes_into_the_run_folder(tmp_path: Path, caves, images) -> None:
    from bench.cli import main

    folder = images[0][1].parent
    images = [(f"imgs/{name}", path) for name, path in images]  # the command's ids: dataset/image
    status = main(["cave-analysis", *[arg for c in caves for arg in ("--cave", c)], "--images", str(folder),
                   "--qfs", "1,5,10,50", "--crops", "1", "--crop-size", "32", "--run-dir", str(tmp_path / "run"),
                   "--quiet"])
    assert status == 0
    out = tmp_path / "run" / "analyses" / "cave"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 3 and summary["unseen_qfs"] == [1, 5]
    stamp = (out / "tsne.png").stat().st_mtime_ns
    again = run_cave_analysis(CaveAnalysisConfig(caves=caves, qfs=QFS, crops=1, crop_size=32), images, out,
                              progress=False)  # the up-to-date folder is reused, nothing rewritten
    assert again["key"] == summary["key"] and (out / "tsne.png").stat().st_mtime_ns == stamp
