#!/usr/bin/env bash
# A refactoring check: fixed-seed `kiln generate` runs whose outputs must stay byte-identical
# while code moves. Record the hashes before a refactoring, compare after every step.
#   tools/refactor_check.sh record HASHES [SCRATCH]    # runs, writes the hashes to HASHES
#   tools/refactor_check.sh compare HASHES [SCRATCH]   # runs, exits 1 when any hash differs
# The runs: a still run, a 4D run (--frames 8), a NeRF, a mesh refinement (colours, and colours
# with offsets) and a reward-aware run (dpo with two rewards), each short (30 steps) and on one
# thread (hashes hold for one thread count and one CPU). KILN_BUILD=path sets the scratch path of
# the release build (default .build); SCRATCH (default a temporary folder) keeps the run folders.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ] || { [ "$1" != record ] && [ "$1" != compare ]; }; then
  echo "usage: tools/refactor_check.sh record|compare HASHES [SCRATCH]" >&2
  exit 2
fi
mode="$1"; hashes="$2"
scratch="${3:-$(mktemp -d)}"
mkdir -p "$scratch"
build="${KILN_BUILD:-.build}"
swift build -c release --scratch-path "$build" --product kiln >&2
kiln="$build/release/kiln"
export KILN_THREADS=1

run() {  # name, then kiln generate's arguments
  local name="$1"; shift
  echo "== $name: kiln generate $*" >&2
  "$kiln" generate "$@" --out "$scratch/$name" --force --seed 7 --preview-every 0 >"$scratch/$name.log" 2>&1 \
    || { echo "$name failed:" >&2; tail -20 "$scratch/$name.log" >&2; exit 1; }
}
run still "a red snowman" --steps 30
run frames "a yellow duck bouncing" --steps 30 --frames 8
run nerf "a blue car" --steps 30 --representation nerf
run refine "a green house" --steps 30 --refine mesh --refine-steps 20
run offsets "a green house" --steps 30 --refine mesh --refine-steps 20 --refine-offsets
run dpo "a red snowman" --steps 30 --method dpo --reward alignment:1,view:0.5

current="$scratch/hashes.txt"
(cd "$scratch" && for f in still/splats.ply still/asset.glb still/score.json \
    frames/splats.ply frames/asset.glb frames/frames/animated.glb frames/frames/splats_007.ply \
    nerf/field.safetensors nerf/asset.glb \
    refine/asset-coarse.glb refine/asset.glb offsets/asset.glb \
    dpo/splats.ply dpo/asset.glb; do
  if [ -f "$f" ]; then sha256sum "$f"; else echo "missing  $f"; fi
done) > "$current"

if [ "$mode" = record ]; then
  cp "$current" "$hashes"
  cat "$hashes"
  echo "recorded $(wc -l < "$hashes") hashes in $hashes" >&2
else
  if diff "$hashes" "$current" >&2; then
    echo "byte-identical: $(wc -l < "$hashes") files" >&2
  else
    echo "outputs changed (left: recorded, right: now); run folders in $scratch" >&2
    exit 1
  fi
fi
