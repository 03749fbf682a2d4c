"""Trains Kiln's built-in prior on a GPU: the PyTorch/diffusers mirror of `kiln train-prior`.

Same data (a `kiln dataset` folder), same configuration file (assets/prior/train_config.json:
"unet", "text_encoder", "scheduler", "tokenizer", "training"), same objective (DDPM ε loss,
caption dropout, the view vector through the projection class embedding, AdamW with linear
warm-up, gradient clipping, EMA), same output layout (a diffusers-format pipeline folder with
kiln_prior.json, loss.csv and the EMA weights as F16 safetensors), so `kiln sample` and every
later Kiln command load the result. The models are diffusers' UNet2DConditionModel and
transformers' CLIPTextModel, whose parameter names Kiln's loaders read.

    python3 tools/train_prior.py --data DATA --config assets/prior/train_config.json --out OUT
        [--max-minutes M] [--resume] [--device cuda]

--max-minutes stops early (and saves) when the time is up; --resume continues from
OUT/checkpoint.pt. Needs torch, diffusers, transformers, safetensors (tools/requirements.txt).
"""
import argparse
import copy
import json
import math
import pathlib
import shutil
import time

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from safetensors.numpy import load_file
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

VIEW = 8  # ViewConditioning.length


def load_dataset(folder):
    manifest = json.loads((folder / "dataset.json").read_text())
    images, views, captions = [], [], []
    for stem in manifest["shards"]:
        tensors = load_file(str(folder / f"{stem}.safetensors"))
        images.append(tensors["images"])
        views.append(tensors["views"])
        captions += [json.loads(line)["caption"] for line in (folder / f"{stem}.jsonl").read_text().splitlines() if line]
    return manifest, np.concatenate(images), np.concatenate(views), captions


