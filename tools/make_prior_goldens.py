"""Random-weight diffusers pipelines and their outputs, for Kiln's prior parity tests.

Run from the repository root (needs torch, diffusers, transformers, safetensors; see
tools/requirements.txt):

    python3 tools/make_prior_goldens.py

Writes Tests/KilnPriorTests/Fixtures/pipelines/<name>/ in the diffusers pipeline layout:

    model_index.json
    unet/config.json, unet/diffusion_pytorch_model.safetensors
    text_encoder/config.json, text_encoder/model.safetensors
    tokenizer/ (copied from Tests/KilnPriorTests/Fixtures/tokenizer)
    scheduler/scheduler_config.json
    goldens.safetensors   inputs and outputs, float32:
        unet.sample [B, C, H, W], unet.timestep [B], unet.encoder_hidden_states [B, T, D],
        unet.class_labels [B, P] (camera conditioning, when the UNet has a projection class
        embedding), unet.output [B, C, H, W];
        grad.output_weights [B, C, H, W] (w), and the gradients of L = Σ w ⊙ unet.output:
        grad.sample, grad.encoder_hidden_states, grad.class_labels, grad.<parameter name> for
        the parameters in GRADIENT_PARAMETERS that the UNet has;
        sample.initial_noise, sample.output: the DDIM + classifier-free guidance loop of SAMPLE
        (pipelines with a camera projection), from that noise to the final x₀ in [−1, 1];
        text.input_ids [B, 77] (stored as float32 integers), text.last_hidden_state [B, 77, D],
        text.pooled [B, D]
    goldens.json          the prompts and the settings used

Pipelines:
    tiny      pixel-space, 2 resolution levels, one cross-attention level, camera projection
    sd15like  Stable Diffusion 1.5's block structure (3 cross-attention down blocks + DownBlock2D,
              UpBlock2D + 3 cross-attention up blocks, 2 layers a block, mid block with cross
              attention) at reduced width

Weights are drawn at random (fixed seeds) with a spread that keeps activations O(1), rounded to
float16 and stored as F16, so the fixtures stay small; the goldens are computed with exactly those
rounded weights in float32.
"""
import json
import pathlib
import shutil

import torch
from diffusers import DDIMScheduler, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "KilnPriorTests" / "Fixtures"
TOKENIZER = FIXTURES / "tokenizer"

PROMPTS = ["a red snowman", "a wooden crate, 3.5 metres tall!", ""]

PIPELINES = {
    "tiny": dict(
        sample_size=16, in_channels=3, out_channels=3,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(16, 32), layers_per_block=1, cross_attention_dim=32,
        attention_head_dim=4, norm_num_groups=4,
        class_embed_type="projection", projection_class_embeddings_input_dim=8,
    ),
    "sd15like": dict(
        sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(16, 32, 32, 32), layers_per_block=2, cross_attention_dim=32,
        attention_head_dim=4, norm_num_groups=4,
    ),
}

# One parameter of each kind of layer, for the backward-pass goldens.
GRADIENT_PARAMETERS = [
    "time_embedding.linear_1.weight", "class_embedding.linear_1.weight", "class_embedding.linear_2.bias",
    "conv_in.weight", "down_blocks.0.resnets.0.norm1.weight", "down_blocks.0.resnets.0.conv1.weight",
    "down_blocks.0.resnets.0.time_emb_proj.weight", "down_blocks.0.attentions.0.norm.bias",
    "down_blocks.0.attentions.0.proj_in.weight", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
    "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight",
    "down_blocks.0.attentions.0.transformer_blocks.0.norm3.weight", "down_blocks.0.downsamplers.0.conv.weight",
    "down_blocks.1.resnets.0.conv_shortcut.weight", "mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight",
    "mid_block.resnets.1.conv2.weight", "up_blocks.0.resnets.1.conv_shortcut.weight", "up_blocks.0.upsamplers.0.conv.bias",
    "up_blocks.1.attentions.0.proj_out.weight", "up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2.weight",
    "conv_norm_out.weight", "conv_out.weight",
]

TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5)


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


def save_half(module, path):
    save_file({k: v.detach().half().contiguous() for k, v in module.state_dict().items()}, str(path))


def view_vector(azimuth_degrees, elevation_degrees):
    """Kiln's view conditioning (KilnPrior's ViewConditioning, no time): sin/cos of azimuth and
    elevation, then zeros for the time features."""
    az, el = torch.deg2rad(torch.tensor(azimuth_degrees)), torch.deg2rad(torch.tensor(elevation_degrees))
    return torch.stack([az.sin(), az.cos(), el.sin(), el.cos(), *([torch.tensor(0.0)] * 4)]).float()


SAMPLE = dict(prompt="a red snowman", count=2, steps=4, guidance_scale=5.0, azimuth=30.0, elevation=15.0)


