"""Writes diffusers DDPM/DDIM scheduler goldens for Kiln's Swift schedulers.

Run: python3 tools/make_scheduler_goldens.py  (after pip install -r tools/requirements.txt)
Writes Tests/KilnPriorTests/Fixtures/schedulers.json. For each case, diffusers' own scheduler
(DDPMScheduler / DDIMScheduler, built from the config JSON stored with the case, exactly as
`from_config` would) gives:
- betas and alphas_cumprod (every 13th index and the last), as float32 values;
- set_timesteps(n) for several n;
- step outputs (prev_sample, pred_original_sample) for fixed random model outputs and samples,
  with the variance noise used (DDPM draws it from a seeded torch.Generator; the same draw is
  stored; DDIM gets it as variance_noise);
- add_noise and get_velocity for a batch of timesteps;
plus, for T = 1000, a checksum of set_timesteps(n) for every n in 1...1000 and each spacing, and
classifier-free guidance with diffusers' rescale_noise_cfg. All numbers are float32 values written
as exact decimals (Python floats), integers as integers.

Float32 noise. diffusers computes in float32, and PyTorch's float32 `sqrt` (torch 2.13 CPU build,
AVX-512 kernels) is not correctly rounded (measured: up to 0.75 ulp, one ulp off for about a fifth of
inputs, 0-d tensors included), while Kiln's is. So where a result is ill-conditioned (x̂₀ =
(xₜ − √(1−ᾱ) ε)/√ᾱ near t = T, betas rebuilt by zero-terminal-SNR rescaling) diffusers' own float32
value is off from the exact one by more than 1e-6. For every output the script therefore also runs
diffusers' same code in float64 (scheduler tensors and inputs converted to float64, starting from the
same float32 betas) and stores `*_noise` = max |float32 − float64| over the output's elements. The
Swift tests accept |Kiln − diffusers| ≤ 1e-6·max(1, |diffusers|) + 2·noise: 1e-6 where diffusers'
float32 arithmetic is that accurate, and its own rounding spread where it is not.
"""
import json
import pathlib
from unittest import mock

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/KilnPriorTests/Fixtures/schedulers.json"
rng = np.random.default_rng(20261125)
CLASSES = {"DDPMScheduler": DDPMScheduler, "DDIMScheduler": DDIMScheduler}

# The scheduler_config.json shipped with Stable Diffusion 1.x (a PNDM config); pipelines swap in
# DDIM with DDIMScheduler.from_config(pipe.scheduler.config).
SD15_PNDM = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
    "clip_sample": False,
}

# name, class, config overrides, inference step counts for `steps`, [(eta, use_clipped)] for DDIM,
# sample scale (how large the samples are), batch size of the step arrays.
CASES = [
    ("ddpm_linear_epsilon", "DDPMScheduler", {}, [None, 10], None, 1.0, 1),
    ("ddpm_scaled_linear_v_trailing_fixed_large", "DDPMScheduler",
     dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type="v_prediction",
          variance_type="fixed_large", clip_sample=False, timestep_spacing="trailing"), [None, 7], None, 1.0, 1),
    ("ddpm_squaredcos_sample_linspace_small_log", "DDPMScheduler",
     dict(beta_schedule="squaredcos_cap_v2", prediction_type="sample", variance_type="fixed_small_log",
          clip_sample_range=1.5, timestep_spacing="linspace"), [None, 10], None, 2.0, 1),
    ("ddpm_thresholding", "DDPMScheduler",
     dict(thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=2.0), [None, 10], None, 3.0, 2),
    ("ddpm_zero_snr_v_trailing", "DDPMScheduler",
     dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True,
          prediction_type="v_prediction", clip_sample=False, timestep_spacing="trailing"), [10], None, 1.0, 1),
    ("ddpm_trained_betas_t10", "DDPMScheduler",
     dict(num_train_timesteps=10, trained_betas=[0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6]),
     [None, 4], None, 1.0, 1),
    ("ddim_sd_leading_offset", "DDIMScheduler",
     dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, set_alpha_to_one=False, steps_offset=1,
          clip_sample=False), [50, 10], [(0.0, False), (0.5, False)], 1.0, 1),
    ("ddim_linear_v_trailing_clip", "DDIMScheduler",
     dict(prediction_type="v_prediction", timestep_spacing="trailing"), [7], [(0.0, False), (0.5, True)], 2.0, 1),
    ("ddim_squaredcos_sample_linspace", "DDIMScheduler",
     dict(beta_schedule="squaredcos_cap_v2", prediction_type="sample", timestep_spacing="linspace",
          set_alpha_to_one=False), [10], [(0.0, False), (1.0, True)], 1.0, 1),
    ("ddim_zero_snr_v_trailing", "DDIMScheduler",
     dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True,
          prediction_type="v_prediction", timestep_spacing="trailing", clip_sample=False), [10],
     [(0.0, False), (0.5, False)], 1.0, 1),
    ("ddim_thresholding_epsilon", "DDIMScheduler",
     dict(thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.5), [10], [(0.0, False), (0.5, True)],
     3.0, 2),
    ("ddim_t100_linear_trailing", "DDIMScheduler",
     dict(num_train_timesteps=100, beta_start=0.001, beta_end=0.03, timestep_spacing="trailing"), [7, 3],
     [(0.0, False), (0.5, False)], 1.0, 1),
]

