"""ASGI entry point: HTTP through Django; WebSocket through Channels."""

from __future__ import annotations

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup(set_prefix=False)  # as get_asgi_application() does, for our handler:

from streaming.transports.middleware import ASGIHandler  # noqa: E402

django_asgi_app = ASGIHandler()

# Importing the routes needs the apps loaded.
from channels.routing import ProtocolTypeRouter  # noqa: E402

from streaming.observe.tracing import traced  # noqa: E402
from streaming.routing import websocket_application  # noqa: E402
from streaming.runs.shutdown import install_daphne_hook, lifespan  # noqa: E402
from streaming.transports.backpressure import bound_sends  # noqa: E402
from streaming.transports.handoff import serve_bodies  # noqa: E402

# Sends to a client that stops reading wait at most STREAM_SEND_TIMEOUT_SECONDS; event
# streams are sent after Django's handler has finished (no OS thread per live stream).
application = ProtocolTypeRouter(
    {
        "http": traced(bound_sends(serve_bodies(django_asgi_app))),
        "websocket": traced(bound_sends(websocket_application())),
        "lifespan": lifespan,
    }
)

# SIGTERM ends live streams as `interrupted/server_shutdown` (uvicorn: through `lifespan`).
install_daphne_hook()

# Everything loaded so far lives as long as the process: keep it out of the collector's
# full passes, which otherwise pause every live stream (measured: 80-110 ms at 200 streams,
# 27 ms frozen; bench/README.md).
gc.collect()
gc.freeze()
