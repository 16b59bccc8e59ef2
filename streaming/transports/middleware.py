"""How Django's middleware runs here: the sync ones in one thread hop, and no hop for CSRF's
view check of an exempt view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.handlers import asgi
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware import csrf


class SyncMiddlewareBoundary:
    """Let the sync middleware outside it run in one thread, not one thread hop each.

    Under ASGI, Django runs each `MiddlewareMixin` middleware in async mode, which sends
    every `process_request` and `process_response` to a thread and back: 13 hops per
    request for the stack in settings (measured 0.93 ms of CPU per stream admitted). A
    sync-only middleware innermost makes Django chain the sync-capable ones outside it in
    sync mode: one hop into the request's thread for all of them, one back to the event loop
    for the view (Django's `async_to_sync`), where async views run as before.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Pass the request on."""
        return self.get_response(request)


class ASGIHandler(asgi.ASGIHandler):
    """Django's ASGI handler, with CSRF's view check run in place for exempt views.

    Under ASGI Django sends every sync `process_view` to the request's thread and back.
    `CsrfViewMiddleware.process_view` returns at once for a view marked `csrf_exempt` (the
    API's views, which check their own way: `api/access.py`), so for those Django's check
    runs on the event loop, without the hop (measured: about 0.3 ms of CPU per stream
    admitted); for every other view it goes to the thread as before (it may read the
    session). `MIDDLEWARE` keeps Django's own classes, so `check --deploy` checks them.
    """

    def adapt_method_mode(  # type: ignore[no-untyped-def]
        self, is_async, method, method_is_async=None, debug=False, name=None
    ):
        """Adapt as Django does; CSRF's view check skips the hop for exempt views."""
        adapted = super().adapt_method_mode(is_async, method, method_is_async, debug, name)
        owner = getattr(method, "__self__", None)
        if adapted is method or not isinstance(owner, csrf.CsrfViewMiddleware):
            return adapted
        if getattr(method, "__name__", "") != "process_view":
            return adapted

        async def process_view(
            request: HttpRequest, callback: Callable[..., object], *args: object
        ) -> HttpResponseBase | None:
            if getattr(callback, "csrf_exempt", False):
                return method(request, callback, *args)  # type: ignore[no-any-return]
            hop: Any = adapted  # sync_to_async(method): to the request's thread
            return await hop(request, callback, *args)  # type: ignore[no-any-return]

        return process_view
