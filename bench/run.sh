#!/usr/bin/env bash
# Benchmark this project side by side with the anchors of the shared SSE harness.
#
#   bench/run.sh                    # full run for each server in SERVERS (~7 min each)
#   QUICK=1 bench/run.sh            # smoke test (~1 min each)
#   SERVERS=uvicorn bench/run.sh    # one server only
#   S5=0 bench/run.sh               # without S5 (bench/s5.sh: 10,000 live streams on
#                                   # uvicorn beside fastapi, ~5 min; QUICK=1: 1,000, ~1 min)
#
# Env knobs: SERVERS ("daphne uvicorn"), ANCHORS (fastapi raw-asgi django-daphne
# django-uvicorn; the project is added), HARNESS (../shared/bench), BENCH_VENV (the
# harness's venv, /tmp/bench-venv), SUT_VENV (the project's venv, .venv; uvicorn needs
# uvicorn[standard] in it), plus every knob of run_anchors.sh (S2_LEVELS, S1_ROUNDS, ...).
# Results: bench/results/<server>-<stamp>.jsonl and .md (one table per run: compare
# ratios within a run, never across runs). See bench/README.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sut.sh"

SERVERS="${SERVERS:-daphne uvicorn}"
ANCHORS_BASE="${ANCHORS:-fastapi raw-asgi django-daphne django-uvicorn}"
suffix=""
[[ "${QUICK:-0}" == 1 ]] && suffix="-quick"

for server in $SERVERS; do
  if [[ ! -x "$SUT_VENV/bin/$server" ]]; then
    echo "== skipping $server: not installed in $SUT_VENV (pip install 'uvicorn[standard]==0.54.0')" >&2
    continue
  fi
  name="project-$server"
  out="$BENCH/results/$server-$(date +%Y%m%d-%H%M%S)$suffix"
  echo "== $name: results in ${out#"$PROJECT"/}.{jsonl,md}" >&2
  SUT_NAME="$name" SUT_DIR="$PROJECT" SUT_CMD="env ${SUT_ENV[*]} $(server_command "$server")" \
    ANCHORS="$ANCHORS_BASE $name" OUT_JSONL="$out.jsonl" RESULTS_MD="$out.md" \
    "$HARNESS/run_anchors.sh"
done

# S5, many concurrent live streams, is not in the shared harness: bench/s5.sh runs it.
if [[ "${S5:-1}" != 0 ]]; then
  "$BENCH/s5.sh"
fi
