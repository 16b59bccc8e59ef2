"""`/metrics`: Prometheus' text format, behind STREAM_METRICS_TOKEN when it is set."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.support.asgi import post_json, request
from tests.support.scrape import parse, value

pytestmark = pytest.mark.django_db(transaction=True)


async def metrics(headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    exchange = await request("GET", "/metrics", headers=headers)
    body = (await exchange.read_all()).decode()
    return exchange.status, exchange.headers["content-type"], body


async def test_metrics_are_open_without_a_token_and_parse() -> None:
    status, content_type, body = await metrics()
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert ("deerflow_streams_live", frozenset()) not in parse(body)  # labelled: none yet


@override_settings(STREAM_METRICS_TOKEN="metrics-secret")
async def test_a_metrics_token_is_required_when_set() -> None:
    assert (await metrics())[0] == 401
    assert (await metrics({"Authorization": "Bearer wrong"}))[0] == 401
    status, _, body = await metrics({"Authorization": "Bearer metrics-secret"})
    assert status == 200
    assert "deerflow_streams_ended_total" in body


@override_settings(STREAM_METRICS_TOKEN="metrics-secret", STREAM_API_TOKEN="api-secret")
async def test_the_api_token_does_not_open_the_metrics() -> None:
    assert (await metrics({"Authorization": "Bearer api-secret"}))[0] == 401


async def test_a_refusal_is_counted_by_its_status(use_source) -> None:
    before = parse((await metrics())[2])
    exchange = await post_json("/api/chat/stream", {"messages": "not a list"})
    assert exchange.status == 422
    after = parse((await metrics())[2])
    assert value(after, "deerflow_refusals_total", status="422") == (
        value(before, "deerflow_refusals_total", status="422") + 1
    )
