"""Training throughput of `kiln train-vae` and `kiln train-prior` next to the same steps in PyTorch.

Run from the repository root (after pip install -r tools/requirements.txt):

    python3 tools/bench_train_torch.py [--kiln PATH_TO_kiln-bench] [--threads 2] [--steps 5]
        [--prior-config assets/configs/prior-latent-128.json] [--vae-config assets/configs/vae-128.json]

Both sides build the networks of the same configs (diffusers' AutoencoderKL, UNet2DConditionModel
and transformers' CLIPTextModel here; Kiln's own there) with random weights and time the same
training step on random data of the configs' sizes, float32, on --threads threads, after one
warm-up step:
- the VAE: a batch of crops, encode, sample the posterior, decode, L1 + SSIM (11×11 Gaussian,
  valid positions) + KL, backward, gradient clipping, AdamW, EMA;
- the prior: a batch of (latent) images, DDPM noise at random timesteps, the text encoder on
  77-token captions, the UNet with the view vector as class labels, the Min-SNR-γ ε loss,
  backward through both networks, clipping, AdamW, EMA.
Then it runs `kiln-bench train --json` (building kiln-bench in release if no path is given) and
prints one table per model: samples per second of each, Kiln / PyTorch, and the milliseconds of
each stage (PyTorch's backward is one call for both networks; Kiln's stages are summed to match).

With --conv-shapes it times instead each convolution shape of the prior's UNet at the training
batch (`kiln-bench conv-shapes`: the shapes read from the UNet's parameters), forward and
backward (weight, bias and input gradients) in both, best of --runs, with the totals weighted by
the number of layers of each shape.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
VIEW = 8  # ViewConditioning.length
TOKENS = 77


def public(config):
    return {k: v for k, v in config.items() if not k.startswith("_")}


class Stages:
    def __init__(self):
        self.ms = {}

    def __call__(self, name, fn):
        start = time.perf_counter()
        out = fn()
        self.ms[name] = self.ms.get(name, 0.0) + 1000 * (time.perf_counter() - start)
        return out


def gaussian_window():
    x = torch.arange(-5, 6, dtype=torch.float32)
    k = torch.exp(-x * x / (2 * 1.5 ** 2))
    k = k / k.sum()
    return k


def ssim(a, b, window):
    """Mean SSIM over valid positions of every channel (Kiln's SSIMLoss, scikit-image's SSIM)."""
    c = a.shape[1]
    kh = window.view(1, 1, 1, 11).repeat(c, 1, 1, 1)
    kv = window.view(1, 1, 11, 1).repeat(c, 1, 1, 1)

    def blur(x):
        return F.conv2d(F.conv2d(x, kh, groups=c), kv, groups=c)

    ma, mb = blur(a), blur(b)
    saa, sbb, sab = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma * ma + mb * mb + c1) * (saa + sbb + c2))
    return s.mean()


def ema_update(shadow, params, decay):
    with torch.no_grad():
        torch._foreach_lerp_(shadow, params, 1 - decay)


def backward_and_update(stages, loss, optimizer, params, shadow, training):
    """The backward pass, then clipping, AdamW and the EMA, as both Kiln trainers do."""
    optimizer.zero_grad(set_to_none=True)
    stages("backward", loss.backward)

    def update():
        torch.nn.utils.clip_grad_norm_(params, training.get("max_grad_norm", 1.0))
        optimizer.step()
        ema_update(shadow, params, training.get("ema_decay", 0.999))

    stages("optimizer", update)


def measure(step, steps, batch, params):
    """One warm-up step, then `steps` timed ones: samples per second and each stage's ms per step."""
    step(Stages())
    stages = Stages()
    start = time.perf_counter()
    for _ in range(steps):
        step(stages)
    seconds = time.perf_counter() - start
    return {"samples_per_second": steps * batch / seconds, "step_ms": 1000 * seconds / steps,
            "stages_ms": {k: v / steps for k, v in stages.ms.items()}, "parameters": sum(p.numel() for p in params), "batch": batch}


