"""Samples a Kiln prior folder with diffusers and with `kiln sample` from the same noise, and compares.

Run from the repository root (needs torch, diffusers, transformers, safetensors; see
tools/requirements.txt):

    python3 tools/check_prior_diffusers.py PRIOR [--kiln PATH] [--prompt "a red duck"]
        [--azimuth 30] [--elevation 15] [--time T] [--steps 30] [--guidance G] [--count 2] [--seed 0]

PRIOR is any prior folder Kiln writes (`kiln train-prior`, with or without a VAE; `kiln
tune-prior`): a diffusers layout with model_index.json, unet/, text_encoder/, tokenizer/,
scheduler/ and, for a latent prior, vae/. Here diffusers and transformers load each component
from it (UNet2DConditionModel, CLIPTextModel, CLIPTokenizer, AutoencoderKL; the DDPM training
schedule as DDIMScheduler.from_config) and run StableDiffusionPipeline's loop: DDIM with η = 0,
classifier-free guidance against the empty prompt, Kiln's view vector (azimuth, elevation and
time features) as the UNet's class labels, then the VAE's decoder on latents / scaling_factor.
The same initial noise goes to `kiln sample --latents`; the script prints each image's PSNR
between the two and the largest pixel difference, and exits 1 when a PSNR is below 40 dB.
"""
import argparse
import json
import math
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from safetensors.numpy import save_file
from transformers import CLIPTextModel, CLIPTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent


def view_vector(azimuth, elevation, time):
    """KilnPrior's ViewConditioning.vector."""
    a, e = math.radians(azimuth), math.radians(elevation)
    v = [math.sin(a), math.cos(a), math.sin(e), math.cos(e)]
    v += [time, math.sin(2 * math.pi * time), math.cos(2 * math.pi * time), 1.0] if time is not None else [0.0] * 4
    return torch.tensor(v, dtype=torch.float32)


def read_png(path):
    """8-bit RGB of a PNG, with Pillow."""
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("prior")
    parser.add_argument("--kiln", help="path to the kiln binary (default: swift run -c release kiln)")
    parser.add_argument("--prompt", default="a red duck")
    parser.add_argument("--azimuth", type=float, default=30)
    parser.add_argument("--elevation", type=float, default=15)
    parser.add_argument("--time", type=float)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    torch.set_num_threads(2)
    folder = pathlib.Path(a.prior)
    settings = json.loads((folder / "kiln_prior.json").read_text()) if (folder / "kiln_prior.json").exists() else {}
    guidance = a.guidance if a.guidance is not None else settings.get("guidance_scale", 7.5)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet").float().eval()
    text = CLIPTextModel.from_pretrained(folder / "text_encoder").float().eval()
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    scheduler = DDIMScheduler.from_pretrained(folder / "scheduler")
    vae = AutoencoderKL.from_pretrained(folder / "vae").float().eval() if (folder / "vae").exists() else None

    n, size, channels = a.count, unet.config.sample_size, unet.config.in_channels
    noise = torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(a.seed))
    # A prior trained with view prompts hears its view's side in the prompt (threestudio's thresholds).
    prompt = a.prompt
    if settings.get("view_prompts") and a.prompt:
        azimuth = (a.azimuth + 180) % 360 - 180
        side = "overhead" if a.elevation > 60 else "front" if abs(azimuth) <= 45 else "back" if abs(azimuth) >= 135 else "side"
        prompt = f"{a.prompt}, {side} view"
    ids = tokenizer([""] * n + [prompt] * n, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    labels = view_vector(a.azimuth, a.elevation, a.time).expand(2 * n, -1) if unet.config.class_embed_type == "projection" else None
    scheduler.set_timesteps(a.steps)
    x = noise * scheduler.init_noise_sigma
    with torch.no_grad():
        context = text(input_ids=ids).last_hidden_state
        for t in scheduler.timesteps:
            eps = unet(scheduler.scale_model_input(torch.cat([x, x]), t), t, encoder_hidden_states=context, class_labels=labels).sample
            uncond, cond = eps.chunk(2)
            x = scheduler.step(uncond + guidance * (cond - uncond), t, x).prev_sample
        images = vae.decode(x / vae.config.scaling_factor).sample if vae is not None else x
    ours = ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy().astype(np.float64)

    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        kiln = [a.kiln] if a.kiln else ["swift", "run", "-c", "release", "kiln"]
        for i in range(n):
            one = pathlib.Path(scratch) / f"one{i}.safetensors"
            save_file({"latents": noise[i:i + 1].numpy()}, str(one))
            png = pathlib.Path(scratch) / f"kiln{i}.png"
            command = kiln + ["sample", a.prompt, "--prior", str(folder), "--count", "1", "--steps", str(a.steps), "--guidance-scale", str(guidance),
                              "--azimuth", str(a.azimuth), "--elevation", str(a.elevation), "--latents", str(one), "--out", str(png)]
            if a.time is not None:
                command += ["--time", str(a.time)]
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            if result.returncode != 0:
                print(f"kiln sample failed ({result.returncode}):\n{result.stderr}", file=sys.stderr)
                return 1
            theirs = read_png(png)
            reference = np.round(ours[i] * 255) / 255  # both as 8-bit pictures
            mse = float(np.mean((theirs - reference) ** 2))
            psnr = 99.0 if mse == 0 else -10 * math.log10(mse)
            print(f"sample {i}: PSNR {psnr:.1f} dB between kiln sample and diffusers, largest difference {np.abs(theirs - reference).max() * 255:.0f}/255")
            failed |= psnr < 40
    print(f"{folder}: {'differs from' if failed else 'matches'} diffusers ({a.steps} DDIM steps, guidance {guidance}, "
          f"azimuth {a.azimuth}, elevation {a.elevation}{'' if a.time is None else f', time {a.time}'}, {'latent' if vae else 'pixel'} prior)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
