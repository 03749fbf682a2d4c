"""Kiln's matrix products next to numpy's, on the same shapes and thread counts.

Run: python3 tools/bench_matmul_numpy.py [--kiln PATH_TO_kiln-bench] [--quick]

Runs `kiln-bench matmul --json` (building it in release first if PATH is not given and the binary
is missing), then times numpy's float32 matmul on every shape it reports, in a fresh process per
thread count with OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set (numpy's OpenBLAS reads them once, at
import). Both sides call an OpenBLAS sgemm; prints one table: GFLOP/s and Kiln / numpy.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

NUMPY_WORKER = r"""
import json, sys, time
import numpy as np
shapes = json.loads(sys.argv[1])
rng = np.random.default_rng(1)
out = []
for s in shapes:
    m, n, k = s["m"], s["n"], s["k"]
    a = rng.standard_normal((k, m) if s["transpose_a"] else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if s["transpose_b"] else (k, n), dtype=np.float32)
    a = a.T if s["transpose_a"] else a   # transposed views: numpy hands BLAS the transpose flag
    b = b.T if s["transpose_b"] else b
    c = np.empty((m, n), dtype=np.float32)
    flops = 2.0 * m * n * k
    runs = max(5, min(200, int(2e10 / flops)))
    np.matmul(a, b, out=c)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t)
    out.append(flops / min(times) / 1e9)
print(json.dumps(out))
"""


def kiln_results(binary, quick):
    if binary is None:
        binary = ROOT / ".build/release/kiln-bench"
        if not binary.exists():
            subprocess.run(["swift", "build", "-c", "release", "--product", "kiln-bench"], cwd=ROOT, check=True)
    args = [str(binary), "matmul", "--json"] + (["--quick"] if quick else [])
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


def numpy_gflops(shapes, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    result = subprocess.run([sys.executable, "-c", NUMPY_WORKER, json.dumps(shapes)], env=env, check=True,
                            capture_output=True, text=True)
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kiln", type=pathlib.Path, help="kiln-bench binary (default: .build/release/kiln-bench)")
    parser.add_argument("--quick", action="store_true", help="only the first two shapes")
    parser.add_argument("--rounds", type=int, default=3, help="alternating Kiln/numpy rounds (best kept)")
    args = parser.parse_args()

    kiln, numpy = None, {1: None, 2: None}
    for _ in range(args.rounds):
        run = kiln_results(args.kiln, args.quick)
        kiln = run if kiln is None else [dict(a, gflops=max(a["gflops"], b["gflops"])) for a, b in zip(kiln, run)]
        shapes = [row for row in kiln if row["threads"] == 1]
        for t in (1, 2):
            run_numpy = numpy_gflops(shapes, t)
            numpy[t] = run_numpy if numpy[t] is None else [max(a, b) for a, b in zip(numpy[t], run_numpy)]
    import numpy as np
    print(f"GFLOP/s, float32, best of {args.rounds} alternating rounds of several runs "
          f"(numpy {np.__version__}; both call OpenBLAS sgemm)")
    print("| shape | m | n | k | threads | Kiln | numpy | Kiln / numpy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    worst = float("inf")
    for i, s in enumerate(shapes):
        for t in (1, 2):
            k = next(r["gflops"] for r in kiln if r["name"] == s["name"] and r["threads"] == t)
            n = numpy[t][i]
            worst = min(worst, k / n)
            print(f"| {s['name']} | {s['m']} | {s['n']} | {s['k']} | {t} | {k:.1f} | {n:.1f} | {k / n:.2f} |")
    print(f"\nlowest Kiln / numpy ratio: {worst:.2f} (the bar is 0.70)")


if __name__ == "__main__":
    main()
