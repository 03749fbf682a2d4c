"""Random-weight Stable Diffusion pipeline folders (VAE included) and diffusers' images from them,
for Kiln's latent-pipeline parity tests.

Run from the repository root (needs torch, diffusers, transformers, safetensors; see
tools/requirements.txt):

    python3 tools/make_sd_pipeline_goldens.py

Writes Tests/KilnPriorTests/Fixtures/sd/<name>/, each a folder exactly as diffusers'
`StableDiffusionPipeline.save_pretrained` writes it (model_index.json with the VAE and a null
safety checker, unet/, vae/, text_encoder/, tokenizer/, scheduler/), plus:

    latents.safetensors   one tensor `latents` [count, 4, h, w]: the initial noise, as
                          `kiln sample --latents` and diffusers' `latents=` take it
    goldens.safetensors   float32: `images` [count, H, W, 3] in [0, 1], diffusers' output
                          (output_type="np") for the prompt below with DDIM η = 0 from those
                          latents; `final_latents` [count, 4, h, w], the denoised latents before
                          the VAE; `text.conditional` / `text.unconditional` [1, 77, D], the
                          prompt's and the negative prompt's text states
    goldens.json          the prompt and every sampling setting

Folders (Stable Diffusion's block structure at reduced widths; 64² images from 8² latents):
    sd15-tiny   SD 1.5-like: epsilon prediction, the PNDMScheduler config SD 1.5 ships (sampled as
                DDIM, as `DDIMScheduler.from_config` converts it), a quick-GELU CLIP text encoder,
                convolution projections in the transformers, the tokenizer folder in SD 1.5's
                layout (vocab.json, merges.txt), weights stored as F16 in the plain file names
    sd21-tiny   SD 2.1-like (768-v): v-prediction with SD 2.1's DDIMScheduler config (including
                its stray `skip_prk_steps` key), a GELU text encoder, linear projections and
                per-level head counts in the UNet, upcast attention, pad token "!", the tokenizer
                as transformers 5 saves it (tokenizer.json), weights as the `fp16` variant
                (`diffusion_pytorch_model.fp16.safetensors`, `model.fp16.safetensors`)

Weights are drawn at random (fixed seeds) with a spread that keeps activations O(1), rounded to
float16 (so the F16 files hold them exactly), and the goldens are computed in float32 with those
rounded weights.
"""
import json
import pathlib
import shutil

import diffusers
import torch
import transformers
from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "KilnPriorTests" / "Fixtures"
TOKENIZER = FIXTURES / "tokenizer"

SAMPLE = dict(prompt="a red snowman", negative_prompt="", count=2, steps=10, guidance_scale=7.5, eta=0.0,
              height=64, width=64)

UNET_COMMON = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, norm_num_groups=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(16, 32, 32, 32),
)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=64, layers_per_block=2, norm_num_groups=4,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(8, 16, 16, 16),
)
TEXT = dict(intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77, layer_norm_eps=1e-5)

# Stable Diffusion 1.5's scheduler/scheduler_config.json, as the hub folder has it.
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None, "clip_sample": False,
}
# Stable Diffusion 2.1's (768-v), with the PNDM key it carries.
SD21_SCHEDULER = {
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}

PIPELINES = {
    "sd15-tiny": dict(
        unet=dict(cross_attention_dim=32, attention_head_dim=4),
        text=dict(hidden_size=32, hidden_act="quick_gelu"), scheduler=SD15_SCHEDULER, pad_token=None,
        variant=None, sd15_tokenizer_layout=True,
    ),
    "sd21-tiny": dict(
        unet=dict(cross_attention_dim=48, attention_head_dim=(2, 4, 4, 4), use_linear_projection=True, upcast_attention=True),
        text=dict(hidden_size=48, hidden_act="gelu"), scheduler=SD21_SCHEDULER, pad_token="!",
        variant="fp16", sd15_tokenizer_layout=False,
    ),
}


def randomize(module, seed):
    """Fills every parameter with N(0, σ) scaled by fan-in, rounded to float16 precision."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            elif name.endswith("weight"):  # norm scales
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            p.copy_(p.half().float())


def scheduler_from(config):
    classes = {"PNDMScheduler": PNDMScheduler, "DDIMScheduler": DDIMScheduler}
    settings = {k: v for k, v in config.items() if not k.startswith("_")}
    return classes[config["_class_name"]].from_config(settings)


def main():
    for index, (name, spec) in enumerate(PIPELINES.items()):
        out = FIXTURES / "sd" / name
        if out.exists():
            shutil.rmtree(out)
        tokenizer_kwargs = {"pad_token": spec["pad_token"]} if spec["pad_token"] else {}
        tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER), **tokenizer_kwargs)
        unet = UNet2DConditionModel(**UNET_COMMON, **spec["unet"]).eval()
        randomize(unet, 500 + index)
        vae = AutoencoderKL(**VAE).eval()
        randomize(vae, 600 + index)
        text_config = CLIPTextConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                     **TEXT, **spec["text"])
        text = CLIPTextModel(text_config).eval()
        randomize(text, 700 + index)
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler_from(spec["scheduler"]), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
        pipe.to(torch.float16)
        pipe.save_pretrained(str(out), safe_serialization=True, variant=spec["variant"])
        pipe.to(torch.float32)
        # The scheduler config exactly as the hub folder has it (save_config would normalise it).
        (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(spec["scheduler"], indent=2) + "\n")
        if spec["sd15_tokenizer_layout"]:
            shutil.rmtree(out / "tokenizer")
            shutil.copytree(TOKENIZER, out / "tokenizer", ignore=shutil.ignore_patterns("goldens.json"))

        g = torch.Generator().manual_seed(800 + index)
        n = SAMPLE["count"]
        latents = torch.randn(n, 4, SAMPLE["height"] // 8, SAMPLE["width"] // 8, generator=g)
        save_file({"latents": latents.contiguous()}, str(out / "latents.safetensors"))
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        common = dict(prompt=SAMPLE["prompt"], negative_prompt=SAMPLE["negative_prompt"],
                      num_inference_steps=SAMPLE["steps"], guidance_scale=SAMPLE["guidance_scale"], eta=SAMPLE["eta"],
                      height=SAMPLE["height"], width=SAMPLE["width"], num_images_per_prompt=n)
        with torch.no_grad():
            images = pipe(**common, latents=latents.clone(), output_type="np").images
            final = pipe(**common, latents=latents.clone(), output_type="latent").images
            ids = tokenizer([SAMPLE["prompt"], SAMPLE["negative_prompt"]], padding="max_length", max_length=77,
                            truncation=True, return_tensors="pt").input_ids
            states = text(input_ids=ids).last_hidden_state
        save_file({
            "images": torch.from_numpy(images).float().contiguous(), "final_latents": final.float().contiguous(),
            "text.conditional": states[:1].contiguous(), "text.unconditional": states[1:].contiguous(),
            "text.input_ids": ids.float(),
        }, str(out / "goldens.safetensors"))
        (out / "goldens.json").write_text(json.dumps({
            "sample": SAMPLE, "variant": spec["variant"], "prediction_type": pipe.scheduler.config.prediction_type,
            "unet_parameters": sum(p.numel() for p in unet.parameters()),
            "vae_parameters": sum(p.numel() for p in vae.parameters()),
            "text_parameters": sum(p.numel() for p in text.parameters()),
            "torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
        }, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}: images {tuple(images.shape)}, range {images.min():.3f}…{images.max():.3f}, "
              f"std {images.std():.3f}")


if __name__ == "__main__":
    main()
