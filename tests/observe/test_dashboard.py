"""The example Grafana dashboard queries only metrics `/metrics` serves, and all of ours."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.asgi import request

pytestmark = pytest.mark.django_db(transaction=True)

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
METRIC = re.compile(r"\b((?:deerflow|process|python)_[a-z0-9_]+)\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


async def served() -> dict[str, str]:
    """Return every series name a query can use, with the family it belongs to."""
    exchange = await request("GET", "/metrics")
    body = (await exchange.read_all()).decode()
    return {
        family.name + suffix: family.name
        for family in text_string_to_metric_families(body)
        for suffix in SUFFIXES.get(family.type, ("",))
    }


async def test_every_metric_the_dashboard_queries_is_served() -> None:
    names = await served()
    used = {name for expr in queries() for name in METRIC.findall(expr)}

    assert used, "the dashboard queries nothing"
    assert sorted(used - set(names)) == []


async def test_every_metric_of_ours_has_a_panel() -> None:
    names = await served()
    used = {names.get(name) for expr in queries() for name in METRIC.findall(expr)}
    # Without the family's type, the 0.0.4 text parser reads `*_created` as families of their own.
    ours = {
        family
        for family in names.values()
        if family.startswith("deerflow_") and not family.endswith("_created")
    }

    assert len(ours) == 11
    assert sorted(ours - used) == []
