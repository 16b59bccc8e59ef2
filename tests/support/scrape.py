"""Read a server's `/metrics` as Prometheus would: its text format, parsed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> Samples:
    """Return every sample of `/metrics`: (name, labels) -> value."""
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return parse(response.text)


def parse(text: str) -> Samples:
    """Return the samples of a Prometheus text exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """Return one sample's value, 0 when it is absent (a labelled metric not yet used)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    """Return the sum of a metric's samples over all its labels."""
    return sum(v for (sample, _), v in samples.items() if sample == name)


def deltas(before: Samples, after: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Return how each labelled sample of `name` changed, leaving out those that did not."""
    keys = {labels for (sample, labels) in {*before, *after} if sample == name}
    changed = {
        labels: after.get((name, labels), 0.0) - before.get((name, labels), 0.0) for labels in keys
    }
    return {labels: change for labels, change in changed.items() if change}


async def scrape_until(
    client: httpx.AsyncClient, done: Callable[[Samples], bool], *, within: float = 10.0
) -> Samples:
    """Scrape until `done` holds (another process updates them), or return the last scrape."""
    deadline = time.monotonic() + within
    while True:
        samples = await scrape(client)
        if done(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.02)
