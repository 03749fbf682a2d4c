"""Writes the scheduler configs of Stable Diffusion-style pipelines and what diffusers' DDIM makes of them.

Run: python3 tools/make_scheduler_conversion_goldens.py  (after pip install -r tools/requirements.txt)

Kiln samples with DDIM; a pipeline folder's scheduler/scheduler_config.json may name another class.
Kiln converts it the way `DDIMScheduler.from_config(config)` does. For each case below the script
writes Tests/KilnPriorTests/Fixtures/scheduler_configs/<name>/scheduler_config.json (a real pipeline's
file, or the file diffusers' save_config writes for that class and those settings), then records in
Tests/KilnPriorTests/Fixtures/scheduler_conversions.json what DDIMScheduler.from_config(that file)
gives: its config (the DDIM keys), alphas_cumprod (every 13th index and the last, float32, with the
float32 rounding spread as in make_scheduler_goldens.py), set_timesteps(n) for n in 1, 20, 50, and
the file's keys DDIM does not take (which Kiln lists in `ignoredKeys`). It also lists diffusers' DDIM
compatibles and their settings that neither DDPM nor DDIM takes, which Kiln's SchedulerConfig copies.
"""
import json
import pathlib
import sys

import diffusers
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       LMSDiscreteScheduler, UniPCMultistepScheduler)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_scheduler_goldens import SD15_PNDM, f32, float64_schedule, noise_of  # noqa: E402

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "Tests/KilnPriorTests/Fixtures"
SD_BETAS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")

# stabilityai/stable-diffusion-2-1 scheduler/scheduler_config.json: a DDIM config that still carries
# PNDM's skip_prk_steps (diffusers drops it silently as a compatible class's setting).
SD21_DDIM = {
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
    "prediction_type": "v_prediction", "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "trained_betas": None,
}

# stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json: Euler, with DDIM/PNDM keys
# left over from the configs it was derived from.
SDXL_EULER = {
    "_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False, "interpolation_type": "linear",
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None,
    "use_karras_sigmas": False,
}


def saved(cls, **settings):
    """The config save_config writes for `cls(**settings)`."""
    return json.loads(cls(**settings).to_json_string())


CASES = [
    ("sd15_pndm", SD15_PNDM),
    ("sd21_ddim_v_prediction", SD21_DDIM),
    ("sdxl_euler", SDXL_EULER),
    ("euler_ancestral_linspace", saved(EulerAncestralDiscreteScheduler, **SD_BETAS, steps_offset=1)),
    ("dpmsolver_pp_v_trailing_zero_snr",
     saved(DPMSolverMultistepScheduler, **SD_BETAS, algorithm_type="dpmsolver++", solver_order=2,
           prediction_type="v_prediction", timestep_spacing="trailing", rescale_betas_zero_snr=True,
           final_sigmas_type="zero", use_karras_sigmas=False)),
    ("lms_linspace", saved(LMSDiscreteScheduler, **SD_BETAS)),
    ("unipc_squaredcos_sample_leading",
     saved(UniPCMultistepScheduler, num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
           prediction_type="sample", timestep_spacing="leading", steps_offset=1, solver_order=3)),
]

TIMESTEP_COUNTS = [1, 20, 50]


def init_keys(cls):
    return set(DDIMScheduler._get_init_keys(cls)) - {"self", "kwargs", "args"}


def case_entry(name, config):
    folder = FIXTURES / "scheduler_configs" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scheduler_config.json"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    file_config = json.loads(path.read_text())
    ddim = DDIMScheduler.from_config(file_config)
    ddim_keys = init_keys(DDIMScheduler)
    ddim_config = {k: ddim.config[k] for k in sorted(ddim_keys)}
    ddim_config_json = json.dumps({"_class_name": "DDIMScheduler", **ddim_config}, indent=2, sort_keys=True)
    t_max = ddim.config.num_train_timesteps
    indices = list(range(0, t_max, 13)) + ([t_max - 1] if (t_max - 1) % 13 else [])
    _, ac64 = float64_schedule("DDIMScheduler", ddim_config_json)
    timesteps = {}
    for n in TIMESTEP_COUNTS:
        s = DDIMScheduler.from_config(file_config)
        s.set_timesteps(n)
        timesteps[str(n)] = s.timesteps.tolist()
    return {
        "name": name,
        "class": file_config["_class_name"],
        "ddim_config_json": ddim_config_json,
        "ignored_keys": sorted(k for k in file_config if not k.startswith("_") and k not in ddim_keys),
        "schedule_indices": indices,
        "alphas_cumprod": f32(ddim.alphas_cumprod[indices]),
        "alphas_cumprod_noise": noise_of(ddim.alphas_cumprod, ac64),
        "timesteps": timesteps,
    }


def main():
    compatibles = sorted(c.__name__ for c in DDIMScheduler._get_compatibles())
    other_keys = set()
    for c in DDIMScheduler._get_compatibles():
        other_keys |= init_keys(c)
    other_keys -= init_keys(DDIMScheduler) | init_keys(DDPMScheduler)
    golden = {
        "diffusers_version": diffusers.__version__,
        "compatible_classes": compatibles,
        "other_scheduler_keys": sorted(other_keys),
        "cases": [case_entry(name, config) for name, config in CASES],
    }
    out = FIXTURES / "scheduler_conversions.json"
    out.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"{out.name}: {out.stat().st_size} bytes, {len(golden['cases'])} cases")


if __name__ == "__main__":
    main()
