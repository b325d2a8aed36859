"""Peak memory of CODiff's VAE stages against image size, on the full-size SD VAE with random weights (CPU).

    python -m methods.codiff.vae_memory --sizes 1024 2048 --tilings release gaussian

Each (size, tiling) runs in its own process: the VAE encoder on a square image, then the decoder on its latent,
with `TileConfig`'s defaults for that tiling (release: 1024 px / 224 latent px; gaussian: 1024 px tiles overlapping
by 64 and 96 latent px tiles overlapping by 16). It prints one JSON line per case: peak RSS above the RSS once
the VAE is built (ru_maxrss, GB) and seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch

from methods.codiff.benchmark import current_rss_gb, peak_rss_gb, sample_image

GAUSSIAN = {"vae_encoder_tile": 1024, "vae_encoder_overlap": 64, "vae_decoder_tile": 96, "vae_decoder_overlap": 16}


def run_case(side: int, tiling: str, dtype: str) -> dict:
    from diffusers import AutoencoderKL

    from methods.codiff.sd import SD21_CONFIGS
    from methods.codiff.tiling import tiled_map
    from methods.codiff.vae_tiler import ReleaseVAETiler

    torch.manual_seed(0)
    precision = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(SD21_CONFIGS / "vae")).to(precision).eval()
    x = (sample_image(side, side) * 2 - 1).to(precision)
    loaded, start = current_rss_gb(), time.perf_counter()
    with torch.inference_mode():
        if tiling == "release":
            h = ReleaseVAETiler(vae.encoder, 1024, decoder=False)(x)
            z = vae.quant_conv(h.to(precision))[:, :4]
            ReleaseVAETiler(vae.decoder, 224, decoder=True)(vae.post_quant_conv(z))
        else:
            z = tiled_map(lambda t: vae.quant_conv(vae.encoder(t))[:, :4], x, GAUSSIAN["vae_encoder_tile"],
                          GAUSSIAN["vae_encoder_overlap"], down=8).to(precision)
            tiled_map(lambda t: vae.decoder(vae.post_quant_conv(t)), z, GAUSSIAN["vae_decoder_tile"],
                      GAUSSIAN["vae_decoder_overlap"], up=8)
    return {"side": side, "tiling": tiling, "dtype": dtype, "peak_above_loaded_gb": round(peak_rss_gb() - loaded, 2),
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--tilings", nargs="+", default=["release", "gaussian"], choices=["release", "gaussian"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)  # side tiling: run one case in this process
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(int(args.case[0]), args.case[1], args.dtype)), flush=True)
        return
    for side in args.sizes:
        for tiling in args.tilings:
            done = subprocess.run([sys.executable, "-m", "methods.codiff.vae_memory", "--dtype", args.dtype,
                                   "--case", str(side), tiling], capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            print(lines[-1] if lines else json.dumps({"side": side, "tiling": tiling, "failed": done.returncode,
                                                      "error": done.stderr.strip().splitlines()[-1:]}), flush=True)


if __name__ == "__main__":
    main()
