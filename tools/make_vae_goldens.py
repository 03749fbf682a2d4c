"""A random-weight diffusers AutoencoderKL and its outputs, for Kiln's VAE parity tests.

Run from the repository root (needs torch, diffusers, safetensors; see tools/requirements.txt):

    python3 tools/make_vae_goldens.py

Writes Tests/KilnPriorTests/Fixtures/vae/<name>/:

    vae/config.json, vae/diffusion_pytorch_model.safetensors   (weights stored as F16)
    goldens.safetensors   float32:
        image [B, 3, H, W] in [−1, 1];
        posterior.mean, posterior.logvar [B, latent, H/f, W/f]: the diagonal Gaussian of
        vae.encode(image) (logvar clamped to [−30, 20] by diffusers);
        latents: (mean − shift_factor) · scaling_factor, the posterior's mode as a pipeline scales it;
        decoded [B, 3, H, W]: vae.decode(latents / scaling_factor + shift_factor);
        grad.mean_weights (w) and grad.image: ∂(Σ w ⊙ posterior.mean)/∂image by autograd;
        grad.decoded_weights (v) and grad.latents: ∂(Σ v ⊙ decoded)/∂latents by autograd;
        sample.noise and sample.output: the posterior's sample() from that noise, mean + σ ⊙ noise

Weights are drawn at random (fixed seed) with a spread that keeps activations O(1), rounded to
float16, and the goldens are computed with exactly those rounded weights in float32.
"""
import json
import pathlib

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "KilnPriorTests" / "Fixtures" / "vae"

MODELS = {
    # Stable Diffusion's VAE structure at reduced width, with a shift factor so the shift path is
    # exercised; a non-square batch of two.
    "tiny": dict(
        config=dict(
            in_channels=3, out_channels=3, latent_channels=4,
            down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
            up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
            block_out_channels=[16, 32], layers_per_block=1, norm_num_groups=8,
            sample_size=32, scaling_factor=0.18215, shift_factor=0.1159,
        ),
        image_shape=(2, 3, 24, 32),
        seed=23,
    ),
}


def randomize(module, seed):
    """Fills every parameter with N(0, σ) scaled by fan-in, rounded to float16 precision."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif name.endswith("weight"):  # norm scales
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            p.copy_(p.half().float())


def make(name, spec):
    out = FIXTURES / name
    (out / "vae").mkdir(parents=True, exist_ok=True)
    vae = AutoencoderKL(**spec["config"]).eval()
    randomize(vae, spec["seed"])
    vae.save_config(out / "vae")
    save_file({k: v.detach().half().contiguous() for k, v in vae.state_dict().items()},
              str(out / "vae" / "diffusion_pytorch_model.safetensors"))

    g = torch.Generator().manual_seed(spec["seed"] + 1)
    image = (torch.rand(spec["image_shape"], generator=g) * 2 - 1).requires_grad_(True)
    posterior = vae.encode(image).latent_dist
    scaling, shift = vae.config.scaling_factor, vae.config.shift_factor or 0.0
    weights = torch.randn(posterior.mean.shape, generator=g)
    (weights * posterior.mean).sum().backward()
    with torch.no_grad():
        latents = (posterior.mean - shift) * scaling
    # The posterior's sample() with the noise it draws from a seeded generator, drawn again to store it.
    noise = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(spec["seed"] + 2))
    sample = posterior.sample(generator=torch.Generator().manual_seed(spec["seed"] + 2)).detach()
    latents.requires_grad_(True)
    decoded = vae.decode(latents / scaling + shift).sample
    decoded_weights = torch.randn(decoded.shape, generator=g)
    (decoded_weights * decoded).sum().backward()
    tensors = {
        "image": image.detach(),
        "posterior.mean": posterior.mean.detach(),
        "posterior.logvar": posterior.logvar.detach(),
        "latents": latents.detach(),
        "decoded": decoded.detach(),
        "grad.mean_weights": weights,
        "grad.image": image.grad,
        "grad.decoded_weights": decoded_weights,
        "grad.latents": latents.grad,
        "sample.noise": noise,
        "sample.output": sample,
    }
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(out / "goldens.safetensors"))
    print(name, {k: tuple(v.shape) for k, v in tensors.items()})


if __name__ == "__main__":
    torch.manual_seed(0)
    for name, spec in MODELS.items():
        make(name, spec)
    print(json.dumps({name: spec["config"] for name, spec in MODELS.items()}, indent=1))