TIMESTEP_COUNTS = [1, 3, 7, 10, 50]


def f32(t):
    """A tensor's float32 values as exact Python floats."""
    return torch.as_tensor(t).to(torch.float32).reshape(-1).tolist()


def randn(*shape, scale=1.0):
    return torch.from_numpy((rng.standard_normal(shape) * scale).astype(np.float32))


def make(class_name, config_json):
    config = json.loads(config_json)
    return CLASSES[class_name].from_config(config)


def noise_of(a32, a64):
    """max |float32 − float64| over a tensor pair (the float32 rounding spread)."""
    return float((torch.as_tensor(a32).double().reshape(-1) - torch.as_tensor(a64).double().reshape(-1)).abs().max())


def float64_schedule(class_name, config_json):
    """betas and alphas_cumprod in float64 from the same float32 betas (zero-SNR rescaling in float64)."""
    config = json.loads(config_json)
    rescale = config.get("rescale_betas_zero_snr", False)
    config["rescale_betas_zero_snr"] = False
    base = CLASSES[class_name].from_config(config).betas.double()
    if rescale:
        from diffusers.schedulers.scheduling_ddpm import rescale_zero_terminal_snr
        base = rescale_zero_terminal_snr(base)
    return base, torch.cumprod(1.0 - base, dim=0)


def to_float64(scheduler, class_name, config_json):
    """The scheduler with its tensors in float64 (same float32 betas), so step runs in float64."""
    _, ac64 = float64_schedule(class_name, config_json)
    scheduler.alphas_cumprod = ac64
    if class_name == "DDIMScheduler":
        scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64) \
            if scheduler.config.set_alpha_to_one else ac64[0]
    else:
        scheduler.one = torch.tensor(1.0, dtype=torch.float64)
    return scheduler


