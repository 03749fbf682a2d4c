"""Writes SSIM/PSNR goldens from scikit-image for Kiln's ImageMetrics tests.

Run: python3 tools/make_metric_goldens.py  (after pip install -r tools/requirements.txt)
Writes Tests/KilnCoreTests/Fixtures/metrics.json: image pairs (float32 values, exactly
representable, [H, W, 3]) with scikit-image's structural_similarity (gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=2) and peak_signal_noise_ratio.
"""
import json
import pathlib

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/KilnCoreTests/Fixtures/metrics.json"


def main():
    rng = np.random.default_rng(7)
    cases = []
    for h, w, noise in [(24, 24, 0.05), (17, 31, 0.2), (40, 12, 0.01)]:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([0.5 + 0.4 * np.sin(xx / 3.0), 0.5 + 0.4 * np.cos(yy / 4.0), (xx + yy) / (h + w)], 2)
        a = np.round(base * 255) / 255
        b = np.clip(np.round((base + rng.normal(0, noise, base.shape)) * 255) / 255, 0, 1)
        a, b = a.astype(np.float32), b.astype(np.float32)
        ssim = structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0, channel_axis=2)
        psnr = peak_signal_noise_ratio(a.astype(np.float64), b.astype(np.float64), data_range=1.0)
        cases.append({"width": w, "height": h, "a": a.ravel().tolist(), "b": b.ravel().tolist(), "ssim": ssim, "psnr": psnr})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"cases": cases}) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
