"""Kiln's UNet2DConditionModel forward next to PyTorch's (diffusers), same weights, same threads.

Run from the repository root:

    python3 tools/bench_unet_torch.py [--kiln PATH_TO_kiln-bench] [--threads 2] [--runs 7]

For each config below it builds the diffusers model with random weights (fixed seed), saves it as
`unet/config.json` + `unet/diffusion_pytorch_model.safetensors` under .build/bench-unet/<name>/,
with one batch of inputs and diffusers' output (`io.safetensors`), and times PyTorch's forward
(torch.no_grad, float32, `torch.set_num_threads`) at each config's size: the 10.9 M reference at 64²
with batch 1 and 4, the built-in prior (assets/prior/train_config.json) at 32² with batch 1 and 8. Both sides report the
best of --runs timings after a warm-up: on a shared machine slowdowns come from other tenants, and
the best run is the one nothing disturbed. Then it runs
`kiln-bench unet --folder ... --json` (building kiln-bench in release if no path is given), which
loads the same files, checks its output against diffusers' and times Kiln's forward the same way.
Prints one table: ms of each, and Kiln / PyTorch, and the OpenBLAS kernels Kiln ran on
(OPENBLAS_CORETYPE in the environment is respected).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / ".build" / "bench-unet"

CONFIGS = {
    # The 10.9 M-parameter 64² UNet of the project notes: no attention at full resolution,
    # cross-attention at 32² and 16², one ResNet per level.
    "reference-10.9M": dict(
        sample_size=64, in_channels=3, out_channels=3, block_out_channels=(64, 128, 192),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1, cross_attention_dim=128, attention_head_dim=8, norm_num_groups=32,
    ),
}
# The built-in prior's architecture, read from its training config (32², view projection).
_shipped = json.loads((ROOT / "assets" / "prior" / "train_config.json").read_text())["unet"]
CONFIGS["builtin"] = {k: tuple(v) if isinstance(v, list) else v for k, v in _shipped.items() if not k.startswith("_")}
TEXT_TOKENS = 77
# Batch 8 is one distillation step of the built-in prior: 4 views, each with and without the prompt.
BATCHES = {"reference-10.9M": (1, 4), "builtin": (1, 8)}


def build(name, config, seed):
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**config).eval()
    folder = OUT / name / "unet"
    folder.mkdir(parents=True, exist_ok=True)
    unet.save_config(folder)
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(folder / "diffusion_pytorch_model.safetensors"))
    return unet


def inputs(config, batch, seed):
    g = torch.Generator().manual_seed(seed)
    size = config["sample_size"]
    args = dict(sample=torch.randn(batch, config["in_channels"], size, size, generator=g),
                timestep=torch.full((batch,), 500.0),
                encoder_hidden_states=torch.randn(batch, TEXT_TOKENS, config["cross_attention_dim"], generator=g))
    if config.get("class_embed_type") == "projection":
        args["class_labels"] = torch.randn(batch, config["projection_class_embeddings_input_dim"], generator=g)
    return args


def time_torch(unet, args, runs):
    with torch.no_grad():
        unet(**args)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            unet(**args)
            times.append(time.perf_counter() - start)
    return min(times) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", help="path to a release kiln-bench binary")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    kiln = a.kiln
    if kiln is None:
        subprocess.run(["swift", "build", "-c", "release", "--product", "kiln-bench"], cwd=ROOT, check=True)
        kiln = str(ROOT / ".build" / "release" / "kiln-bench")
    rows = []
    for index, (name, config) in enumerate(CONFIGS.items()):
        unet = build(name, config, seed=10 + index)
        parameters = sum(p.numel() for p in unet.parameters())
        io = {}
        torch_ms = {}
        for batch in BATCHES[name]:
            args = inputs(config, batch, seed=20 + batch)
            torch_ms[batch] = time_torch(unet, args, a.runs)
            with torch.no_grad():
                output = unet(**args).sample
            for key, value in args.items():
                io[f"b{batch}.{key}"] = value.float().contiguous()
            io[f"b{batch}.output"] = output.contiguous()
        save_file(io, str(OUT / name / "io.safetensors"))
        result = subprocess.run([kiln, "unet", "--folder", str(OUT / name), "--threads", str(a.threads), "--runs", str(a.runs),
                                 "--batches", ",".join(map(str, BATCHES[name])), "--json"], check=True, capture_output=True, text=True,
                                env={**os.environ, "KILN_THREADS": str(a.threads)})
        kiln_result = json.loads(result.stdout)
        kiln_blas = kiln_result["blas"]
        for batch in BATCHES[name]:
            k = kiln_result["batches"][str(batch)]
            rows.append((name, config["sample_size"], parameters, batch, k["ms"], torch_ms[batch], k["max_relative_error"]))
    print(f"UNet2DConditionModel forward, float32, {a.threads} threads, best of {a.runs} runs; Kiln: {kiln_blas}")
    print("| config | size | parameters | batch | Kiln ms | PyTorch ms | Kiln / PyTorch | max rel. error vs diffusers |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, size, parameters, batch, kiln_ms, torch_ms_b, error in rows:
        print(f"| {name} | {size}² | {parameters / 1e6:.2f} M | {batch} | {kiln_ms:.1f} | {torch_ms_b:.1f} | {kiln_ms / torch_ms_b:.2f} | {error:.1e} |")
    print(f"torch {torch.__version__}, diffusers {__import__('diffusers').__version__}")


if __name__ == "__main__":
    sys.exit(main())
