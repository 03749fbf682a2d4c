#!/usr/bin/env bash
# Fuzzes Kiln's file readers (3DGS PLY, .splat, PNG) with libFuzzer and AddressSanitizer.
#   tools/fuzz.sh [SECONDS]     default 300; extra libFuzzer flags after the seconds
# Seeds the corpus from a fresh `kiln demo` (splats.ply, splats.splat, preview.png) plus small
# hand-made inputs; crashes are written as crash-* in the current folder.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"; shift || true

swift build --scratch-path .build-fuzz --product kiln-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DKILN_FUZZ 2>&1 | tail -1
swift build --product kiln 2>&1 | tail -1

corpus=fuzz-corpus-readers
mkdir -p "$corpus"
if [ -z "$(ls -A "$corpus")" ]; then
  seed_dir=$(mktemp -d)
  .build/debug/kiln demo --out "$seed_dir" --splats 40 --size 16 >/dev/null
  cp "$seed_dir/splats.ply" "$seed_dir/splats.splat" "$seed_dir/preview.png" "$corpus/"
  # A degree-3 header with no data, and an interlaced-looking PNG signature, as extra seeds.
  printf 'ply\nformat binary_little_endian 1.0\nelement vertex 0\nproperty float x\nend_header\n' > "$corpus/empty.ply"
  rm -rf "$seed_dir"
fi
# RSS grows under ASan and libFuzzer bookkeeping (the plain build replaying the corpus stays at
# 26 MB and valgrind finds no leak), so the RSS limit is raised; single allocations stay capped.
ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64}" \
  .build-fuzz/debug/kiln-fuzz "$corpus" -max_total_time="$seconds" -max_len=65536 \
  -rss_limit_mb=6144 -malloc_limit_mb=512 -print_final_stats=1 "$@"
