#!/usr/bin/env bash
# Fuzzes Kiln's file readers (3DGS PLY, .splat, PNG) with libFuzzer and AddressSanitizer, then
# the mesh import path (Assimp in the isolated child) with mutated mesh files through `kiln inspect`.
#   tools/fuzz.sh SCRATCH [SECONDS] [extra libFuzzer flags]
# SCRATCH (created if missing) holds everything the run writes: readers-corpus/ (kept between
# runs), crash-* files from libFuzzer, mesh-corpus/ (seed meshes), and mesh-findings/ with every
# mutated mesh on which `kiln inspect` crashed (a status ≥ 128: the parent, not the child, died) or
# hung (over 60 s; the import child of a small file is stopped after 10 s of CPU). SECONDS (default 300) is libFuzzer's time; the mesh loop runs for half of it.
# KILN_BUILD=path sets the scratch path of the plain `kiln` build (default .build).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: tools/fuzz.sh SCRATCH [SECONDS] [libFuzzer flags]" >&2
  exit 2
fi
scratch="$(mkdir -p "$1" && cd "$1" && pwd)"; shift
seconds="${1:-300}"; shift || true
build="${KILN_BUILD:-.build}"

swift build --scratch-path .build-fuzz --product kiln-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DKILN_FUZZ 2>&1 | tail -1
swift build --scratch-path "$build" --product kiln 2>&1 | tail -1
kiln="$build/debug/kiln"

corpus="$scratch/readers-corpus"
meshes="$scratch/mesh-corpus"
mkdir -p "$corpus" "$meshes" "$scratch/mesh-findings"
if [ -z "$(ls -A "$corpus")" ] || [ -z "$(ls -A "$meshes")" ]; then
  seed_dir="$scratch/seed"
  rm -rf "$seed_dir"
  "$kiln" demo --out "$seed_dir" --splats 40 --size 16 >/dev/null
  cp "$seed_dir/splats.ply" "$seed_dir/splats.splat" "$seed_dir/preview.png" "$corpus/"
  # A degree-3 header with no data as an extra seed.
  printf 'ply\nformat binary_little_endian 1.0\nelement vertex 0\nproperty float x\nend_header\n' > "$corpus/empty.ply"
  # Mesh seeds: the demo's meshes in every format Assimp reads back, small ones first.
  for name in crate.obj crate.mtl snowman.ply snowman.stl snowman.glb snowman.dae snowman.obj; do
    [ -f "$seed_dir/$name" ] && cp "$seed_dir/$name" "$meshes/"
  done
  printf 'ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n' > "$meshes/triangle.ply"
  rm -rf "$seed_dir"
fi

# RSS grows under ASan and libFuzzer bookkeeping (the plain build replaying the corpus stays at
# 26 MB and valgrind finds no leak), so the RSS limit is raised; single allocations stay capped.
ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64}" \
  .build-fuzz/debug/kiln-fuzz "$corpus" -max_total_time="$seconds" -max_len=65536 \
  -rss_limit_mb=6144 -malloc_limit_mb=512 -print_final_stats=1 -artifact_prefix="$scratch/" "$@" || true

# The mesh import path: byte flips, truncations, repeated and inserted spans of the seed meshes,
# each read by `kiln inspect` (which runs Assimp in its isolated child) under a 60 s limit.
mesh_seconds=$(( seconds / 2 ))
python3 - "$kiln" "$meshes" "$scratch/mesh-findings" "$mesh_seconds" <<'EOF'
import os, random, subprocess, sys, time
kiln, seeds, findings, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
files = [os.path.join(seeds, f) for f in sorted(os.listdir(seeds)) if not f.endswith(".mtl")]
rng = random.Random(int(time.time()))
work = os.path.join(findings, "..", "mesh-work")
os.makedirs(work, exist_ok=True)
end, runs, bad = time.time() + budget, 0, 0
while time.time() < end and files:
    seed = rng.choice(files)
    data = bytearray(open(seed, "rb").read())
    for _ in range(rng.randint(1, 8)):
        kind = rng.random()
        if not data:
            break
        i = rng.randrange(len(data))
        if kind < 0.4:
            data[i] ^= 1 << rng.randrange(8)
        elif kind < 0.55:
            del data[i:]
        elif kind < 0.7:
            data[i:i] = data[i:i + rng.randint(1, 64)] * rng.randint(1, 20)
        elif kind < 0.85:
            data[i:i] = rng.choice([b"\n", b" ", b"-1", b"4294967295", b"nan", b"1e30", b"end_header\n", b"\x00" * 8])
        else:
            data[i] = rng.choice(b"0123456789 \n-.e")
    name = os.path.join(work, "mutant" + os.path.splitext(seed)[1])
    open(name, "wb").write(data)
    start = time.time()
    try:
        status = subprocess.run([kiln, "inspect", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60).returncode
    except subprocess.TimeoutExpired:
        status = "timeout"
    runs += 1
    if status == "timeout" or status < 0 or status >= 128:
        bad += 1
        kept = os.path.join(findings, f"{int(time.time())}-{runs}-{status}{os.path.splitext(seed)[1]}")
        open(kept, "wb").write(data)
        print(f"mesh import: status {status} after {time.time() - start:.1f} s on {kept}")
print(f"mesh import: {runs} mutated files, {bad} crashes or hangs of kiln itself (findings in {findings})")
EOF
