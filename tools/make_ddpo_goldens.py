"""Goldens for Kiln's stochastic DDIM step with log-probability (DDPO's `ddim_step_with_logprob`).

Run from the repository root (needs torch and diffusers; see tools/requirements.txt):

    python3 tools/make_ddpo_goldens.py

Writes Tests/KilnPriorTests/Fixtures/ddpo_logprob.json. `ddim_step_with_logprob` below is the
function of Black et al.'s ddpo-pytorch (ddpo_pytorch/diffusers_patch/ddim_with_logprob.py),
restated on diffusers' `DDIMScheduler` for one timestep at a time: x̂₀ and ε̂ from the model output
per prediction type, x̂₀ clipped as the config says, σ = η·√variance with the previous timestep
clamped at 0, μ = √ᾱₚ·x̂₀ + √(1 − ᾱₚ − σ²)·ε̂, xₚ = μ + σ·z, and
log p = mean over each sample's values of −(xₚ − μ)²/(2σ²) − log σ − log √(2π).

Each case stores the scheduler config, the timestep, η, the model output, the sample, the noise z,
and diffusers' results: prev_sample, log_prob per sample, and the gradient of Σ_b w_b·log_prob_b
with respect to the model output (autograd, xₚ detached as DDPO does), for fixed weights w.
Everything runs in float64 from float32 inputs; the Swift tests compare Kiln's float32 results
with a relative tolerance.
"""
import json
import math
import pathlib

import numpy as np
import torch
from diffusers import DDIMScheduler

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/KilnPriorTests/Fixtures/ddpo_logprob.json"
rng = np.random.default_rng(20261206)

CONFIGS = {
    # Stable Diffusion's schedule (set_alpha_to_one false, steps offset 1), ε-prediction, no clipping.
    "sd-epsilon": dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                       set_alpha_to_one=False, steps_offset=1),
    # The same with v-prediction (SD 2.x 768-v).
    "sd-v": dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                 set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction"),
    # Kiln's built-in prior's schedule: linear betas, x̂₀ clipped to ±1, ε-prediction.
    "kiln-clipped": dict(beta_schedule="linear", beta_start=0.0001, beta_end=0.02, clip_sample=True),
    # x₀-prediction with clipping.
    "sample-clipped": dict(beta_schedule="linear", beta_start=0.0001, beta_end=0.02, clip_sample=True,
                           prediction_type="sample"),
}


def ddim_step_with_logprob(scheduler, model_output, timestep, sample, eta, noise):
    """DDPO's function for one integer timestep, in the scheduler's arithmetic."""
    config = scheduler.config
    prev_timestep = timestep - config.num_train_timesteps // scheduler.num_inference_steps
    prev_timestep = max(prev_timestep, 0)  # DDPO's clamp: the last step lands on ᾱ₀
    ac = scheduler.alphas_cumprod.double()
    alpha_prod_t = ac[timestep]
    alpha_prod_t_prev = ac[prev_timestep]
    beta_prod_t = 1 - alpha_prod_t
    if config.prediction_type == "epsilon":
        pred_original_sample = (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
        pred_epsilon = model_output
    elif config.prediction_type == "sample":
        pred_original_sample = model_output
        pred_epsilon = (sample - alpha_prod_t ** 0.5 * pred_original_sample) / beta_prod_t ** 0.5
    else:
        pred_original_sample = alpha_prod_t ** 0.5 * sample - beta_prod_t ** 0.5 * model_output
        pred_epsilon = alpha_prod_t ** 0.5 * model_output + beta_prod_t ** 0.5 * sample
    if config.clip_sample:
        pred_original_sample = pred_original_sample.clamp(-config.clip_sample_range, config.clip_sample_range)
    variance = ((1 - alpha_prod_t_prev) / beta_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)
    std_dev_t = eta * variance ** 0.5
    pred_sample_direction = (1 - alpha_prod_t_prev - std_dev_t ** 2) ** 0.5 * pred_epsilon
    prev_sample_mean = alpha_prod_t_prev ** 0.5 * pred_original_sample + pred_sample_direction
    prev_sample = prev_sample_mean + std_dev_t * noise
    log_prob = (-((prev_sample.detach() - prev_sample_mean) ** 2) / (2 * std_dev_t ** 2)
                - torch.log(std_dev_t) - math.log(math.sqrt(2 * math.pi)))
    return prev_sample, log_prob.mean(dim=tuple(range(1, log_prob.ndim)))


def f32(a):
    return np.asarray(a, dtype=np.float32)


def main():
    cases = []
    for name, config in CONFIGS.items():
        scheduler = DDIMScheduler(**config)
        steps = 20
        scheduler.set_timesteps(steps)
        timesteps = [int(t) for t in scheduler.timesteps]
        # The first, a middle and the last step (the last lands on ᾱ₀ through the clamp).
        for timestep in [timesteps[0], timesteps[len(timesteps) // 2], timesteps[-1]]:
            if timestep == 0:
                continue  # σ = 0: no log-probability (Kiln refuses it by name)
            for eta in [1.0, 0.5]:
                shape = (2, 3, 4, 4)
                output = f32(rng.standard_normal(shape) * (1.5 if config.get("prediction_type") == "sample" else 1))
                sample = f32(rng.standard_normal(shape))
                noise = f32(rng.standard_normal(shape))
                weights = f32(rng.standard_normal(2))
                m = torch.tensor(output, dtype=torch.float64, requires_grad=True)
                prev, log_prob = ddim_step_with_logprob(scheduler, m, timestep, torch.tensor(sample, dtype=torch.float64), eta,
                                                        torch.tensor(noise, dtype=torch.float64))
                (log_prob * torch.tensor(weights, dtype=torch.float64)).sum().backward()
                cases.append({
                    "name": name, "config": {k: v for k, v in config.items()}, "steps": steps, "timestep": timestep, "eta": eta,
                    "shape": list(shape), "model_output": output.ravel().tolist(), "sample": sample.ravel().tolist(),
                    "noise": noise.ravel().tolist(), "weights": weights.tolist(),
                    "prev_sample": prev.detach().numpy().ravel().tolist(), "log_prob": log_prob.detach().numpy().tolist(),
                    "gradient": m.grad.numpy().ravel().tolist(),
                })
    OUT.write_text(json.dumps({"torch": torch.__version__, "diffusers": __import__("diffusers").__version__, "cases": cases}) + "\n")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(OUT.parents[3])}")


if __name__ == "__main__":
    main()
