"""Kiln next to diffusers on PyTorch-CPU at Stable Diffusion scale: time and peak memory.

Run from the repository root:

    python3 tools/bench_sd_torch.py [--kiln PATH_TO_kiln-bench] [--threads 2] [--runs 2]
    python3 tools/bench_sd_torch.py --layers [--kiln ...]    # the UNet's layers one by one

It writes (once) a Stable Diffusion 1.5-layout pipeline folder under .build/bench-sd/sd15 with SD
1.5's architecture (UNet 860 M, VAE 84 M, CLIP ViT-L text encoder 123 M parameters) and random
weights saved in float16, as the hub's fp16 folders are, plus the inputs of each measurement
(io.safetensors). Then, for each measurement, one fresh process per side, so that each peak RSS is
that measurement's own:

- unet: UNet forward at 64² latents, batch 2 (one classifier-free-guided denoising step);
- vae:  VAE encoder forward + backward to the image (∂latent/∂image) at 512²;
- sds:  one latent score-distillation step (image → VAE encode → noise → guided UNet → SDS
        gradient → backward through the encoder), with the VAE and UNet frozen as threestudio
        freezes them. Kiln's step also renders and back-propagates 20k splats at 512² (timed apart).

PyTorch loads the float16 files into float32 modules (CPU inference runs in float32), under
torch.no_grad where no gradient is needed; Kiln keeps the float16 weights in float16 and widens
them one layer at a time. Both report the best of --runs timings after a warm-up, with the same
thread count (torch.set_num_threads, KILN_THREADS). Kiln's outputs are checked against PyTorch's
(torch-MEASURE.safetensors) and the largest relative error printed. Prints one table and the
estimate of a 500-step `kiln generate --prior` run (one view per step) on this machine.
"""
import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDER = ROOT / ".build" / "bench-sd" / "sd15"
TOKENIZER = ROOT / "Tests" / "KilnPriorTests" / "Fixtures" / "tokenizer"
MEASURES = ("unet", "vae", "sds")

# Stable Diffusion 1.5's unet/config.json and vae/config.json (architecture keys).
SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32, act_fn="silu", flip_sin_to_cos=True, freq_shift=0,
)
SD15_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=512, layers_per_block=2, norm_num_groups=32,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), act_fn="silu", scaling_factor=0.18215,
)
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None, "clip_sample": False,
}
GUIDANCE = 7.5
TIMESTEP = 500


