#!/usr/bin/env bash
# One scenario of two commits of this project side by side, in interleaved rounds (same run,
# same box):
#
#   bench/compare.sh BEFORE [AFTER]              # AFTER defaults to the work tree
#   SCENARIO=s4 bench/compare.sh BEFORE          # admission: server CPU µs per request
#   SCENARIO=s2 bench/compare.sh BEFORE          # paced events: server CPU µs per event
#   SCENARIO=s3 bench/compare.sh BEFORE          # disconnect -> source cleanup, p99 ms
#
# SCENARIO: s1 (default: 1 stream x 20000 events, events/s), s4 (300 sequential requests,
# server CPU per request), s2 (200 streams x 300 events every 50 ms, server CPU per event:
# long streams, so admission is a small share), s3 (200 clients read 5 events of a 50 ms
# stream and close together; the p99 of the delay until the source has cleaned up).
# BEFORE is checked out in a temporary git worktree; both run as bench/run.sh runs the
# project (sut.sh), on uvicorn, one port each, and the harness's S1 (1 stream x 20000
# events) alternates between them for ROUNDS rounds (7), starting with each in turn.
# Prints each round and the medians, and their ratio. Needs the harness's venv (BENCH_VENV).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sut.sh"

before="${1:?usage: bench/compare.sh BEFORE [AFTER]}"
after="${2:-}"
ROUNDS="${ROUNDS:-7}"
SCENARIO="${SCENARIO:-s1}"
case "$SCENARIO" in
  s1) ARGS=(--scenario s1 --runs 1); METRIC=events_per_s_median; UNIT="events/s" ;;
  s4) ARGS=(--scenario s4 --requests 300); METRIC=server_cpu_us_per_request; UNIT="µs CPU/request" ;;
  s2) ARGS=(--scenario s2 -c 200 --n 300 --delay-ms 50 --ramp-s 2 --timeline-bucket-s 0)
      METRIC=server_cpu_us_per_event; UNIT="µs CPU/event" ;;
  s3) export BENCH_CLEANUP_LOG="$DB_DIR/cleanup.log"  # the servers' sources write it
      ARGS=(--scenario s3 --concurrency 200 --cleanup-log "$BENCH_CLEANUP_LOG")
      METRIC=cleanup_delay_ms.p99; UNIT="ms cleanup p99" ;;
  *) echo "SCENARIO is s1, s2, s3 or s4" >&2; exit 1 ;;
esac
BENCH_VENV="${BENCH_VENV:-/tmp/bench-venv}"
PORTS=(18191 18192)

trees=()
cleanup() {
  stop_suts
  for tree in "${trees[@]:-}"; do [[ -n "$tree" ]] && git -C "$PROJECT" worktree remove --force "$tree"; done
  rm -rf "$DB_DIR"
}
trap cleanup EXIT
checkout() {  # checkout REV: a temporary worktree of REV, printed (runs in a subshell)
  local tree; tree="$(mktemp -d /tmp/stream-bench-tree.XXXXXX)"
  git -C "$PROJECT" worktree add -q --detach "$tree" "$1"
  echo "$tree"
}
dirs=("$(checkout "$before")" "${after:+$(checkout "$after")}")
trees=("${dirs[0]}")  # removed on exit
if [[ -z "$after" ]]; then dirs[1]="$PROJECT"; else trees+=("${dirs[1]}"); fi
labels=("$before" "${after:-work tree}")

for i in 0 1; do start_sut "${dirs[$i]}" "${PORTS[$i]}" project.asgi:application "$DB_DIR/server-$i.log"; done

declare -a rates0 rates1
for ((round = 1; round <= ROUNDS; round++)); do
  order=(0 1); (( round % 2 == 0 )) && order=(1 0)
  for i in "${order[@]}"; do
    rate=$("$BENCH_VENV/bin/python" "$HARNESS/sse_bench.py" \
      --url "http://127.0.0.1:${PORTS[$i]}/api/chat/stream" --server-pid "${SUT_PIDS[$i]}" "${ARGS[@]}" \
      | "$BENCH_VENV/bin/python" -c "import functools,json,sys; m=json.load(sys.stdin)['metrics']; print(round(functools.reduce(lambda d, k: d[k], '$METRIC'.split('.'), m), 2))")
    eval "rates$i+=($rate)"
    echo "round $round  ${labels[$i]}: $rate $UNIT"
  done
done
m0=$(median "${rates0[@]}"); m1=$(median "${rates1[@]}")
echo "$SCENARIO median $UNIT: ${labels[0]} $m0, ${labels[1]} $m1 (ratio $(awk "BEGIN {printf \"%.2f\", $m1/$m0}"))"
