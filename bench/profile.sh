#!/usr/bin/env bash
# Where one event and one admission cost the server CPU: py-spy on the project under load.
#
#   bench/profile.sh                 # both profiles below, then fastapi's CPU figures
#   PROFILE=s2 bench/profile.sh      # paced streams only;  PROFILE=s4: admissions only
#
# s2: P_STREAMS streams (200) of P_N events (600) every 50 ms: long streams, so the CPU per
#     event is the hot path's, not admission's (600 events share one admission).
# s4: P_REQUESTS sequential requests (500) of 3 events: almost all admission.
# Each scenario runs twice on the project (uvicorn, production settings as in run.sh): once
# clean (the harness's server CPU per event / per request), once under `py-spy record`
# (100 Hz, --nonblocking, --gil: only the thread holding the GIL, i.e. CPU), summarised by bench/experiments/stacks.py; then once on fastapi,
# clean. Output: bench/results/profile-<stamp>/ (JSON lines, raw stacks, summaries).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/sut.sh"
BENCH_VENV="${BENCH_VENV:-/tmp/bench-venv}"
PY="$BENCH_VENV/bin/python"
PYSPY="${PYSPY:-$BENCH_VENV/bin/py-spy}"
PROFILE="${PROFILE:-s2 s4}"
P_STREAMS="${P_STREAMS:-200}"; P_N="${P_N:-600}"; P_REQUESTS="${P_REQUESTS:-500}"
PORT="${P_PORT:-18160}"
OUT="$BENCH/results/profile-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
LOGS="$(mktemp -d /tmp/profile-logs.XXXXXX)"  # server and client logs (not kept in results)
ulimit -n 20000 2>/dev/null || true

SERVER_PID=""
stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap 'stop_server; rm -rf "$DB_DIR"' EXIT

start_server() {  # start_server project|fastapi
  local cmd dir
  if [[ "$1" == project ]]; then
    dir="$PROJECT"; cmd="env ${SUT_ENV[*]} $(server_command uvicorn)"; cmd="${cmd//\{port\}/$PORT}"
  else
    dir="$HARNESS/anchors"
    cmd="$BENCH_VENV/bin/uvicorn --host 127.0.0.1 --port $PORT --log-level warning --no-access-log app_fastapi:app"
  fi
  (cd "$dir" && exec taskset -c 0 bash -c "exec $cmd") >>"$LOGS/$1.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

client() {  # client SCENARIO LABEL: the harness's client, pinned to CPU 1
  local args=(--scenario "$1")
  case "$1" in
    s2) args+=(-c "$P_STREAMS" --n "$P_N" --delay-ms 50 --ramp-s 2 --timeline-bucket-s 0) ;;
    s4) args+=(--requests "$P_REQUESTS") ;;
  esac
  taskset -c 1 "$PY" "$HARNESS/sse_bench.py" --url "http://127.0.0.1:$PORT/api/chat/stream" \
    "${args[@]}" --server-pid "$SERVER_PID" --label "$2" --out "$OUT/runs.jsonl" >/dev/null 2>>"$LOGS/client.log"
}

for scenario in $PROFILE; do
  echo "== $scenario (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  start_server project
  client "$scenario" "project"
  client "$scenario" "project+py-spy" &
  cpid=$!
  sleep "$([[ $scenario == s2 ]] && echo 5 || echo 2)"
  "$PYSPY" record --pid "$SERVER_PID" --rate 100 --duration 20 --nonblocking --gil --format raw \
    --output "$OUT/$scenario.stacks" >/dev/null 2>&1 || echo "py-spy failed" >&2
  wait "$cpid" || true
  stop_server
  "$PY" "$BENCH/experiments/stacks.py" "$OUT/$scenario.stacks" >"$OUT/$scenario.summary.txt"
  start_server fastapi
  client "$scenario" "fastapi"
  stop_server
done
"$PY" - "$OUT/runs.jsonl" <<'EOF' | tee "$OUT/figures.txt"
import json, re, sys
want = re.compile(r"server_cpu_us|ttfe_ms\.p50|p99|streams_per_core")
def flat(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from flat(v, f"{path}.{k}" if path else k)
    elif isinstance(obj, list) and len(obj) < 8:
        for i, v in enumerate(obj):
            yield from flat(v, f"{path}[{i}]")
    elif want.search(path):
        yield path, obj
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(r.get("label"), r.get("scenario"), dict(flat(r)))
EOF
echo "profiles in ${OUT#"$PROJECT"/}" >&2
