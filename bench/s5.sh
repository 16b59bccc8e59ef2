#!/usr/bin/env bash
# S5: 10,000 concurrent live streams on one uvicorn worker, beside fastapi in the same run.
#
#   bench/s5.sh                         # project on uvicorn, then fastapi (~2.5 min each)
#   S5_TARGETS=project bench/s5.sh      # the project only
#   QUICK=1 bench/s5.sh                 # 1,000 streams, short (smoke test, ~1 min each)
#   S5_TARGETS="project+gc" bench/s5.sh # a lever: gc.set_threshold(S5_GC_THRESHOLD)
#
# Each target is started fresh, pinned to CPU 0 (the client workers to CPU 1, as the shared
# harness does), with `ulimit -n 20000`. The project runs with sut.sh's production settings
# plus STREAM_HEARTBEAT_SECONDS=$S5_HEARTBEAT_S and its admission limits raised just above
# S5_STREAMS. The source is the synthetic one: S5_N events S5_DELAY_MS apart, so every stream
# is live from its admission until S5_N * S5_DELAY_MS later and all of them together after
# the ramp (S5_RAMP_S). fastapi (the harness's deer-flow anchor) sends no heartbeats: its row
# has events and memory but no ping lateness. Results: bench/results/s5-<stamp>.jsonl/.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sut.sh"

if [[ "${QUICK:-0}" == 1 ]]; then
  S5_STREAMS="${S5_STREAMS:-1000}"; S5_RAMP_S="${S5_RAMP_S:-10}"; S5_DELAY_MS="${S5_DELAY_MS:-15000}"
fi
S5_STREAMS="${S5_STREAMS:-10000}"
S5_CLIENTS="${S5_CLIENTS:-4}"
S5_RAMP_S="${S5_RAMP_S:-50}"
S5_N="${S5_N:-2}"
S5_DELAY_MS="${S5_DELAY_MS:-35000}"
S5_HEARTBEAT_S="${S5_HEARTBEAT_S:-5}"
S5_TARGETS="${S5_TARGETS:-project fastapi}"
S5_GC_THRESHOLD="${S5_GC_THRESHOLD:-700,10,10000}"  # project+gc: full collections all but off
BENCH_VENV="${BENCH_VENV:-/tmp/bench-venv}"
SERVER_CPUS="${SERVER_CPUS:-0}"
CLIENT_CPUS="${CLIENT_CPUS:-1}"
PORT="${S5_PORT:-18150}"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="$BENCH/results/s5-$STAMP"
LOGS="$(mktemp -d /tmp/s5-logs.XXXXXX)"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) > S5_STREAMS + 100 )) || { echo "ulimit -n $(ulimit -n) is too low for S5_STREAMS=$S5_STREAMS" >&2; exit 1; }

limit=$((S5_STREAMS + 16))  # the admission limits stay on, just above what S5 opens
S5_ENV=("${SUT_ENV[@]}" STREAM_HEARTBEAT_SECONDS="$S5_HEARTBEAT_S"
  STREAM_MAX_STREAMS="$limit" STREAM_MAX_STREAMS_PER_CLIENT="$limit")

SERVER_PID=""
stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap 'stop_server; rm -rf "$DB_DIR"' EXIT

start_server() {  # start_server NAME: the server on $PORT, its PID in SERVER_PID
  local cmd dir
  case "$1" in
    project) dir="$PROJECT"; cmd="env ${S5_ENV[*]} $(server_command uvicorn)"; cmd="${cmd//\{port\}/$PORT}" ;;
    # A lever, never production: the project with gc.set_threshold($S5_GC_THRESHOLD).
    project+gc) dir="$PROJECT"
                cmd="env ${S5_ENV[*]} PYTHONPATH=$PROJECT BENCH_EXP_GC_THRESHOLD=$S5_GC_THRESHOLD"
                cmd="$cmd $(server_command uvicorn bench.experiments.gc_threshold:application)"
                cmd="${cmd//\{port\}/$PORT}" ;;
    fastapi) dir="$HARNESS/anchors"
             cmd="$BENCH_VENV/bin/uvicorn --host 127.0.0.1 --port $PORT --log-level warning --no-access-log app_fastapi:app" ;;
    *) echo "unknown S5 target $1 (project, project+gc or fastapi)" >&2; return 1 ;;
  esac
  (cd "$dir" && exec taskset -c "$SERVER_CPUS" bash -c "exec $cmd") >>"$LOGS/$1.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$LOGS/$1.log" >&2; return 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not open port $PORT" >&2; return 1
}

load() { awk '{print $1}' /proc/loadavg; }
for target in $S5_TARGETS; do
  echo "== S5 $target: $S5_STREAMS streams over ${S5_RAMP_S}s, $S5_N events ${S5_DELAY_MS}ms apart (load $(load))" >&2
  export BENCH_GC_LOG="$LOGS/gc-$target.log"  # the synthetic sources log GC pauses here
  start_server "$target"
  timeout 600 "$BENCH_VENV/bin/python" "$BENCH/s5.py" --url "http://127.0.0.1:$PORT/api/chat/stream" \
    --server-pid "$SERVER_PID" --streams "$S5_STREAMS" --clients "$S5_CLIENTS" \
    --client-cpus "$CLIENT_CPUS" --ramp-s "$S5_RAMP_S" --n "$S5_N" --delay-ms "$S5_DELAY_MS" \
    --heartbeat-s "$S5_HEARTBEAT_S" --gc-log "$BENCH_GC_LOG" --label "$target$([[ $target == project+gc ]] && echo " $S5_GC_THRESHOLD") (load $(load))" --out "$OUT.jsonl" >&2 || true
  stop_server
  grep -iE "error|traceback" "$LOGS/$target.log" | sort | uniq -c | sort -rn | head -5 >&2 || true
done
"$BENCH_VENV/bin/python" "$BENCH/s5_table.py" "$OUT.jsonl" >"$OUT.md"
cat "$OUT.md"
echo "results: ${OUT#"$PROJECT"/}.{jsonl,md}; server logs in $LOGS" >&2
