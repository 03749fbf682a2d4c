#!/usr/bin/env bash
# The user-facing runs with time budgets, timed on this machine with the default prior of the day,
# each next to its budget and (optionally) the previous build's figure from the same commands:
#
#   tools/bench_budgets.sh OUT [PREVIOUS_KILN]
#
# KILN (default: .build/release/kiln) is the build under test; PREVIOUS_KILN, when given, runs the
# same commands first, into OUT/previous. Every run folder keeps its profile.json (where the time
# went); the table goes to stdout and OUT/budgets.md. Run it on a quiet machine: the figures are
# wall times. The kernel budgets have their own benchmarks beside their references
# (kiln-bench splat with tools/bench_splat_torch.py, tools/bench_nerf_torch.py,
# kiln-bench unet with tools/bench_unet_torch.py). Needs bash 4 and GNU time (/usr/bin/time -f),
# as on Debian.
set -euo pipefail
OUT=${1:?usage: tools/bench_budgets.sh OUT [PREVIOUS_KILN]}
PREVIOUS=${2:-}
KILN=${KILN:-.build/release/kiln}
# Extra arguments for every generate (e.g. GENERATE_ARGS="--steps 4" for a smoke test) and eval-views.
GENERATE_ARGS=${GENERATE_ARGS:-}
EVAL_VIEWS_ARGS=${EVAL_VIEWS_ARGS:-}
THREADS=${KILN_THREADS:-2}
export KILN_THREADS=$THREADS
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# name | budget (s) | command arguments (run folder: $DIR)
RUNS=(
  "generate (default)|45|generate 'a red snowman' --out \$DIR"
  "generate --representation nerf|120|generate 'a red snowman' --representation nerf --out \$DIR"
  "generate --frames 8|180|generate 'a yellow duck bouncing' --frames 8 --out \$DIR"
  "eval (16 views)|15|eval \$FIRST --out \$DIR"
  "eval-views (16 views)|120|eval-views \$VIEWS --out \$DIR"
)

# Times every run with one binary into $2; prints "name|budget|seconds|peak MiB" lines.
measure() {
  local kiln=$1 root=$2
  mkdir -p "$root"
  local FIRST="$root/generate-default" VIEWS="$root/views"
  rm -rf "$VIEWS"  # rendered afresh from this sitting's first run
  for entry in "${RUNS[@]}"; do
    IFS='|' read -r name budget args <<<"$entry"
    local slug
    slug=$(echo "$name" | tr -c 'a-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
    local DIR="$root/$slug"
    rm -rf "$DIR"
    if [[ $name == eval-views* && ! -d $VIEWS ]]; then
      # 16 orbit views of the first run's splats, as a multi-view model would give them.
      "$kiln" render "$FIRST/splats.ply" --views 16 --size 64 --elevation 15 --out "$VIEWS" --force > "$root/views.log" 2>&1 \
        || { echo "$name|$budget|failed (no views to judge: see $root/views.log)|"; continue; }
    fi
    # The paths go into the command quoted for eval (printf %q), the replacement itself quoted.
    args=${args//\$DIR/"$(printf %q "$DIR")"}; args=${args//\$FIRST/"$(printf %q "$FIRST")"}; args=${args//\$VIEWS/"$(printf %q "$VIEWS")"}
    local log="$root/$slug.log"
    if [[ $args == generate* ]]; then args+=" $GENERATE_ARGS"; elif [[ $args == eval-views* ]]; then args+=" $EVAL_VIEWS_ARGS"; fi
    local timing="$root/$slug.time"
    eval "/usr/bin/time -f '%e %M' -o $(printf %q "$timing") $(printf %q "$kiln") $args" > "$log" 2>&1 || { echo "$name|$budget|failed (see $log)|"; continue; }
    local seconds="" kib=0
    read -r seconds kib < "$timing" || true
    echo "$name|$budget|$seconds|$(( ${kib:-0} / 1024 ))"
  done
}

declare -A previous=()
if [[ -n $PREVIOUS ]]; then
  while IFS='|' read -r name _ seconds _; do previous[$name]="$seconds"; done < <(measure "$PREVIOUS" "$OUT/previous")
fi
table="| run | budget (s) | previous build (s) | this build (s) | peak memory (MiB) | within budget |\n| --- | ---: | ---: | ---: | ---: | --- |\n"
while IFS='|' read -r name budget seconds mib; do
  within=$(awk -v s="$seconds" -v b="$budget" 'BEGIN { if (s + 0 == s && s <= b) print "yes"; else print "no" }')
  table+="| $name | $budget | ${previous[$name]:-–} | $seconds | $mib | $within |\n"
done < <(measure "$KILN" "$OUT/current")
# The budgets hold for a kind of machine: name the one that measured them, as kiln's own profile
# table ends with it ("on PROCESSOR (VECTOR), N threads on M processors").
machine=$(cat "$OUT/current"/*.log 2>/dev/null | grep -A1 '^total ' | grep -m1 '^on ' || true)
table+="\nMeasured ${machine:-on an unknown machine ($THREADS threads)}.\n"
printf "%b" "$table" | tee "$OUT/budgets.md"
echo "(profiles: $OUT/current/*/profile.json)"
