#!/usr/bin/env bash
# The distillation objectives compared at equal steps: each of sds, csd, nfsd, ism and vsd, with no
# reward (--method sds) and with reward feedback (the reward method every objective composes with:
# ISM draws no noise for rw-sds or dpo to compare), on a prompt list, by `kiln bench`:
#
#   tools/compare_objectives.sh OUT [PROMPTS] [OBJECTIVES]
#
# PROMPTS defaults to assets/prompts/suite.txt (choose there; check the choice on
# assets/prompts/heldout.txt); OBJECTIVES to "sds csd nfsd ism vsd". Each objective's runs go to
# OUT/<objective>/ (kiln bench resumes per run, so the script can be stopped and run again, or
# split over machines by objective); extra settings for every run come from BASE_CONFIG (a JSON
# file whose "sds" section the objective is added to), the kiln binary from KILN, extra bench
# flags from BENCH_ARGS (e.g. "--steps 300 --prior prior-tuned"). OUT/comparison.md gets, per
# objective × method: mean alignment, kind, Janus (of the runs), speckle (kiln eval's RMS
# colour a one-pixel blur removes inside the object, mean over the runs), mean wall time, and
# speckle and time as a ratio of plain SDS's.
set -euo pipefail
OUT=${1:?usage: tools/compare_objectives.sh OUT [PROMPTS] [OBJECTIVES]}
PROMPTS=${2:-assets/prompts/suite.txt}
OBJECTIVES=${3:-sds csd nfsd ism vsd}
KILN=${KILN:-.build/release/kiln}
BENCH_ARGS=${BENCH_ARGS:-}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
for objective in $OBJECTIVES; do
  config="$OUT/$objective.json"
  "$PYTHON" - "$objective" "${BASE_CONFIG:-}" > "$config" <<'PY'
import json, sys
objective, base = sys.argv[1], sys.argv[2]
config = json.load(open(base)) if base else {}
config.setdefault("sds", {})["objective"] = objective
print(json.dumps(config, indent=2))
PY
  # shellcheck disable=SC2086
  "$KILN" bench "$PROMPTS" --out "$OUT/$objective" --methods sds,reward-feedback --config "$config" $BENCH_ARGS
  "$KILN" bench "$PROMPTS" --out "$OUT/$objective" --merge > /dev/null
done
"$PYTHON" - "$OUT" $OBJECTIVES <<'PY' | tee "$OUT/comparison.md"
import csv, sys
out, objectives = sys.argv[1], sys.argv[2:]
rows = {}
for objective in objectives:
    try:
        with open(f"{out}/{objective}/summary.csv") as f:
            for r in csv.DictReader(f):
                rows.setdefault((objective, r["method"]), []).append(r)
    except FileNotFoundError:
        pass
def mean(rs, key):
    values = [float(r[key]) for r in rs if r[key] not in ("", None)]
    return sum(values) / len(values) if values else float("nan")
base = {m: rows.get(("sds", m)) for m in ("sds", "reward-feedback")}
print("| objective | method | runs | mean alignment | kind | Janus | speckle | speckle / SDS's | mean time (s) | time / SDS's |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for objective in objectives:
    for method in ("sds", "reward-feedback"):
        rs = rows.get((objective, method))
        if not rs:
            continue
        speckle, seconds = mean(rs, "speckle"), mean(rs, "seconds")
        ref = base.get(method)
        ratio = lambda v, key: f"{v / mean(ref, key):.2f}" if ref else "–"
        janus = sum(int(r["janus"]) for r in rs)
        print(f"| {objective} | {method} | {len(rs)} | {mean(rs, 'mean_alignment'):.3f} | {mean(rs, 'kind_accuracy'):.3f} | "
              f"{janus} of {len(rs)} | {speckle:.4f} | {ratio(speckle, 'speckle')} | {seconds:.1f} | {ratio(seconds, 'seconds')} |")
PY
