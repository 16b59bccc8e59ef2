"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from django.db import connections
from django.test import override_settings

from streaming import records
from tests.support import sources


@pytest.fixture(autouse=True)
def _fast_streams() -> Iterator[None]:
    """Run streams without demo pacing and with no heartbeat unless a test asks."""
    with override_settings(STREAM_DEMO_DELAY_MS=0, STREAM_HEARTBEAT_SECONDS=60):
        yield


@pytest.fixture(scope="session", autouse=True)
def _records_connection_closed_at_the_end(django_db_setup: None) -> Iterator[None]:
    """Close the connections of other threads before the test database is dropped.

    The records thread has one; so has asgiref's thread for sync calls, which the tests'
    own async ORM calls (`aget`, `acount`) use.
    """
    yield
    async_to_sync(records.close_connection)()
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture
def probe() -> sources.Probe:
    """Return a fresh probe for the test sources."""
    return sources.reset_probe()


@pytest.fixture
def use_source(settings: Any) -> Callable[[str], None]:
    """Return a function that selects one of the test sources (tests/support/sources.py)."""

    def use(name: str) -> None:
        path = f"tests.support.sources.{name}"
        settings.STREAM_CHAT_SOURCE = settings.STREAM_PROSE_SOURCE = path

    return use
