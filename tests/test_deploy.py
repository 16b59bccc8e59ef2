"""Production start-up: the deploy checks pass, a missing secret stops start-up clearly."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support.live import procfile_command

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STREAM_", "DJANGO_"))}
    for line in (ROOT / ".env.production").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            base[key] = value
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_passes_with_production_environment() -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_missing_secret_key_stops_start_up_with_a_clear_message() -> None:
    result = manage("check", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "DEBUG=false" in result.stderr


def test_migrations_match_models() -> None:
    result = manage("makemigrations", "--check", "--dry-run", SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stdout + result.stderr


def test_railway_starts_the_procfile_command_the_end_to_end_tests_run() -> None:
    # tests/live.py runs uvicorn with the Procfile's command; Railway must run the same.
    start = tomllib.loads((ROOT / "railway.toml").read_text())["deploy"]["startCommand"]
    shell, flag, script = shlex.split(start)
    assert (shell, flag) == ("/bin/sh", "-c")
    railway = ["$PORT" if arg == "${PORT:-8000}" else arg for arg in shlex.split(script)]
    assert railway == ["exec", *procfile_command()]
