"""`GET /metrics`: the Prometheus metrics, behind STREAM_METRICS_TOKEN when it is set."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from streaming.api.access import CHALLENGE, bearer_matches
from streaming.api.errors import Refusal
from streaming.conf import conf
from streaming.observe import metrics
from streaming.transports.http import ApiView


class MetricsView(ApiView):
    """Serve the metrics in Prometheus' text format (summed over workers if several)."""

    http_method_names = ["get"]

    async def get(self, request: HttpRequest) -> HttpResponse:
        """Return the metrics, or 401 without the configured token."""
        if not bearer_matches(request.headers.get("Authorization", ""), conf.metrics_token):
            return Refusal.BAD_TOKEN.error(CHALLENGE).response()
        return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
