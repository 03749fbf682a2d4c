"""Kiln's marching cubes next to scikit-image's (`measure.marching_cubes`, Lewiner) on the same field.

Run from the repository root:
    python3 tools/bench_marching_cubes.py            # builds and runs `kiln-bench marching-cubes`
    python3 tools/bench_marching_cubes.py --quick    # 128³ only
    python3 tools/bench_marching_cubes.py --kiln-json PATH   # reuse a `kiln-bench ... --json PATH` report
    python3 tools/bench_marching_cubes.py --scratch-path .build-release   # build folder for `swift run`

The field is the one `Sources/kiln-bench/MarchingCubesBench.swift` builds: on [-1, 1]³ sampled n
times per axis, a torus SDF (major radius 0.6, minor 0.25, ring in the xy plane) plus
0.02 · sin 11x · sin 13y · sin 17z, evaluated in float64 with the same operation order and rounded
to float32, level 0, inside below. scikit-image gets the `[nz, ny, nx]` array; its timing is the
whole `marching_cubes` call (it also computes per-vertex normals, which Kiln leaves to the caller),
single-threaded. Both columns are medians; the triangle counts show both saw the same surface.
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import tempfile
import time

import numpy as np
from skimage import measure


def bench_field(n):
    h = 2.0 / (n - 1)
    c = -1.0 + h * np.arange(n, dtype=np.float64)
    x, y, z = c[None, None, :], c[None, :, None], c[:, None, None]
    q = np.sqrt(x * x + y * y) - 0.6
    torus = np.sqrt(q * q + z * z) - 0.25
    return (torus + 0.02 * np.sin(11 * x) * np.sin(13 * y) * np.sin(17 * z)).astype(np.float32)


def time_skimage(volume, runs):
    measure.marching_cubes(volume, level=0.0, gradient_direction="ascent")  # warm-up
    times, faces = [], None
    for _ in range(runs):
        start = time.perf_counter()
        _, faces, _, _ = measure.marching_cubes(volume, level=0.0, gradient_direction="ascent")
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(faces)


def kiln_report(args):
    if args.kiln_json:
        return json.loads(pathlib.Path(args.kiln_json).read_text())
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "kiln.json"
        command = ["swift", "run", "-c", "release"]
        if args.scratch_path:
            command += ["--scratch-path", args.scratch_path]
        command += ["kiln-bench", "marching-cubes", "--json", str(path)]
        if args.quick:
            command.append("--quick")
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return json.loads(path.read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128³ only")
    parser.add_argument("--scratch-path", help="passed to `swift run` (a build folder other than .build)")
    parser.add_argument("--kiln-json", help="read Kiln's timings from this report instead of running kiln-bench")
    args = parser.parse_args()

    rows = kiln_report(args)["rows"]
    skimage = {}
    for n in sorted({row["size"] for row in rows}):
        skimage[n] = time_skimage(bench_field(n), runs=11 if n <= 128 else 7)

    print("Marching cubes, torus-plus-wobble SDF, median ms; scikit-image "
          f"{__import__('skimage').__version__} (Lewiner) is single-threaded")
    print("| grid | Kiln threads | Kiln ms | scikit-image ms | Kiln speed-up | Kiln triangles | scikit-image triangles |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        n = row["size"]
        sk_ms, sk_triangles = skimage[n]
        print(f"| {n}³ | {row['threads']} | {row['ms']:.1f} | {sk_ms:.1f} | {sk_ms / row['ms']:.1f}× "
              f"| {row['triangles']} | {sk_triangles} |")


if __name__ == "__main__":
    main()
