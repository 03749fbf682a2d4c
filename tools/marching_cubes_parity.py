"""Golden files for Kiln's marching cubes, from scikit-image's `measure.marching_cubes` (Lewiner).

Run:
    python3 tools/marching_cubes_parity.py [OUT_DIR]
(default OUT_DIR: Tests/KilnAssetTests/Fixtures/marching_cubes). Needs numpy and scikit-image.

For each field it writes `NAME.json` (the field's recipe, grid, level, checks on the sampled values
and scikit-image's results) and `NAME_vertices.f32` (all of scikit-image's vertices, world x, y, z,
raw little-endian float32, [V, 3]). The 64³ fields themselves (1 MB each as float32) are not stored:
each is an analytic formula evaluated in float64 at the sample's world position and rounded to
float32, which Swift reproduces exactly; the JSON carries the float64 sum of the rounded values and a
few samples so the test can prove it rebuilt the same grid.

Conventions. Kiln's grid is `[nz, ny, nx]` (x fastest) with sample (i, j, k) at
`origin + spacing * (i, j, k)`. scikit-image is given the same `[nz, ny, nx]` array with unit
spacing, so it returns vertices as (k, j, i) index coordinates; this script reverses them to
(i, j, k) and maps them to world coordinates in float64. Faces are oriented with
`gradient_direction='ascent'` for SDFs (inside below the level) and `'descent'` for densities
(inside above), so both libraries' signed volumes are positive. `allow_degenerate=True` (the default
in scikit-image 0.26) keeps zero-area triangles, as Kiln does; on these smooth fields there are none.
"""
import json
import pathlib
import sys

import numpy as np
from skimage import measure

FIELDS = [
    {
        "name": "sphere",
        "shape": [64, 64, 64],  # nx, ny, nz
        "origin": [-1.0, -1.0, -1.0],
        "spacing": [0.03125, 0.03125, 0.03125],
        "level": 0.0,
        "inside": "below",
        "field": {"kind": "sphere", "center": [-0.02, 0.01, 0.03], "radius": 0.55},
    },
    {
        "name": "torus",
        "shape": [64, 64, 64],
        "origin": [-1.25, -0.5, -1.0],
        "spacing": [0.0390625, 0.015625, 0.03125],
        "level": 0.0,
        "inside": "below",
        "field": {"kind": "torus", "center": [0.0, 0.0, 0.0], "major": 0.55, "minor": 0.2},
    },
    {
        "name": "blobs",
        "shape": [64, 48, 56],
        "origin": [0.5, -0.75, 2.0],
        "spacing": [0.03125, 0.0234375, 0.02734375],
        "level": 0.5,
        "inside": "above",
        "field": {
            "kind": "gaussians",
            "centers": [[1.2, -0.3, 2.6], [1.55, -0.1, 2.8], [1.0, 0.05, 2.55], [1.4, -0.45, 2.45], [1.7, 0.2, 2.95]],
            "sigmas": [0.16, 0.12, 0.1, 0.09, 0.07],
            "weights": [1.0, 0.9, 0.8, 0.85, 1.1],
        },
    },
]


def sample(spec):
    """`[nz, ny, nx]` float32 samples: the formula in float64 at world positions, rounded once."""
    nx, ny, nz = spec["shape"]
    o, s = spec["origin"], spec["spacing"]
    x = o[0] + s[0] * np.arange(nx, dtype=np.float64)
    y = o[1] + s[1] * np.arange(ny, dtype=np.float64)
    z = o[2] + s[2] * np.arange(nz, dtype=np.float64)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    f = spec["field"]
    if f["kind"] == "sphere":
        c = f["center"]
        dx, dy, dz = xx - c[0], yy - c[1], zz - c[2]
        values = np.sqrt(dx * dx + dy * dy + dz * dz) - f["radius"]
    elif f["kind"] == "torus":  # ring in the xz plane, around the y axis
        c = f["center"]
        dx, dy, dz = xx - c[0], yy - c[1], zz - c[2]
        q = np.sqrt(dx * dx + dz * dz) - f["major"]
        values = np.sqrt(q * q + dy * dy) - f["minor"]
    elif f["kind"] == "gaussians":
        values = np.zeros_like(xx)
        for c, sigma, w in zip(f["centers"], f["sigmas"], f["weights"]):
            dx, dy, dz = xx - c[0], yy - c[1], zz - c[2]
            values = values + w * np.exp(-(dx * dx + dy * dy + dz * dz) / (2 * sigma * sigma))
    else:
        raise ValueError(f["kind"])
    return values.astype(np.float32)


def signed_volume(v, f):
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "Tests/KilnAssetTests/Fixtures/marching_cubes")
    out.mkdir(parents=True, exist_ok=True)
    for spec in FIELDS:
        volume = sample(spec)
        direction = "ascent" if spec["inside"] == "below" else "descent"
        verts, faces, _, _ = measure.marching_cubes(volume, level=spec["level"], gradient_direction=direction,
                                                    allow_degenerate=True)
        ijk = verts[:, ::-1].astype(np.float64)  # (k, j, i) -> (i, j, k)
        world = np.asarray(spec["origin"]) + np.asarray(spec["spacing"]) * ijk
        flat = volume.reshape(-1)
        rng = np.random.default_rng(0)
        picks = sorted(int(i) for i in rng.choice(flat.size, 16, replace=False))
        record = dict(spec)
        record["value_checks"] = {
            "sum": float(flat.astype(np.float64).sum()),
            "samples": [[i, float(flat[i])] for i in picks],
        }
        record["skimage"] = {
            "version": __import__("skimage").__version__,
            "vertex_count": int(len(verts)),
            "triangle_count": int(len(faces)),
            "area": float(measure.mesh_surface_area(world, faces)),
            "volume": signed_volume(world, faces),
            "vertices_file": f"{spec['name']}_vertices.f32",
        }
        (out / f"{spec['name']}.json").write_text(json.dumps(record, indent=1) + "\n")
        world.astype("<f4").tofile(out / f"{spec['name']}_vertices.f32")
        print(f"{spec['name']}: {len(verts)} vertices, {len(faces)} triangles, "
              f"area {record['skimage']['area']:.6f}, volume {record['skimage']['volume']:.6f}")


if __name__ == "__main__":
    main()