def bench_vae(config, steps):
    v, t = config["vae"], config.get("training", {})
    levels = len(v["block_out_channels"])
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=v.get("latent_channels", 4),
                        block_out_channels=tuple(v["block_out_channels"]), down_block_types=("DownEncoderBlock2D",) * levels,
                        up_block_types=("UpDecoderBlock2D",) * levels, layers_per_block=v.get("layers_per_block", 1),
                        norm_num_groups=v.get("norm_num_groups", 32), scaling_factor=1.0)
    batch, crop = t.get("batch_size", 8), t.get("crop_size", 64)
    ssim_weight, kl_weight, l1_weight = t.get("ssim_weight", 0.2), t.get("kl_weight", 1e-5), t.get("l1_weight", 1.0)
    params = list(vae.parameters())
    optimizer = torch.optim.AdamW(params, lr=t.get("learning_rate", 1e-3), weight_decay=t.get("weight_decay", 0.0))
    shadow = [p.detach().clone() for p in params]
    window = gaussian_window()
    g = torch.Generator().manual_seed(0)

    def step(stages):
        x = stages("data", lambda: torch.rand(batch, 3, crop, crop, generator=g) * 2 - 1)
        posterior = stages("encoder forward", lambda: vae.encode(x).latent_dist)
        z = posterior.sample(generator=g)
        recon = stages("decoder forward", lambda: vae.decode(z).sample)

        def loss_fn():
            a, b = (recon + 1) / 2, (x + 1) / 2
            kl = 0.5 * (posterior.mean ** 2 + posterior.var - 1 - posterior.logvar).mean()
            return l1_weight * (a - b).abs().mean() + ssim_weight * (1 - ssim(a, b, window)) + kl_weight * kl

        loss = stages("loss", loss_fn)
        backward_and_update(stages, loss, optimizer, params, shadow, t)

    return measure(step, steps, batch, params)


def bench_prior(config, vae_config, steps):
    u, t = config["unet"], config.get("training", {})
    unet = UNet2DConditionModel(**public(u))
    text = CLIPTextModel(CLIPTextConfig(**{k: v for k, v in config["text_encoder"].items() if k != "model_type"}))
    scheduler = DDPMScheduler(**public(config["scheduler"]))
    batch, channels, size = t.get("batch_size", 32), u["in_channels"], u["sample_size"]
    vocab = config["text_encoder"]["vocab_size"]
    gamma = t.get("snr_gamma")
    params = list(unet.parameters()) + list(text.parameters())
    optimizer = torch.optim.AdamW(params, lr=t.get("learning_rate", 2e-4), weight_decay=t.get("weight_decay", 0.01))
    shadow = [p.detach().clone() for p in params]
    alphas = scheduler.alphas_cumprod
    g = torch.Generator().manual_seed(1)

    def step(stages):
        def data():
            x0 = torch.randn(batch, channels, size, size, generator=g)
            noise = torch.randn(x0.shape, generator=g)
            steps_t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=g)
            ids = torch.randint(0, vocab - 2, (batch, TOKENS), generator=g)
            views = torch.rand(batch, VIEW, generator=g) * 2 - 1
            return scheduler.add_noise(x0, noise, steps_t), noise, steps_t, ids, views

        noisy, noise, steps_t, ids, views = stages("data", data)
        context = stages("text encoder forward", lambda: text(ids).last_hidden_state)
        prediction = stages("UNet forward", lambda: unet(noisy, steps_t, encoder_hidden_states=context, class_labels=views).sample)

        def loss_fn():
            per = ((prediction - noise) ** 2).mean(dim=(1, 2, 3))
            if gamma is not None:
                snr = alphas[steps_t] / (1 - alphas[steps_t])
                per = per * torch.clamp(snr, max=gamma) / snr
            return per.mean()

        loss = stages("loss", loss_fn)
        backward_and_update(stages, loss, optimizer, params, shadow, t)

    return measure(step, steps, batch, params)