def public(config):
    """A config object without the bookkeeping keys diffusers adds (`_class_name`, …)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def save_pipeline(out, unet, text, config, config_dir, manifest):
    """The EMA model in the layout PriorPipeline reads, F16 weights."""
    for sub in ("unet", "text_encoder", "scheduler", "tokenizer"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / "unet" / "config.json").write_text(json.dumps(config["unet"], indent=2, sort_keys=True) + "\n")
    save_file({k: v.detach().half().cpu().contiguous() for k, v in unet.state_dict().items()},
              str(out / "unet" / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    (out / "text_encoder" / "config.json").write_text(json.dumps(config["text_encoder"], indent=2, sort_keys=True) + "\n")
    save_file({"text_model." + k.removeprefix("text_model."): v.detach().half().cpu().contiguous()
               for k, v in text.state_dict().items() if "position_ids" not in k},
              str(out / "text_encoder" / "model.safetensors"), metadata={"format": "pt"})
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(config["scheduler"], indent=2, sort_keys=True) + "\n")
    tokenizer_dir = (config_dir / config["tokenizer"]).resolve()
    if tokenizer_dir != (out / "tokenizer").resolve():
        for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(tokenizer_dir / name, out / "tokenizer" / name)
    (out / "model_index.json").write_text(json.dumps({
        "_class_name": "KilnPriorPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDPMScheduler"]}, indent=2) + "\n")
    settings = {"conditioning": "view-v1", "vocabulary": manifest["vocabulary"], "guidance_scale": float(config["training"].get("sample_guidance", 7.5))}
    if config["training"].get("view_prompts"):
        settings["view_prompts"] = True
        settings["vocabulary"] = sorted(set(manifest["vocabulary"]) | set(VIEW_WORDS))
    (out / "kiln_prior.json").write_text(json.dumps(settings, indent=2) + "\n")


VIEW_WORDS = ["front", "side", "back", "overhead", "view"]


def view_prompt(caption, view):
    """The caption as a prior trained with view prompts hears it: "a red mug, side view" (Kiln's
    ViewDirection: threestudio's thresholds on the azimuth and elevation the view vector holds)."""
    if not caption:
        return caption
    azimuth = math.degrees(math.atan2(view[0], view[1]))
    elevation = math.degrees(math.atan2(view[2], view[3]))
    side = "overhead" if elevation > 60 else "front" if abs(azimuth) <= 45 else "back" if abs(azimuth) >= 135 else "side"
    return f"{caption}, {side} view"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = parser.parse_args()
    started = time.time()
    config_path = pathlib.Path(a.config)
    config = json.loads(config_path.read_text())
    t = {"batch_size": 32, "steps": 10000, "learning_rate": 2e-4, "warmup_steps": 500, "weight_decay": 0.01, "max_grad_norm": 1.0,
         "ema_decay": 0.999, "caption_dropout": 0.1, "checkpoint_every": 1000, "log_every": 50, "seed": 0,
         **config.get("training", {})}
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(a.device)
    torch.manual_seed(t["seed"])

    manifest, images, views, captions = load_dataset(pathlib.Path(a.data))
    if t.get("view_prompts"):
        captions = [view_prompt(c, v) for c, v in zip(captions, views)]
    tokenizer = CLIPTokenizer.from_pretrained(str((config_path.parent / config["tokenizer"]).resolve()))
    unique = sorted(set(captions) | {""})
    ids = tokenizer(unique, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    caption_index = {c: i for i, c in enumerate(unique)}
    sample_caption = torch.tensor([caption_index[c] for c in captions], device=device)
    empty = caption_index[""]
    ids = ids.to(device)
    images_gpu = torch.from_numpy(images).to(device)              # uint8 [N, 3, H, W]
    views_gpu = torch.from_numpy(views).to(device)
    n = len(captions)
    print(f"{n} samples, {len(unique)} distinct captions, {images.shape[-1]}², device {device}")

    unet = UNet2DConditionModel(**public(config["unet"])).to(device)
    text = CLIPTextModel(CLIPTextConfig(**public(config["text_encoder"]))).to(device)
    scheduler = DDPMScheduler(**public(config["scheduler"]))
    alphas = scheduler.alphas_cumprod.to(device)
    parameters = list(unet.parameters()) + list(text.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=t["learning_rate"], weight_decay=t["weight_decay"])
    ema_unet, ema_text = copy.deepcopy(unet).eval(), copy.deepcopy(text).eval()
    ema_parameters = list(ema_unet.parameters()) + list(ema_text.parameters())
    step, losses, window = 0, [], []
    checkpoint = out / "checkpoint.pt"
    if a.resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device)
        unet.load_state_dict(state["unet"]); text.load_state_dict(state["text"])
        ema_unet.load_state_dict(state["ema_unet"]); ema_text.load_state_dict(state["ema_text"])
        optimizer.load_state_dict(state["optimizer"])
        step, losses = state["step"], state["losses"]
        torch.set_rng_state(state["rng"]); print(f"resuming at step {step}")
    print(f"UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M, text {sum(p.numel() for p in text.parameters()) / 1e6:.2f} M parameters")

    def save(final):
        torch.save({"unet": unet.state_dict(), "text": text.state_dict(), "ema_unet": ema_unet.state_dict(),
                    "ema_text": ema_text.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "losses": losses,
                    "rng": torch.get_rng_state()}, checkpoint)
        save_pipeline(out, ema_unet, ema_text, config, config_path.parent, manifest)
        (out / "loss.csv").write_text("step,loss\n" + "".join(f"{s},{l}\n" for s, l in losses))
        (out / "train_log.json").write_text(json.dumps({
            "step": step, "final": final, "samples": n, "batch_size": t["batch_size"], "device": str(device),
            "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None, "minutes": (time.time() - started) / 60,
            "torch": torch.__version__, "data_seed": manifest["seed"], "data_count": manifest["count"]}, indent=2) + "\n")

    unet.train(); text.train()
    while step < t["steps"]:
        batch = torch.randint(0, n, (t["batch_size"],), device=device)
        x0 = images_gpu[batch].float() / 127.5 - 1
        token_rows = torch.where(torch.rand(t["batch_size"], device=device) < t["caption_dropout"], empty, sample_caption[batch])
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (t["batch_size"],), device=device)
        noise = torch.randn_like(x0)
        a_t = alphas[timesteps].view(-1, 1, 1, 1)
        noisy = a_t.sqrt() * x0 + (1 - a_t).sqrt() * noise
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            context = text(input_ids=ids[token_rows]).last_hidden_state
            prediction = unet(noisy, timesteps, encoder_hidden_states=context, class_labels=views_gpu[batch]).sample
        per_sample = ((prediction.float() - noise) ** 2).mean(dim=(1, 2, 3))
        if t.get("snr_gamma") is not None:             # Min-SNR-γ: weight min(SNR, γ) / SNR
            snr = alphas[timesteps].double() / (1 - alphas[timesteps].double())
            per_sample = per_sample * (torch.clamp(snr, max=t["snr_gamma"]) / snr).float()
        loss = per_sample.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, t["max_grad_norm"])
        step += 1
        for group in optimizer.param_groups:
            group["lr"] = t["learning_rate"] * min(1.0, step / max(1, t["warmup_steps"]))
        optimizer.step()
        decay = min(t["ema_decay"], (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema_parameters, parameters):
                e.lerp_(p, 1 - decay)
        window.append(loss.item() if step % t["log_every"] == 0 else loss.detach())
        if step % t["log_every"] == 0:
            mean = float(torch.stack([torch.as_tensor(w, device=device) for w in window]).mean())
            window = []
            losses.append((step, mean))
            print(f"step {step}/{t['steps']} loss {mean:.4f} ({(time.time() - started) / 60:.1f} min)", flush=True)
        out_of_time = a.max_minutes is not None and (time.time() - started) / 60 > a.max_minutes
        if step % t["checkpoint_every"] == 0 or out_of_time:
            save(final=False)
        if out_of_time:
            print(f"time limit reached at step {step}")
            break
    save(final=step >= t["steps"])
    print(f"saved the prior at step {step} to {out}")


if __name__ == "__main__":
    main()