def build():
    """The pipeline folder and the inputs, written once (about 2.1 GB)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if (FOLDER / "io.safetensors").exists():
        return
    if FOLDER.exists():
        shutil.rmtree(FOLDER)
    torch.manual_seed(0)
    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER))
    text = CLIPTextModel(CLIPTextConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                        pad_token_id=tokenizer.pad_token_id, **SD15_TEXT)).eval()
    unet = UNet2DConditionModel(**SD15_UNET).eval()
    vae = AutoencoderKL(**SD15_VAE).eval()
    scheduler = PNDMScheduler.from_config({k: v for k, v in SD15_SCHEDULER.items() if not k.startswith("_")})
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.to(torch.float16)
    pipe.save_pretrained(str(FOLDER), safe_serialization=True)
    (FOLDER / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER, indent=2) + "\n")
    g = torch.Generator().manual_seed(1)
    save_file({
        "unet.sample": torch.randn(2, 4, 64, 64, generator=g),
        "unet.timestep": torch.full((2,), float(TIMESTEP)),
        "unet.encoder_hidden_states": torch.randn(2, 77, 768, generator=g),
        "vae.image": torch.rand(1, 3, 512, 512, generator=g) * 2 - 1,
        "vae.mean_gradient": torch.randn(1, 4, 64, 64, generator=g),
    }, str(FOLDER / "io.safetensors"))


def best_ms(runs, body):
    body()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def measure_torch(measure, runs):
    """One measurement in this process; prints its JSON line."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    io = load_file(str(FOLDER / "io.safetensors"))
    load_start = time.perf_counter()
    result = {"measure": measure}
    outputs = {}
    if measure == "unet":
        unet = UNet2DConditionModel.from_pretrained(str(FOLDER / "unet"), torch_dtype=torch.float32).eval().requires_grad_(False)
        result["load_s"] = time.perf_counter() - load_start
        args = dict(sample=io["unet.sample"], timestep=io["unet.timestep"], encoder_hidden_states=io["unet.encoder_hidden_states"])

        def step():
            with torch.no_grad():
                outputs["output"] = unet(**args).sample
        result["ms"] = best_ms(runs, step)
    elif measure == "vae":
        vae = AutoencoderKL.from_pretrained(str(FOLDER / "vae"), torch_dtype=torch.float32).eval().requires_grad_(False)
        result["load_s"] = time.perf_counter() - load_start

        def step():
            image = io["vae.image"].clone().requires_grad_(True)
            mean = vae.encode(image).latent_dist.mean
            (mean * io["vae.mean_gradient"]).sum().backward()
            outputs["mean"], outputs["image_gradient"] = mean.detach(), image.grad
        result["ms"] = best_ms(runs, step)
    elif measure == "sds":
        vae = AutoencoderKL.from_pretrained(str(FOLDER / "vae"), torch_dtype=torch.float32).eval().requires_grad_(False)
        unet = UNet2DConditionModel.from_pretrained(str(FOLDER / "unet"), torch_dtype=torch.float32).eval().requires_grad_(False)
        tokenizer = CLIPTokenizer.from_pretrained(str(FOLDER / "tokenizer"))
        text = CLIPTextModel.from_pretrained(str(FOLDER / "text_encoder"), torch_dtype=torch.float32).eval()
        with torch.no_grad():
            ids = tokenizer(["", "a red snowman"], padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
            context = text(input_ids=ids).last_hidden_state
        from diffusers import DDPMScheduler
        schedule = DDPMScheduler.from_config({k: v for k, v in SD15_SCHEDULER.items() if not k.startswith("_")})
        alphas = schedule.alphas_cumprod
        result["load_s"] = time.perf_counter() - load_start
        image = io["vae.image"].clone().requires_grad_(True)  # stands in for the render
        g = torch.Generator().manual_seed(3)

        def step():
            image.grad = None
            latents = vae.encode(image).latent_dist.mean * vae.config.scaling_factor
            t = torch.tensor([TIMESTEP])
            noise = torch.randn(latents.shape, generator=g)
            with torch.no_grad():
                noisy = schedule.add_noise(latents, noise, t)
                eps = unet(torch.cat([noisy] * 2), torch.cat([t] * 2), encoder_hidden_states=context).sample
                uncond, cond = eps.chunk(2)
                grad = (1 - alphas[TIMESTEP]) * (uncond + GUIDANCE * (cond - uncond) - noise)
            target = (latents - grad).detach()
            (0.5 * torch.nn.functional.mse_loss(latents, target, reduction="sum")).backward()
        result["ms"] = best_ms(runs, step)
    else:
        raise SystemExit(f"unknown measurement {measure}")
    if outputs:
        save_file({k: v.float().contiguous() for k, v in outputs.items()}, str(FOLDER / f"torch-{measure}.safetensors"))
    elif not (FOLDER / f"torch-{measure}.safetensors").exists():
        save_file({"none": torch.zeros(1)}, str(FOLDER / f"torch-{measure}.safetensors"))
    result["rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024)
    print(json.dumps(result))


def torch_layers(runs):
    """The layers `kiln-bench sd-layers` times, as diffusers builds them (random weights)."""
    from diffusers.models.attention import FeedForward
    from diffusers.models.attention_processor import Attention
    torch.manual_seed(1)
    results = {}
    with torch.no_grad():
        for c, o, size in ((960, 320, 64), (640, 640, 64), (1920, 640, 32), (1280, 1280, 32), (2560, 1280, 16)):
            x = torch.rand(2, c, size, size) * 2 - 1
            conv = torch.nn.Conv2d(c, o, 3, padding=1)
            results[f"conv3x3 {c}→{o} at {size}²"] = best_ms(runs, lambda: conv(x))
        for c, size in ((320, 64), (640, 32), (1280, 16)):
            x = torch.rand(2, c, size, size) * 2 - 1
            conv = torch.nn.Conv2d(c, c, 3, padding=1)
            results[f"conv3x3 {c} at {size}²"] = best_ms(runs, lambda: conv(x))
            tokens = torch.rand(2, size * size, c) * 2 - 1
            context = torch.rand(2, 77, 768) * 2 - 1
            self_attention = Attention(c, heads=8, dim_head=c // 8)
            cross_attention = Attention(c, cross_attention_dim=768, heads=8, dim_head=c // 8)
            results[f"self-attention {c} at {size}²"] = best_ms(runs, lambda: self_attention(tokens))
            results[f"cross-attention {c} at {size}²"] = best_ms(runs, lambda: cross_attention(tokens, encoder_hidden_states=context))
            feed_forward = FeedForward(c, activation_fn="geglu")
            results[f"feed-forward {c} at {size}²"] = best_ms(runs, lambda: feed_forward(tokens))
            norm = torch.nn.GroupNorm(32, c, eps=1e-5)
            results[f"group norm {c} at {size}²"] = best_ms(runs, lambda: norm(x))
    return results


def layers(kiln, threads, runs):
    env = {**os.environ, "KILN_THREADS": str(threads)}
    k = subprocess.run([kiln, "sd-layers", "--threads", str(threads), "--runs", str(runs)], check=True, capture_output=True, text=True, env=env)
    ours = {j["layer"]: j["ms"] for j in (json.loads(line) for line in k.stdout.splitlines() if line.startswith("{"))}
    theirs = torch_layers(runs)
    print(f"Stable Diffusion 1.5 UNet layers, batch 2, {threads} threads, best of {runs} runs, ms")
    print("| layer | Kiln | PyTorch | Kiln / PyTorch |")
    print("| --- | ---: | ---: | ---: |")
    for name, ms in ours.items():
        print(f"| {name} | {ms:.1f} | {theirs[name]:.1f} | {ms / theirs[name]:.2f} |")


def last_json(text):
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", help="path to a release kiln-bench binary")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--measure", choices=MEASURES, help="run one PyTorch measurement in this process (used by the driver)")
    parser.add_argument("--only", help="comma-separated measurements to run (default: all)")
    parser.add_argument("--layers", action="store_true", help="time the UNet's layers one by one instead (kiln-bench sd-layers)")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    if a.measure:
        measure_torch(a.measure, a.runs)
        return
    kiln = a.kiln
    if kiln is None:
        subprocess.run(["swift", "build", "-c", "release", "--product", "kiln-bench"], cwd=ROOT, check=True)
        kiln = str(ROOT / ".build" / "release" / "kiln-bench")
    if a.layers:
        layers(kiln, a.threads, a.runs)
        return
    build()
    env = {**os.environ, "KILN_THREADS": str(a.threads), "OMP_NUM_THREADS": str(a.threads)}
    rows = {}
    for measure in (a.only.split(",") if a.only else MEASURES):
        t = subprocess.run([sys.executable, __file__, "--measure", measure, "--threads", str(a.threads), "--runs", str(a.runs)],
                           check=True, capture_output=True, text=True, env=env)
        k = subprocess.run([kiln, "sd", "--folder", str(FOLDER), "--measure", measure, "--threads", str(a.threads), "--runs", str(a.runs)],
                           check=True, capture_output=True, text=True, env=env)
        rows[measure] = (last_json(k.stdout), last_json(t.stdout))
        print(f"{measure}: Kiln {rows[measure][0]}, PyTorch {rows[measure][1]}", file=sys.stderr)
    names = {"unet": "UNet forward, 64² latents, batch 2", "vae": "VAE encoder forward + backward, 512²",
             "sds": "latent SDS step, 1 view (Kiln: + splat render fwd+bwd)"}
    print(f"Stable Diffusion 1.5 scale, float16 weights, {a.threads} threads, best of {a.runs} runs after a warm-up")
    print("| measurement | Kiln s | PyTorch s | Kiln / PyTorch | Kiln peak RSS GiB | PyTorch peak RSS GiB | max rel. error |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for measure, (k, t) in rows.items():
        error = "—" if k.get("error") is None else f"{k['error']:.1e}"
        print(f"| {names[measure]} | {k['ms'] / 1000:.2f} | {t['ms'] / 1000:.2f} | {k['ms'] / t['ms']:.2f} | "
              f"{k['rss_gib']:.2f} | {t['rss_gib']:.2f} | {error} |")
    if "sds" in rows:
        k, t = rows["sds"]
        minutes = (500 * k["ms"] / 1000 + k["load_s"]) / 60
        print(f"Kiln's SDS step includes {k['render_ms'] / 1000:.2f} s of splat rendering; loading the pipeline took "
              f"{k['load_s']:.1f} s (PyTorch {t['load_s']:.1f} s).")
        print(f"Estimated 500-step `kiln generate --prior` at one view per step on this machine: {minutes:.0f} min "
              f"(views per step multiply the VAE and UNet work).")
    print(f"torch {torch.__version__}, diffusers {__import__('diffusers').__version__}; Kiln: {rows[next(iter(rows))][0].get('blas')}")


if __name__ == "__main__":
    sys.exit(main())
