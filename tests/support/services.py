"""External services the tests use: skipped locally when absent, required in CI."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(available: bool, what: str) -> None:
    """Skip the test when `what` is missing here; fail it in CI, which must provide it."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available")


def redis_url() -> str:
    """Return the Redis URL for tests (REDIS_TEST_URL), or skip/fail."""
    url = os.environ.get("REDIS_TEST_URL", "")
    require(bool(url), "Redis (set REDIS_TEST_URL)")
    return url


def postgres_url() -> str:
    """Return the PostgreSQL URL for tests (POSTGRES_TEST_URL), or skip/fail."""
    url = os.environ.get("POSTGRES_TEST_URL", "")
    require(bool(url), "PostgreSQL (set POSTGRES_TEST_URL)")
    return url


def chromium_path() -> str:
    """Return the Chromium executable (CHROMIUM_PATH or Debian's), or skip/fail."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or ""
    require(bool(path), "Chromium (apt-get install chromium)")
    return path


@contextmanager
def postgres_database(prefix: str, admin_url: str | None = None) -> Iterator[str]:
    """Create a PostgreSQL database of its own (named `prefix_…`) on `admin_url`'s server
    (POSTGRES_TEST_URL's by default, skipped or failed as `postgres_url`) and yield its URL;
    drop it afterwards, even from servers still connected."""
    admin_url = admin_url or postgres_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