def sample_loop(unet, text, tokenizer, scheduler, unet_config, g):
    """diffusers' text-to-image loop (StableDiffusionPipeline.__call__ without the VAE): DDIM,
    classifier-free guidance with the empty prompt, the view vector as class labels."""
    n, size = SAMPLE["count"], unet_config["sample_size"]
    noise = torch.randn(n, unet_config["in_channels"], size, size, generator=g)
    ids = tokenizer([""] * n + [SAMPLE["prompt"]] * n, padding="max_length", max_length=77, truncation=True,
                    return_tensors="pt").input_ids
    labels = view_vector(SAMPLE["azimuth"], SAMPLE["elevation"]).expand(2 * n, -1)
    scheduler = DDIMScheduler.from_config(scheduler.config)
    scheduler.set_timesteps(SAMPLE["steps"])
    x = noise * scheduler.init_noise_sigma
    with torch.no_grad():
        context = text(input_ids=ids).last_hidden_state
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(torch.cat([x, x]), t)
            eps = unet(model_input, t, encoder_hidden_states=context, class_labels=labels).sample
            uncond, cond = eps.chunk(2)
            eps = uncond + SAMPLE["guidance_scale"] * (cond - uncond)
            x = scheduler.step(eps, t, x).prev_sample
    return {"sample.initial_noise": noise, "sample.output": x.contiguous()}


def main():
    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER))
    for index, (name, unet_config) in enumerate(PIPELINES.items()):
        out = FIXTURES / "pipelines" / name
        if out.exists():
            shutil.rmtree(out)
        (out / "unet").mkdir(parents=True)
        (out / "text_encoder").mkdir()
        (out / "scheduler").mkdir()
        shutil.copytree(TOKENIZER, out / "tokenizer", ignore=shutil.ignore_patterns("goldens.json"))

        unet = UNet2DConditionModel(**unet_config).eval()
        randomize(unet, 100 + index)
        unet.save_config(out / "unet")
        save_half(unet, out / "unet" / "diffusion_pytorch_model.safetensors")

        text_config = CLIPTextConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **TEXT)
        text = CLIPTextModel(text_config).eval()
        randomize(text, 200 + index)
        text.config.save_pretrained(out / "text_encoder")
        save_half(text, out / "text_encoder" / "model.safetensors")

        scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                  clip_sample=False, set_alpha_to_one=False, steps_offset=1)
        scheduler.save_config(out / "scheduler")
        (out / "model_index.json").write_text(json.dumps({
            "_class_name": "StableDiffusionPipeline", "_diffusers_version": __import__("diffusers").__version__,
            "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        }, indent=2) + "\n")

        g = torch.Generator().manual_seed(300 + index)
        ids = tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            encoded = text(input_ids=ids)
        batch = len(PROMPTS)
        size = unet_config["sample_size"]
        sample = torch.randn(batch, unet_config["in_channels"], size, size, generator=g)
        timestep = torch.tensor([999.0, 500.0, 3.0])
        context = encoded.last_hidden_state
        tensors = {
            "text.input_ids": ids.float(), "text.last_hidden_state": context.contiguous(),
            "text.pooled": encoded.pooler_output.contiguous(),
            "unet.sample": sample, "unet.timestep": timestep, "unet.encoder_hidden_states": context.clone(),
        }
        kwargs = {}
        if unet_config.get("class_embed_type") == "projection":
            labels = torch.randn(batch, unet_config["projection_class_embeddings_input_dim"], generator=g)
            tensors["unet.class_labels"] = labels
            kwargs["class_labels"] = labels
        with torch.no_grad():
            tensors["unet.output"] = unet(sample, timestep, encoder_hidden_states=context, **kwargs).sample.contiguous()
        # Gradients of L = Σ weights ⊙ output with respect to the inputs and to one parameter of
        # each kind of layer (autograd, float32).
        weights = torch.randn(tensors["unet.output"].shape, generator=g)
        inputs = {"sample": sample.clone().requires_grad_(), "encoder_hidden_states": context.clone().requires_grad_()}
        if "class_labels" in kwargs:
            inputs["class_labels"] = kwargs["class_labels"].clone().requires_grad_()
        unet.zero_grad()
        prediction = unet(inputs["sample"], timestep, encoder_hidden_states=inputs["encoder_hidden_states"],
                   class_labels=inputs.get("class_labels")).sample
        (prediction * weights).sum().backward()
        tensors["grad.output_weights"] = weights
        for key, value in inputs.items():
            tensors[f"grad.{key}"] = value.grad.contiguous()
        parameters = dict(unet.named_parameters())
        for name in GRADIENT_PARAMETERS:
            if name in parameters:
                tensors[f"grad.{name}"] = parameters[name].grad.contiguous()
        if "class_labels" in kwargs:
            tensors.update(sample_loop(unet, text, tokenizer, scheduler, unet_config, g))
        save_file(tensors, str(out / "goldens.safetensors"))
        (out / "goldens.json").write_text(json.dumps({
            "prompts": PROMPTS, "unet_parameters": sum(p.numel() for p in unet.parameters()),
            "text_parameters": sum(p.numel() for p in text.parameters()),
            "torch": torch.__version__, "diffusers": __import__("diffusers").__version__,
            "transformers": __import__("transformers").__version__, "sample": SAMPLE,
        }, indent=2) + "\n")
        total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        print(f"wrote {out.relative_to(ROOT)}: {total / 1024:.0f} KB")


if __name__ == "__main__":
    main()
