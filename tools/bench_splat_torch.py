"""PyTorch-CPU reference of Kiln's splat rasteriser: the same math, dense per block of pixel rows.

Run (after `pip install -r tools/requirements.txt` and a release build):
    swift run -c release kiln-bench splat-export out/bench-splat
    python3 tools/bench_splat_torch.py out/bench-splat

For every exported scene it renders with PyTorch (2 threads), differentiates the same loss
(Σ d_color · colour) with autograd, compares image and gradients with Kiln's, and prints Kiln's
timings next to PyTorch's. The math follows Kiln's SplatReference: EWA projection with the 1.3×
frustum clamp, 0.3 px² low-pass, 3σ bounding squares, α = min(0.99, o·e^power) skipped below
1/255 or where power > 0, compositing stopped before T would drop below 1e-4. Pixels are processed
16 rows at a time against the Gaussians whose squares reach those rows (all pairs within a block
are evaluated densely); without that restriction a 128² × 20k scene needs tens of GB.
"""
import json
import pathlib
import statistics
import sys
import time

import numpy as np
import torch

C0 = 0.28209479177387814
torch.set_num_threads(2)


def load(folder, name):
    meta = json.loads((folder / f"{name}.json").read_text())
    def arr(suffix, shape):
        return torch.from_numpy(np.fromfile(folder / f"{name}_{suffix}.bin", dtype="<f4").reshape(shape).copy())
    n, s = meta["count"], meta["size"]
    k = (meta["sh_degree"] + 1) ** 2
    params = {
        "means": arr("means", (n, 3)), "log_scales": arr("log_scales", (n, 3)), "rotations": arr("rotations", (n, 4)),
        "opacity_logits": arr("opacity_logits", (n,)), "sh": arr("sh", (n, k, 3)),
    }
    extra = {"d_color": arr("d_color", (s, s, 3)), "kiln_color": arr("kiln_color", (s, s, 3))}
    for key in params:
        extra["kiln_grad_" + key] = arr("kiln_grad_" + key, params[key].shape)
    return meta, params, extra


def project(p, meta):
    m = torch.tensor(meta["camera_from_world"], dtype=torch.float32)
    rot, trans = m[:3, :3], m[:3, 3]
    fx, fy, cx, cy, size = meta["fx"], meta["fy"], meta["cx"], meta["cy"], meta["size"]
    cam = p["means"] @ rot.T + trans
    x, y, z = cam[:, 0], cam[:, 1], cam[:, 2]
    q = p["rotations"] / p["rotations"].norm(dim=1, keepdim=True)
    w, qx, qy, qz = q.unbind(1)
    r = torch.stack([
        1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - w * qz), 2 * (qx * qz + w * qy),
        2 * (qx * qy + w * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - w * qx),
        2 * (qx * qz - w * qy), 2 * (qy * qz + w * qx), 1 - 2 * (qx * qx + qy * qy)], 1).reshape(-1, 3, 3)
    mm = r * torch.exp(p["log_scales"])[:, None, :]
    sigma = mm @ mm.transpose(1, 2)
    sigma_cam = rot @ sigma @ rot.T
    tan_x, tan_y = 0.5 * size / fx, 0.5 * size / fy
    tx = z * torch.clamp(x / z, -(cx / fx + 0.3 * tan_x), (size - cx) / fx + 0.3 * tan_x)
    ty = z * torch.clamp(y / z, -(cy / fy + 0.3 * tan_y), (size - cy) / fy + 0.3 * tan_y)
    zeros = torch.zeros_like(z)
    jac = torch.stack([torch.stack([fx / z, zeros, -fx * tx / z ** 2], 1),
                       torch.stack([zeros, fy / z, -fy * ty / z ** 2], 1)], 1)
    cov = jac @ sigma_cam @ jac.transpose(1, 2)
    a, b, c = cov[:, 0, 0] + meta["low_pass"], cov[:, 0, 1], cov[:, 1, 1] + meta["low_pass"]
    det = a * c - b * b
    mid = 0.5 * (a + c)
    lam = mid + torch.sqrt(torch.clamp(mid * mid - det, min=0.1))
    radius = torch.ceil(3 * torch.sqrt(lam)).detach()
    u, v = fx * x / z + cx, fy * y / z + cy
    visible = ((z >= meta["near_plane"]) & (det > 0) & (radius > 0) & (u + radius > 0) & (u - radius < size)
               & (v + radius > 0) & (v - radius < size)).detach()
    color = torch.clamp(p["sh"][:, 0, :] * C0 + 0.5, min=0)
    opacity = torch.sigmoid(p["opacity_logits"])
    conic = torch.stack([c / det, -b / det, a / det], 1)
    return u, v, conic, z, radius, visible, color, opacity


