"""What the admin's live panel costs on a large table: render time on SQLite and PostgreSQL.

    .venv/bin/python bench/admin_panel.py                    # SQLite, and PostgreSQL if
    .venv/bin/python bench/admin_panel.py --rows 50000        # POSTGRES_TEST_URL is set

For each database it seeds `--rows` ended sessions plus 200 running ones on four workers
into a fresh database, in two shapes: `spread` (the rows' ends spread evenly over 30 days,
so about 70 in the last hour) and `hour` (every row ended in the last hour: the panel's
worst case, all of them counted and sorted for the percentiles). It then renders the panel
with Django's test client as a signed-in superuser, `--repeat` times after three warm-up
renders, and prints the median and the slowest render, beside the sessions list and the
admin's index page for scale. Each database runs in a child process (settings read
DATABASE_URL once).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "panel": "/admin/streaming/sessionpanel/",
    "list": "/admin/streaming/streamsession/",
    "index": "/admin/",
}


def measure(rows: int, shape: str, repeat: int) -> dict[str, object]:
    """Seed this process's database and time the pages (runs in the child)."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from streaming.models import EndReason, Kind, Status, StreamSession, Transport

    call_command("migrate", verbosity=0)
    now = timezone.now()
    rng = random.Random(15)
    reasons = [EndReason.NONE] * 80 + [EndReason.CLIENT_DISCONNECT] * 10
    reasons += [EndReason.USER_CANCEL] * 6 + [EndReason.TIMEOUT, EndReason.ERROR] * 2
    window = timedelta(hours=1) if shape == "hour" else timedelta(days=30)
    batch: list[StreamSession] = []
    for index in range(rows):
        reason = rng.choice(reasons)
        ended = now - window * rng.random()
        started = ended - timedelta(seconds=rng.lognormvariate(2.5, 1.0))
        batch.append(
            StreamSession(
                kind=Kind.CHAT if index % 5 else Kind.PROSE,
                transport=Transport.SSE if index % 3 else Transport.WEBSOCKET,
                thread_id=f"thread-{index % 997}",
                status=reason.status,
                end_reason=reason,
                started_at=started,
                ended_at=ended,
                heartbeat_at=ended,
                events_sent=40,
                last_event_id=40,
                source="demo",
                worker=f"host-{index % 4}:{1000 + index % 4}",
                first_event_ms=rng.lognormvariate(4.0, 0.8) if reason != EndReason.ERROR else None,
            )
        )
        if len(batch) == 5000:
            StreamSession.objects.bulk_create(batch)
            batch = []
    for index in range(200):
        batch.append(
            StreamSession(
                kind=Kind.CHAT,
                transport=Transport.SSE,
                status=Status.RUNNING,
                started_at=now - timedelta(seconds=index),
                heartbeat_at=now,
                worker=f"host-{index % 4}:{1000 + index % 4}",
            )
        )
    StreamSession.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    user = User.objects.create_superuser("bench", password=uuid.uuid4().hex)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    results: dict[str, object] = {"rows": rows + 200, "shape": shape, "db": connection.vendor}
    for name, path in PAGES.items():
        for _ in range(3):
            assert client.get(path).status_code == 200
        times = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                started_at = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started_at) * 1000)
            assert response.status_code == 200
        results[name] = {
            "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
            "queries": len(queries),
        }
    return results


def child(database_url: str, rows: int, shape: str, repeat: int) -> dict[str, object]:
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "true", "REDIS_URL": ""}
    env["DJANGO_SETTINGS_MODULE"] = "project.settings"
    args = ["--child", "--rows", str(rows), "--shape", shape, "--repeat", str(repeat)]
    done = subprocess.run(
        [sys.executable, __file__, *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def on_postgresql(admin_url: str, rows: int, shape: str, repeat: int) -> dict[str, object]:
    import psycopg

    name = f"bench_panel_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
        return child(url, rows, shape, repeat)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--shape", choices=["spread", "hour"], default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(measure(options.rows, options.shape, options.repeat)))
        return
    postgres = os.environ.get("POSTGRES_TEST_URL", "")
    print("| database | rows | ended in the last hour | page | median ms | slowest ms | queries |")
    print("|---|---|---|---|---|---|---|")
    for shape in [options.shape] if options.shape else ["spread", "hour"]:
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = f"sqlite:///{tmp}/bench.sqlite3"
            runs.append(child(sqlite, options.rows, shape, options.repeat))
        if postgres:
            runs.append(on_postgresql(postgres, options.rows, shape, options.repeat))
        for result in runs:
            hour = "all" if shape == "hour" else "~1/720"
            for page in PAGES:
                timing = result[page]
                assert isinstance(timing, dict)
                print(
                    f"| {result['db']} | {result['rows']} | {hour} | {page} | "
                    f"{timing['median_ms']} | {timing['max_ms']} | {timing['queries']} |"
                )


if __name__ == "__main__":
    main()