def case_entry(name, class_name, overrides, step_counts, ddim_etas, scale, batch, config_json=None):
    if config_json is None:
        config_json = CLASSES[class_name](**overrides).to_json_string()
    scheduler = make(class_name, config_json)
    t_max = scheduler.config.num_train_timesteps
    indices = list(range(0, t_max, 13)) + ([t_max - 1] if (t_max - 1) % 13 else [])
    betas64, ac64 = float64_schedule(class_name, config_json)
    entry = {
        "name": name,
        "class": class_name,
        "config_json": config_json,
        "schedule_indices": indices,
        "betas": f32(scheduler.betas[indices]),
        "betas_noise": noise_of(scheduler.betas, betas64),
        "alphas_cumprod": f32(scheduler.alphas_cumprod[indices]),
        "alphas_cumprod_noise": noise_of(scheduler.alphas_cumprod, ac64),
        "timesteps": {},
        "steps": [],
    }
    for n in [n for n in TIMESTEP_COUNTS if n <= t_max]:
        s = make(class_name, config_json)
        s.set_timesteps(n)
        entry["timesteps"][str(n)] = s.timesteps.tolist()

    shape = [batch, 2, 2, 2]
    seed = 1000
    for n in step_counts:
        s = make(class_name, config_json)
        s64 = to_float64(make(class_name, config_json), class_name, config_json)
        if n is not None:
            s.set_timesteps(n)
            s64.set_timesteps(n)
            ts = s.timesteps.tolist()
            chosen = [ts[0], ts[len(ts) // 2], ts[-1]]
        else:
            chosen = [t_max - 1, t_max // 2, 1, 0]
        etas = ddim_etas if class_name == "DDIMScheduler" else [(None, None)]
        for t in chosen:
            for eta, clipped in etas:
                model_output = randn(*shape)
                sample = randn(*shape, scale=scale)
                seed += 1
                step = {"num_inference_steps": n, "timestep": int(t), "shape": shape,
                        "model_output": f32(model_output), "sample": f32(sample)}
                if class_name == "DDPMScheduler":
                    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
                    out = s.step(model_output, int(t), sample, generator=torch.Generator().manual_seed(seed))
                    # The float64 run must add the same noise: DDPM draws it inside step.
                    with mock.patch("diffusers.schedulers.scheduling_ddpm.randn_tensor",
                                    lambda *args, **kwargs: noise.double()):
                        out64 = s64.step(model_output.double(), int(t), sample.double())
                else:
                    noise = randn(*shape) if eta > 0 else None
                    out = s.step(model_output, int(t), sample, eta=eta, use_clipped_model_output=clipped,
                                 variance_noise=noise)
                    out64 = s64.step(model_output.double(), int(t), sample.double(), eta=eta,
                                     use_clipped_model_output=clipped,
                                     variance_noise=noise.double() if noise is not None else None)
                    step["eta"] = eta
                    step["use_clipped_model_output"] = clipped
                step["noise"] = f32(noise) if noise is not None else None
                step["prev_sample"] = f32(out.prev_sample)
                step["prev_sample_noise"] = noise_of(out.prev_sample, out64.prev_sample)
                step["pred_original_sample"] = f32(out.pred_original_sample)
                step["pred_original_sample_noise"] = noise_of(out.pred_original_sample, out64.pred_original_sample)
                entry["steps"].append(step)

    s = make(class_name, config_json)
    s64 = to_float64(make(class_name, config_json), class_name, config_json)
    timesteps = [0, t_max // 2, t_max - 1]
    original = randn(3, 2, 2, 2)
    noise = randn(3, 2, 2, 2)
    ts = torch.tensor(timesteps, dtype=torch.int64)
    noisy, velocity = s.add_noise(original, noise, ts), s.get_velocity(original, noise, ts)
    entry["add_noise"] = {
        "timesteps": timesteps, "shape": [3, 2, 2, 2], "original": f32(original), "noise": f32(noise),
        "noisy": f32(noisy), "noisy_noise": noise_of(noisy, s64.add_noise(original.double(), noise.double(), ts)),
        "velocity": f32(velocity),
        "velocity_noise": noise_of(velocity, s64.get_velocity(original.double(), noise.double(), ts)),
    }
    return entry


def timestep_checksums():
    """For T = 1000: [count, Σ (i+1)·t_i] of set_timesteps(n), n = 1...1000, per spacing."""
    out = {}
    for spacing, offset in [("leading", 1), ("trailing", 0), ("linspace", 0)]:
        s = DDIMScheduler(timestep_spacing=spacing, steps_offset=offset)
        rows = []
        for n in range(1, 1001):
            s.set_timesteps(n)
            ts = s.timesteps.tolist()
            rows.append([len(ts), sum((i + 1) * t for i, t in enumerate(ts))])
        out[spacing] = {"steps_offset": offset, "rows": rows}
    return out


def guidance():
    out = []
    for scale, rescale in [(7.5, 0.0), (7.5, 0.7), (3.0, 1.0)]:
        shape = [2, 2, 3, 3]
        uncond = randn(*shape)
        cond = uncond + randn(*shape, scale=0.3)
        guided = uncond + scale * (cond - uncond)
        rescaled = rescale_noise_cfg(guided, cond, guidance_rescale=rescale)
        guided64 = uncond.double() + scale * (cond.double() - uncond.double())
        rescaled64 = rescale_noise_cfg(guided64, cond.double(), guidance_rescale=rescale)
        out.append({"scale": scale, "rescale": rescale, "shape": shape, "uncond": f32(uncond), "cond": f32(cond),
                    "guided": f32(guided), "guided_noise": noise_of(guided, guided64),
                    "rescaled": f32(rescaled), "rescaled_noise": noise_of(rescaled, rescaled64)})
    return out


def main():
    cases = [case_entry(*c) for c in CASES]
    cases.append(case_entry("ddim_from_sd15_pndm_config", "DDIMScheduler", None, [50], [(0.0, False)], 1.0, 1,
                            config_json=json.dumps(SD15_PNDM, indent=2)))
    golden = {"cases": cases, "timestep_checksums": timestep_checksums(), "guidance": guidance()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"{OUT.name}: {OUT.stat().st_size} bytes, {len(cases)} cases, "
          f"{sum(len(c['steps']) for c in cases)} steps")


if __name__ == "__main__":
    main()
