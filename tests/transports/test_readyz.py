"""`/readyz`: ready until shutdown begins, 503 from then on; `/healthz` is unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from streaming.runs import shutdown
from tests.support.asgi import request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def _restores_shutdown_state() -> Iterator[None]:
    yield
    shutdown._state["in_progress"] = False


async def get(path: str) -> tuple[int, dict[str, str], object]:
    exchange = await request("GET", path)
    body = await exchange.read_all()
    return exchange.status, exchange.headers, json.loads(body)


async def test_a_running_worker_is_ready() -> None:
    status, _, body = await get("/readyz")
    assert (status, body) == (200, {"status": "ready"})


@pytest.mark.usefixtures("_restores_shutdown_state")
async def test_readiness_fails_as_soon_as_shutdown_begins_while_liveness_holds() -> None:
    await shutdown.interrupt_live_runs()  # what SIGTERM and the lifespan's shutdown call first

    status, headers, body = await get("/readyz")
    assert (status, body) == (503, {"status": "shutting_down"})
    assert headers["retry-after"] == "5"
    health_status, _, health = await get("/healthz")
    assert health_status == 200
    assert health["status"] == "ok"  # type: ignore[index]