def render(p, meta, d_color=None, rows=16):
    """Colour image; with d_color, also back-propagates Σ d_color·colour block by block."""
    size = meta["size"]
    out = torch.zeros(size, size, 3)
    ys = torch.arange(size, dtype=torch.float32) + 0.5
    xs = torch.arange(size, dtype=torch.float32) + 0.5
    for y0 in range(0, size, rows):
        u, v, conic, z, radius, visible, color, opacity = project(p, meta)
        order = torch.argsort(z.detach() + 0 * torch.arange(len(z)), stable=True)
        y1 = min(size, y0 + rows)
        reach = visible & (v + radius >= y0 + 0.5) & (v - radius <= y1 - 0.5)
        idx = order[reach[order]]
        if len(idx) == 0:
            continue
        py = ys[y0:y1, None].expand(y1 - y0, size).reshape(-1, 1)
        px = xs[None, :].expand(y1 - y0, size).reshape(-1, 1)
        dx, dy = u[idx][None, :] - px, v[idx][None, :] - py
        r = radius[idx][None, :]
        ca, cb, cc = conic[idx, 0][None, :], conic[idx, 1][None, :], conic[idx, 2][None, :]
        power = -0.5 * (ca * dx * dx + cc * dy * dy) - cb * dx * dy
        alpha = torch.clamp(opacity[idx][None, :] * torch.exp(power), max=0.99)
        valid = ((dx.abs() <= r) & (dy.abs() <= r) & (power <= 0) & (alpha >= 1 / 255)).detach()
        alpha = torch.where(valid, alpha, torch.zeros_like(alpha))
        stop = (torch.cumprod(1 - alpha.detach(), 1) < 1e-4)
        keep = (torch.cumsum(stop.int(), 1) == 0)
        alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
        t_incl = torch.cumprod(1 - alpha, 1)
        t_excl = torch.cat([torch.ones_like(t_incl[:, :1]), t_incl[:, :-1]], 1)
        rgb = (alpha * t_excl) @ color[idx]  # background is black in the benchmark scenes
        block = rgb.reshape(y1 - y0, size, 3)
        if d_color is not None:
            (block * d_color[y0:y1]).sum().backward()
        out[y0:y1] = block.detach()
    return out


def timed(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    folder = pathlib.Path(sys.argv[1])
    names = sorted(p.stem for p in folder.glob("scene_*.json"))
    if not names:
        print(f"no scene_*.json in {folder}: run kiln-bench splat-export first")
        sys.exit(2)
    print("| size | Gaussians | Kiln fwd 1T | Kiln fwd 2T | Kiln f+b 1T | Kiln f+b 2T | PyTorch fwd 2T | PyTorch f+b 2T | f+b speed-up | image max abs | worst grad rel |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in sorted(names, key=lambda n: tuple(int(t) for t in n.split("_")[1:])):
        meta, params, extra = load(folder, name)
        leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        with torch.no_grad():
            image = render(leaves, meta)
        image_error = (image - extra["kiln_color"]).abs().max().item()
        for leaf in leaves.values():
            leaf.grad = None
        render(leaves, meta, extra["d_color"])
        worst = 0.0
        for key, leaf in leaves.items():
            ref = leaf.grad
            scale = max(1e-3, ref.abs().max().item())
            worst = max(worst, (extra["kiln_grad_" + key] - ref).abs().max().item() / scale)
        runs = 3
        with torch.no_grad():
            forward_ms = timed(lambda: render(leaves, meta), runs)
        def both():
            for leaf in leaves.values():
                leaf.grad = None
            render(leaves, meta, extra["d_color"])
        both_ms = timed(both, runs)
        k = meta["kiln_ms"]
        print(f"| {meta['size']}² | {meta['count']} | {k['forward_1']:.2f} | {k['forward_2']:.2f} | {k['forward_backward_1']:.2f} | "
              f"{k['forward_backward_2']:.2f} | {forward_ms:.1f} | {both_ms:.1f} | {both_ms / k['forward_backward_2']:.1f}× | "
              f"{image_error:.2e} | {worst:.2e} |", flush=True)


if __name__ == "__main__":
    main()
