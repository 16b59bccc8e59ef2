#!/usr/bin/env bash
# Benchmark this project side by side with the anchors of the shared SSE harness.
#
# The project runs as in production (DEBUG=false, the whole middleware stack, guard,
# session rows, ids, heartbeat) with STREAM_CHAT_SOURCE=synthetic, on a throwaway SQLite
# database migrated first, on loopback, pinned to the harness's server core.
#
#   bench/run.sh                    # full run for each server in SERVERS (~9 min each)
#   QUICK=1 bench/run.sh            # smoke test (~1.5 min each)
#   SERVERS=uvicorn bench/run.sh    # one server only
#
# Env knobs: SERVERS ("daphne uvicorn"), ANCHORS (fastapi raw-asgi django-daphne
# django-uvicorn; the project is added), HARNESS (../shared/bench), BENCH_VENV (the
# harness's venv, /tmp/bench-venv), SUT_VENV (the project's venv, .venv; uvicorn needs
# uvicorn[standard] in it), plus every knob of run_anchors.sh (S2_LEVELS, S1_ROUNDS, ...).
# Results: bench/results/<server>-<stamp>.jsonl and .md (one table per run: compare
# ratios within a run, never across runs).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$(dirname "$BENCH")"
HARNESS="${HARNESS:-$(cd "$PROJECT/../shared/bench" && pwd)}"
SUT_VENV="${SUT_VENV:-$PROJECT/.venv}"
SERVERS="${SERVERS:-daphne uvicorn}"
ANCHORS_BASE="${ANCHORS:-fastapi raw-asgi django-daphne django-uvicorn}"
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

server_command() {  # the project's server, as the Procfile runs it, on the harness's {port}
  case "$1" in
    daphne)
      echo "$SUT_VENV/bin/daphne -e tcp:port={port}:interface=127.0.0.1:backlog=2048 -v 0" \
        "--application-close-timeout 10 project.asgi:application" ;;
    uvicorn)
      echo "$SUT_VENV/bin/uvicorn --host 127.0.0.1 --port {port} --log-level warning" \
        "--no-access-log --lifespan off --loop uvloop --http httptools project.asgi:application" ;;
    *) echo "unknown server $1 (daphne or uvicorn)" >&2; return 1 ;;
  esac
}

for server in $SERVERS; do
  name="project-$server"
  stamp="$(date +%Y%m%d-%H%M%S)"
  suffix=""
  [[ "${QUICK:-0}" == 1 ]] && suffix="-quick"
  echo "== $name: results in bench/results/$server-$stamp$suffix.{jsonl,md}" >&2
  SUT_NAME="$name" \
  SUT_DIR="$PROJECT" \
  SUT_CMD="env ${SUT_ENV[*]} $(server_command "$server")" \
  ANCHORS="$ANCHORS_BASE $name" \
  OUT_JSONL="$BENCH/results/$server-$stamp$suffix.jsonl" \
  RESULTS_MD="$BENCH/results/$server-$stamp$suffix.md" \
    "$HARNESS/run_anchors.sh"
done
