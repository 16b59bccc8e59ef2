"""A real browser for end-to-end tests: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright, expect

from tests.support.live import ROOT, LiveServer, daphne, migrate, server_env
from tests.support.services import chromium_path

ARTIFACTS = ROOT / "test-artifacts"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "a-long-test-password-42"
# In the page: follow `url` with a plain EventSource; resolve with every message (and the
# stream's named `error` frame, if any) once the server has closed the stream, or after
# `count` messages.
FOLLOW = """([url, count]) => new Promise((resolve) => {
  const received = [];
  const source = new EventSource(url);
  const done = () => { source.close(); resolve({received, state: source.readyState}); };
  source.onmessage = (event) => {
    received.push({id: event.lastEventId, data: event.data});
    if (count && received.length >= count) done();
  };
  source.addEventListener("message_chunk", (event) => {
    received.push({id: event.lastEventId, data: JSON.parse(event.data).content});
    if (count && received.length >= count) done();
  });
  source.onerror = () => done();  // closed by the server, or refused: no retry wanted
})"""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def launch(playwright: Playwright) -> Browser:
    """Start headless Chromium from the system (skipped locally, required in CI)."""
    return playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )


@contextmanager
def site(tmp: Path, **env: str) -> Iterator[LiveServer]:
    """Run daphne on a fresh database with a superuser in it."""
    server_environment = server_env(tmp, **env)
    migrate(server_environment)
    create_admin = [sys.executable, "manage.py", "createsuperuser", "--noinput"]
    subprocess.run(
        [*create_admin, "--username", ADMIN_USER, "--email", "admin@example.com"],
        cwd=ROOT,
        env={**server_environment, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
        check=True,
        capture_output=True,
    )
    with daphne(server_environment, tmp / "daphne.log") as server:
        yield server


def log_in(page: Page, server: LiveServer) -> None:
    """Log into the admin as the superuser."""
    page.goto(f"{server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("Welcome")


def save_artifacts(page: Page, name: str, servers: list[LiveServer]) -> None:
    """Save a screenshot of `page` and the servers' logs under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", name)
    page.screenshot(path=ARTIFACTS / f"{stem}.png", full_page=True)
    for n, server in enumerate(servers):
        shutil.copyfile(server.log, ARTIFACTS / f"{stem}.server{n}.log")
