"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from tests import sources


@pytest.fixture(autouse=True)
def _fast_streams() -> Iterator[None]:
    """Run streams without demo pacing and with no heartbeat unless a test asks."""
    with override_settings(STREAM_DEMO_DELAY_MS=0, STREAM_HEARTBEAT_SECONDS=60):
        yield


@pytest.fixture
def probe() -> sources.Probe:
    """Return a fresh probe for the test sources."""
    return sources.reset_probe()


def use_source(name: str) -> override_settings:
    """Select one of the test sources for chat and prose."""
    path = f"tests.sources.{name}"
    return override_settings(STREAM_CHAT_SOURCE=path, STREAM_PROSE_SOURCE=path)
