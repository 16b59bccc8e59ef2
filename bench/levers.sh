#!/usr/bin/env bash
# Measure what a lever outside the hot path would buy: each variant of the project runs
# beside the fastapi anchor (ratios within one run), through the shared harness.
#
#   bench/levers.sh                                   # every variant below (~2 min each)
#   VARIANTS="uvicorn uvicorn+fast-path" bench/levers.sh
#
# A variant is <server>[+lever...]; levers (bench/experiments/levers.py, never production):
#   gen0-10k    gc.set_threshold(10000, 20, 20)   lean-mw    only the CORS middleware
#   fast-path   POST /api/chat/stream straight from ASGI (no Django request handler)
# (gc.freeze() after start-up and SQL built once for the session rows, measured here first,
# are in production now.)
# Defaults: S2_LEVELS="200 500", S1_ROUNDS=1. Results: bench/results/levers-<stamp>/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sut.sh"

VARIANTS="${VARIANTS:-uvicorn uvicorn+gen0-10k uvicorn+lean-mw uvicorn+fast-path}"
out="$BENCH/results/levers-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"

for variant in $VARIANTS; do
  IFS=+ read -r server levers <<<"$variant"
  extra=(PYTHONPATH="$PROJECT")
  for lever in ${levers//+/ }; do
    case "$lever" in
      gen0-10k) extra+=(BENCH_EXP_GC_THRESHOLD=10000,20,20) ;;
      lean-mw) extra+=(DJANGO_SETTINGS_MODULE=bench.experiments.lean_settings) ;;
      fast-path) extra+=(BENCH_EXP_FAST_PATH=1) ;;
      *) echo "unknown lever $lever" >&2; exit 1 ;;
    esac
  done
  app="bench.experiments.levers:application"
  echo "== $variant" >&2
  SUT_NAME="$variant" SUT_DIR="$PROJECT" \
    SUT_CMD="env ${SUT_ENV[*]} ${extra[*]} $(server_command "$server" "$app")" \
    ANCHORS="fastapi $variant" S2_LEVELS="${S2_LEVELS:-200 500}" S1_ROUNDS="${S1_ROUNDS:-1}" \
    OUT_JSONL="$out/$variant.jsonl" RESULTS_MD="$out/$variant.md" "$HARNESS/run_anchors.sh"
done
