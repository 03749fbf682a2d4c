"""Kiln's NeRF render (forward + backward) next to PyTorch-CPU running the same math.

Run from the repository root:

    swift run -c release kiln-bench nerf-export out/bench-nerf --threads 2
    python3 tools/bench_nerf_torch.py out/bench-nerf [--threads 2] [--runs 7]

kiln-bench writes one 64² view of a NeRFField (hash grid 12 levels × 2 features, 2^15 slots per
level, a 64-wide ReLU MLP, truncated-exp density with the density bias, sigmoid colour) with 64
samples per ray, every sample's position and interval, a colour gradient, Kiln's image, Kiln's
parameter gradients and Kiln's median timings. This script evaluates the same field at the same
samples in PyTorch (gather-based hash encoding, the same slots, torch.cumprod compositing,
autograd for the backward pass), checks the image and gradients against Kiln's, and prints both
timings (median of --runs after a warm-up, --threads threads) in one table.
"""
import argparse
import json
import pathlib
import statistics
import sys
import time

import torch
from safetensors.torch import load_file

PRIME_Y, PRIME_Z = 2654435761, 805459861


def encode(unit, table, info):
    levels, f, t_size = info["levels"], info["features_per_level"], 1 << info["log2_table_size"]
    table = table.view(levels, t_size, f)
    outs = []
    for level, n in enumerate(info["resolutions"]):
        x = unit.clamp(0, 1) * n
        cell = torch.minimum(torch.floor(x).long(), torch.tensor(n - 1))
        frac = x - cell
        side = n + 1
        feature = 0
        for c in range(8):
            d = torch.tensor([c & 1, (c >> 1) & 1, (c >> 2) & 1])
            corner = cell + d
            if side ** 3 <= t_size:
                slot = corner[:, 0] + side * (corner[:, 1] + side * corner[:, 2])
            else:
                h = (corner[:, 0] ^ ((corner[:, 1] * PRIME_Y) & 0xFFFFFFFF) ^ ((corner[:, 2] * PRIME_Z) & 0xFFFFFFFF)) & 0xFFFFFFFF
                slot = h & (t_size - 1)
            w = torch.where(d == 1, frac, 1 - frac).prod(dim=1, keepdim=True)
            feature = feature + w * table[level][slot]
        outs.append(feature)
    return torch.cat(outs, dim=1)


def render(params, data, info):
    points = data["points"].reshape(-1, 3)
    center = torch.tensor(info["center"])
    unit = (points - center) / (2 * info["half_size"]) + 0.5
    features = encode(unit, params["encoding.table"], info)
    hidden = torch.relu(features @ params["mlp.0.weight"].T + params["mlp.0.bias"])
    z = hidden @ params["mlp.2.weight"].T + params["mlp.2.bias"]
    blob = info["blob_density"] * (1 - (points - center).norm(dim=1) / info["blob_radius"])
    sigma = torch.exp(torch.clamp(z[:, 0] + blob, max=15.0))
    color = torch.sigmoid(z[:, 1:4])
    rays, samples = data["t"].shape
    sigma = sigma.view(rays, samples)
    color = color.view(rays, samples, 3)
    alpha = 1 - torch.exp(-sigma * data["deltas"])
    transmittance = torch.cumprod(torch.cat([torch.ones(rays, 1), 1 - alpha[:, :-1]], dim=1), dim=1)
    weights = transmittance * alpha
    opacity = weights.sum(dim=1, keepdim=True)
    return (weights.unsqueeze(-1) * color).sum(dim=1) + (1 - opacity) * torch.tensor(info["background"], dtype=torch.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    folder = pathlib.Path(a.folder)
    info = json.loads((folder / "nerf.json").read_text())
    data = load_file(str(folder / "nerf.safetensors"))
    names = ["encoding.table", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"]
    params = {n: data[n].clone().requires_grad_(True) for n in names}

    def forward():
        with torch.no_grad():
            return render(params, data, info)

    def both():
        for p in params.values():
            p.grad = None
        image = render(params, data, info)
        (image * data["d_color"]).sum().backward()
        return image

    def timed(fn):
        fn()
        times = []
        for _ in range(a.runs):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    forward_ms, both_ms = timed(forward), timed(both)
    image = both()
    image_error = (image.detach() - data["kiln_color"]).abs().max().item()
    grad_errors = {}
    for n in names:
        g, k = params[n].grad, data["grad." + n]
        grad_errors[n] = ((g - k).abs().max() / (g.abs().max() + 1e-12)).item()
    print(f"NeRF render of a {info['size']}² view, {info['samples']} samples per ray, {a.threads} threads (Kiln: {info['threads']}), median of {a.runs}")
    print("| pass | Kiln ms | PyTorch ms | PyTorch / Kiln |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| forward | {info['kiln_forward_ms']:.1f} | {forward_ms:.1f} | {forward_ms / info['kiln_forward_ms']:.1f}× |")
    print(f"| forward + backward | {info['kiln_forward_backward_ms']:.1f} | {both_ms:.1f} | {both_ms / info['kiln_forward_backward_ms']:.1f}× |")
    print(f"image max |Kiln − PyTorch| = {image_error:.2e} (Kiln stops a ray once T < 1e-4)")
    print("gradient max error / max |gradient|: " + ", ".join(f"{n} {e:.1e}" for n, e in grad_errors.items()))
    print(f"torch {torch.__version__}")
    return 0 if image_error < 1e-3 and max(grad_errors.values()) < 1e-2 else 1


if __name__ == "__main__":
    sys.exit(main())
