#!/usr/bin/env bash
# What the Prometheus metrics cost: S1 (1 stream x 20000 events) and S4 (time to first
# event) of the work tree with its metrics on and off, side by side, in interleaved rounds
# (same run, same box):
#
#   bench/metrics.sh
#
# "off" is bench/experiments/no_metrics.py: the same application with every metric a no-op.
# Both run as bench/run.sh runs the project (sut.sh), on uvicorn, one port each; ROUNDS (7)
# rounds, starting with each in turn. Needs the harness's venv (BENCH_VENV) and a SUT_VENV
# with this tree's requirements.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sut.sh"

ROUNDS="${ROUNDS:-7}"
BENCH_VENV="${BENCH_VENV:-/tmp/bench-venv}"
PORTS=(18193 18194)
apps=(project.asgi:application bench.experiments.no_metrics:application)
labels=("metrics on" "metrics off")

trap 'stop_suts; rm -rf "$DB_DIR"' EXIT
for i in 0 1; do start_sut "$PROJECT" "${PORTS[$i]}" "${apps[$i]}" "$DB_DIR/server-$i.log"; done

declare -a rates0 rates1 ttfe0 ttfe1
for ((round = 1; round <= ROUNDS; round++)); do
  order=(0 1); (( round % 2 == 0 )) && order=(1 0)
  for i in "${order[@]}"; do
    rate=$("$BENCH_VENV/bin/python" "$HARNESS/sse_bench.py" \
      --url "http://127.0.0.1:${PORTS[$i]}/api/chat/stream" --scenario s1 --runs 1 \
      | "$BENCH_VENV/bin/python" -c 'import json,sys; print(round(json.load(sys.stdin)["metrics"]["events_per_s_median"]))')
    ttfe=$("$BENCH_VENV/bin/python" "$HARNESS/sse_bench.py" \
      --url "http://127.0.0.1:${PORTS[$i]}/api/chat/stream" --scenario s4 --runs 1 \
      | "$BENCH_VENV/bin/python" -c 'import json,sys; m=json.load(sys.stdin)["metrics"]; print(m["ttfe_ms"]["p50"])')
    eval "rates$i+=($rate)"; eval "ttfe$i+=($ttfe)"
    echo "round $round  ${labels[$i]}: S1 $rate events/s, S4 TTFE $ttfe ms"
  done
done
m0=$(median "${rates0[@]}"); m1=$(median "${rates1[@]}")
t0=$(median "${ttfe0[@]}"); t1=$(median "${ttfe1[@]}")
echo "S1 median events/s: ${labels[0]} $m0, ${labels[1]} $m1 (on/off $(awk "BEGIN {printf \"%.3f\", $m0/$m1}"))"
echo "S4 median TTFE ms: ${labels[0]} $t0, ${labels[1]} $t1"
