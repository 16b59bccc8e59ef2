#!/usr/bin/env bash
# S1 of two commits of this project side by side, in interleaved rounds (same run, same box):
#
#   bench/compare.sh BEFORE [AFTER]     # AFTER defaults to the work tree
#
# BEFORE is checked out in a temporary git worktree; both run as bench/run.sh runs the
# project (sut.sh), on uvicorn, one port each, and the harness's S1 (1 stream x 20000
# events) alternates between them for ROUNDS rounds (7), starting with each in turn.
# Prints each round and the medians, and their ratio. Needs the harness's venv (BENCH_VENV).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sut.sh"

before="${1:?usage: bench/compare.sh BEFORE [AFTER]}"
after="${2:-}"
ROUNDS="${ROUNDS:-7}"
BENCH_VENV="${BENCH_VENV:-/tmp/bench-venv}"
PORTS=(18191 18192)

trees=()
cleanup() {
  for pid in "${pids[@]:-}"; do [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true; done
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

pids=()
for i in 0 1; do
  db="$DB_DIR/compare-$i.sqlite3"
  env "${SUT_ENV[@]}" DATABASE_URL="sqlite:///$db" "$SUT_VENV/bin/python" "${dirs[$i]}/manage.py" migrate --noinput -v 0
  command="$(server_command uvicorn)"
  (cd "${dirs[$i]}" && exec env "${SUT_ENV[@]}" DATABASE_URL="sqlite:///$db" \
    ${command//\{port\}/${PORTS[$i]}}) &
  pids+=("$!")
done
for port in "${PORTS[@]}"; do
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2
  done
done

declare -a rates0 rates1
for ((round = 1; round <= ROUNDS; round++)); do
  order=(0 1); (( round % 2 == 0 )) && order=(1 0)
  for i in "${order[@]}"; do
    rate=$("$BENCH_VENV/bin/python" "$HARNESS/sse_bench.py" \
      --url "http://127.0.0.1:${PORTS[$i]}/api/chat/stream" --scenario s1 --runs 1 \
      | "$BENCH_VENV/bin/python" -c 'import json,sys; print(round(json.load(sys.stdin)["metrics"]["events_per_s_median"]))')
    eval "rates$i+=($rate)"
    echo "round $round  ${labels[$i]}: $rate events/s"
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m0=$(median "${rates0[@]}"); m1=$(median "${rates1[@]}")
echo "S1 median events/s: ${labels[0]} $m0, ${labels[1]} $m1 (ratio $(awk "BEGIN {printf \"%.2f\", $m1/$m0}"))"
