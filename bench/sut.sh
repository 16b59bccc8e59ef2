# Sourced by run.sh and levers.sh: how the benchmark runs this project (the system under test).
#
# The project runs as in production (DEBUG=false, the whole middleware stack, guard,
# session rows, ids, heartbeat) with STREAM_CHAT_SOURCE=synthetic, on a throwaway SQLite
# database migrated first, on loopback.

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$(dirname "$BENCH")"
HARNESS="${HARNESS:-$(cd "$PROJECT/../shared/bench" && pwd)}"
SUT_VENV="${SUT_VENV:-$PROJECT/.venv}"
mkdir -p "$BENCH/results"

DB_DIR="$(mktemp -d /tmp/stream-bench-db.XXXXXX)"
trap 'rm -rf "$DB_DIR"' EXIT

# What the server process sees: production settings except the source and the database.
SUT_ENV=(
  DEBUG=false
  SECRET_KEY=bench-only-not-secret-0123456789abcdefghijklmnopqrstuvwxyz
  ALLOWED_HOSTS=127.0.0.1
  DATABASE_URL="sqlite:///$DB_DIR/bench.sqlite3"
  STREAM_CHAT_SOURCE=synthetic
  REDIS_URL=
  # Every benchmark stream comes from one loopback client and S2 opens up to 3000 at once:
  # the admission limits stay on (and are measured), just above what the harness opens.
  STREAM_MAX_STREAMS=10000
  STREAM_MAX_STREAMS_PER_CLIENT=10000
)
env "${SUT_ENV[@]}" "$SUT_VENV/bin/python" "$PROJECT/manage.py" migrate --noinput -v 0

server_command() {  # server_command daphne|uvicorn [ASGI app]: the project's server on {port}
  local app="${2:-project.asgi:application}"
  case "$1" in
    daphne)
      echo "$SUT_VENV/bin/daphne -e tcp:port={port}:interface=127.0.0.1:backlog=2048 -v 0" \
        "--application-close-timeout 10 $app" ;;
    uvicorn)
      echo "$SUT_VENV/bin/uvicorn --host 127.0.0.1 --port {port} --log-level warning" \
        "--no-access-log --loop uvloop --http httptools $app" ;;
    *) echo "unknown server $1 (daphne or uvicorn)" >&2; return 1 ;;
  esac
}

# Two servers side by side (compare.sh, metrics.sh): each with its own database, on uvicorn.
SUT_PIDS=()
start_sut() {  # start_sut DIR PORT APP LOG: the project at DIR serving APP on PORT, in the background
  local db="$DB_DIR/sut-$2.sqlite3" command
  env "${SUT_ENV[@]}" DATABASE_URL="sqlite:///$db" "$SUT_VENV/bin/python" "$1/manage.py" migrate --noinput -v 0
  command="$(server_command uvicorn "$3")"
  (cd "$1" && exec env "${SUT_ENV[@]}" PYTHONPATH="$1" DATABASE_URL="sqlite:///$db" \
    ${command//\{port\}/$2}) >>"$4" 2>&1 &
  SUT_PIDS+=("$!")
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return 0
    sleep 0.2
  done
  echo "the server at $1 did not answer on port $2 (log: $4)" >&2; return 1
}
stop_suts() {  # stop the servers start_sut started
  for pid in "${SUT_PIDS[@]:-}"; do [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true; done
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