def best_ms(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return min(times)


def conv_shapes(kiln, prior_config, threads, runs, batch):
    ours = json.loads(subprocess.run([kiln, "conv-shapes", "--prior-config", prior_config, "--batch", str(batch), "--threads", str(threads),
                                      "--runs", str(runs), "--json"], check=True, capture_output=True, text=True).stdout)
    print(f"Convolutions of the UNet in training, batch {batch}, float32, {threads} threads, best of {runs} runs")
    print("| in → out | kernel/stride | input | layers | Kiln fwd ms | PyTorch fwd ms | Kiln bwd ms | PyTorch bwd ms | bwd Kiln / PyTorch |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    totals = [0.0, 0.0, 0.0, 0.0]
    for r in ours["rows"]:
        conv = torch.nn.Conv2d(r["in"], r["out"], r["kernel"], stride=r["stride"], padding=r["kernel"] // 2)
        x = torch.rand(batch, r["in"], r["size"], r["size"]) * 2 - 1
        x.requires_grad_()
        y = conv(x)
        dy = torch.rand_like(y) * 2 - 1
        with torch.no_grad():
            forward = best_ms(lambda: conv(x), runs)

        def backward():
            conv.zero_grad(set_to_none=True)
            x.grad = None
            conv(x).backward(dy)

        backward_ms = best_ms(backward, runs) - forward  # the backward call reruns the forward
        row = [r["forward_ms"], forward, r["backward_ms"], backward_ms]
        totals = [t + r["layers"] * v for t, v in zip(totals, row)]
        print(f"| {r['in']} → {r['out']} | {r['kernel']}/{r['stride']} | {r['size']}² | {r['layers']} | {row[0]:.2f} | {row[1]:.2f} | {row[2]:.2f} | {row[3]:.2f} | {row[2] / max(row[3], 1e-6):.2f} |")
    print(f"| all, weighted by layers | | | | {totals[0]:.1f} | {totals[1]:.1f} | {totals[2]:.1f} | {totals[3]:.1f} | {totals[2] / max(totals[3], 1e-6):.2f} |")


def kiln_stages(stages):
    """Kiln's stages in PyTorch's grouping: one backward for every network."""
    out = {}
    for name, ms in stages.items():
        key = "backward" if "backward" in name else name
        out[key] = out.get(key, 0.0) + ms
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", help="path to a release kiln-bench binary")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--prior-config", default=str(ROOT / "assets/configs/prior-latent-128.json"))
    parser.add_argument("--vae-config", default=str(ROOT / "assets/configs/vae-128.json"))
    parser.add_argument("--conv-shapes", action="store_true", help="time each convolution shape of the prior's UNet instead")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    kiln = a.kiln
    if kiln is None:
        subprocess.run(["swift", "build", "-c", "release", "--product", "kiln-bench"], cwd=ROOT, check=True)
        kiln = str(ROOT / ".build" / "release" / "kiln-bench")
    if a.conv_shapes:
        conv_shapes(kiln, a.prior_config, a.threads, a.runs, a.batch)
        return 0
    prior_config = json.loads(pathlib.Path(a.prior_config).read_text())
    vae_config = json.loads(pathlib.Path(a.vae_config).read_text())
    ours = json.loads(subprocess.run([kiln, "train", "--prior-config", a.prior_config, "--vae-config", a.vae_config, "--threads", str(a.threads),
                                      "--steps", str(a.steps), "--json"], check=True, capture_output=True, text=True,
                                     env={**os.environ, "KILN_THREADS": str(a.threads)}).stdout)
    theirs = {"vae": bench_vae(vae_config, a.steps), "prior": bench_prior(prior_config, vae_config, a.steps)}
    print(f"Training steps, float32, {a.threads} threads, mean of {a.steps} steps after one warm-up; Kiln: {ours['blas']}")
    print(f"torch {torch.__version__}, diffusers {__import__('diffusers').__version__}")
    for name, label in [("vae", "kiln train-vae"), ("prior", "kiln train-prior")]:
        k, p = ours[name], theirs[name]
        print(f"\n{label}: {k['parameters']:,} parameters (PyTorch {p['parameters']:,}), {k['input']}, batch {k['batch']}")
        print("| | Kiln | PyTorch | Kiln speed / PyTorch's |")
        print("| --- | ---: | ---: | ---: |")
        print(f"| samples/s | {k['samples_per_second']:.1f} | {p['samples_per_second']:.1f} | {k['samples_per_second'] / p['samples_per_second']:.2f}× |")
        print(f"| ms per step | {k['step_ms']:.0f} | {p['step_ms']:.0f} | |")
        ks = kiln_stages(k["stages_ms"])
        for stage in sorted(set(ks) | set(p["stages_ms"]), key=lambda s: -ks.get(s, 0)):
            kv, pv = ks.get(stage), p["stages_ms"].get(stage)
            ratio = f"{pv / kv:.2f}×" if kv and pv else ""
            print(f"| {stage} ms | {kv:.1f} | {pv:.1f} | {ratio} |" if kv is not None and pv is not None else
                  f"| {stage} ms | {kv if kv is not None else '–'} | {pv if pv is not None else '–'} | |")


if __name__ == "__main__":
    sys.exit(main())
