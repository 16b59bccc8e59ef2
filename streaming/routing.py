"""WebSocket routes of the streaming app, behind the origin check."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.http.request import validate_host
from django.urls import path

from streaming.transports.websocket import StreamConsumer

websocket_urlpatterns = [
    path("ws/stream/", StreamConsumer.as_asgi()),
]


class StreamOriginValidator(OriginValidator):  # type: ignore[misc]
    """Allow the page's own origin (a host in ALLOWED_HOSTS) and ALLOWED_ORIGINS.

    Clients that send no Origin (not browsers) are let through: the origin check guards
    against other web pages driving a visitor's browser, and the token guards the rest.
    """

    def __init__(self, application: Any) -> None:
        super().__init__(application, [])

    def valid_origin(self, parsed_origin: Any) -> bool:
        if parsed_origin is None:
            return True
        origin = f"{parsed_origin.scheme}://{parsed_origin.netloc}"
        if origin in settings.ALLOWED_ORIGINS:
            return True
        return bool(validate_host(parsed_origin.hostname or "", settings.ALLOWED_HOSTS))


def websocket_application() -> Any:
    """Return the WebSocket application: origin check, the session cookie's user, routes."""
    return StreamOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
