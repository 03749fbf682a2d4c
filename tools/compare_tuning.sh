#!/usr/bin/env bash
# Compares kiln tune-prior's methods on the shipped prior (assets/prior, untuned) at an equal
# sample budget, and prints a table: the training rewards and the held-out judge's before and
# after (each run's model card), the judge's kiln score-prior attributes, and the time spent.
#
#   tools/compare_tuning.sh OUT [EPOCHS] [REWARD]
#
# EPOCHS (default 20) epochs of 4 conditions x 4 samples for ddpo, grpo and dpo; draft draws one
# sample per condition, so it gets 4x the epochs. Runs already finished in OUT are kept (delete
# a run's folder to redo it). KILN names the binary (default: kiln on PATH); TUNE_ARGS adds flags
# to every run (e.g. TUNE_ARGS="--steps 6 --max-steps 14 --denoising-weight 50"); DRAFT_ARGS to
# draft's (default: --learning-rate 1e-5); BASE_PRIOR names another starting prior.
set -euo pipefail
out=${1:?usage: tools/compare_tuning.sh OUT [EPOCHS] [REWARD]}
epochs=${2:-20}
reward=${3:-view:1,alignment:1}
kiln=${KILN:-kiln}
here="$(cd "$(dirname "$0")/.." && pwd)"
judge="$here/assets/judge"
base="${BASE_PRIOR:-$here/assets/prior}"  # the prior every method starts from
mkdir -p "$out"

tune() {  # NAME ARGS...
  local name=$1; shift
  if [ ! -f "$out/$name/README.md" ]; then
    local resume=()
    [ -f "$out/$name/checkpoint/state.json" ] && resume=(--resume)
    local start=$SECONDS
    # shellcheck disable=SC2086  # TUNE_ARGS is a list of flags
    "$kiln" tune-prior --prior "$base" --out "$out/$name" --judge "$judge" --reward "$reward" --conditions 4 "${resume[@]}" "$@" ${TUNE_ARGS:-}
    echo $((SECONDS - start)) > "$out/$name/seconds.txt"
  fi
}
score() {  # NAME PRIOR
  [ -f "$out/$1.scores.json" ] || "$kiln" score-prior --prior "$2" --rewards "$judge" --count 200 --out "$out/$1.scores.json"
}

tune ddpo --method ddpo --epochs "$epochs" --samples-per-condition 4
tune grpo --method grpo --epochs "$epochs" --samples-per-condition 4
tune dpo --method dpo --epochs "$epochs" --samples-per-condition 4
# shellcheck disable=SC2086
tune draft --method draft --epochs $((4 * epochs)) ${DRAFT_ARGS:---learning-rate 1e-5}
score untuned "$base"
for m in ddpo grpo dpo draft; do score "$m" "$out/$m"; done

python3 - "$out" "$reward" <<'PY'
import json, sys, os
out, reward = sys.argv[1], sys.argv[2]
def scores(name):
    s = json.load(open(os.path.join(out, name + ".scores.json")))
    m = s.get("motion") or {}
    return s["azimuth"], s["elevation"], s["kind"], s["mainColor"], s["secondColor"], s["meanQualityLogLikelihood"], m.get("response", float("nan")), m.get("agreement", float("nan"))
print(f"reward {reward}; judge = reward models trained on another data seed (assets/judge)\n")
print("| method | training reward before → after | judge before → after | judge: azimuth | elevation | kind | main colour | second colour | log p(real) | motion response / agreement | time |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
def cells(a):
    return f"{a[0]:.3f} | {a[1]:.3f} | {a[2]:.3f} | {a[3]:.3f} | {a[4]:.3f} | {a[5]:.3f} | {a[6]:.2f} / {a[7]:.2f}"
print(f"| untuned | | | {cells(scores('untuned'))} | |")
for m in ["ddpo", "grpo", "dpo", "draft"]:
    log = json.load(open(os.path.join(out, m, "tuning.json")))
    b = log["before"]
    rows = log["epochs"]
    after = None
    card = open(os.path.join(out, m, "README.md")).read()
    def pair(name):
        for line in card.splitlines():
            if line.startswith(f"| {name} (total) |"):
                cells = [c.strip() for c in line.strip("|").split("|")]
                return f"{cells[1]} → {cells[2]}"
        return "?"
    seconds = int(open(os.path.join(out, m, "seconds.txt")).read()) if os.path.exists(os.path.join(out, m, "seconds.txt")) else sum(r["seconds"] for r in rows)
    s = scores(m)
    print(f"| {m} | {pair('training rewards')} | {pair('held-out judge')} | {cells(s)} | {seconds // 60} min {seconds % 60} s |")
PY
