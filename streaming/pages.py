"""The web client's page: served from the API's own origin, so it needs no CORS."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from streaming.conf import conf
from streaming.models import EndReason

# Only the page's own scripts, styles and connections (WebSocket included): even markup
# that slipped into the page could neither run nor load anything.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# The admin URL of a session, with this id where the real one goes (the page fills it in).
ID_PLACEHOLDER = uuid.UUID(int=0)


class LoginView(auth_views.LoginView):
    """`/login/`: sign in (STREAM_AUTH=users), on a page styled like the client."""

    template_name = "streaming/login.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer with the client's Content-Security-Policy."""
        response = super().dispatch(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response


class IndexView(View):
    """`GET /`: the web client (plain HTML, CSS and JS modules; no build step)."""

    async def get(self, request: HttpRequest) -> HttpResponseBase:
        """Render the page (signed in, in `users` mode), with the admin link for staff."""
        user = await request.auser()
        mode = conf.access_mode
        if mode == "users" and not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        admin_url = ""
        if user.is_active and user.is_staff:
            admin_url = reverse("admin:streaming_streamsession_change", args=[ID_PLACEHOLDER])
        config = {
            "adminSessionUrl": admin_url,
            "idPlaceholder": str(ID_PLACEHOLDER),
            "tokenRequired": mode == "token",
            "auth": mode,
            # users mode: who is signed in, and what the page's unsafe requests must send.
            "user": user.get_username() if mode == "users" and user.is_authenticated else "",
            "csrfToken": get_token(request) if mode == "users" else "",
            "loginUrl": reverse("login"),
            "logoutUrl": reverse("logout"),
            "endReasons": {reason.value: str(reason.label) for reason in EndReason},
        }
        response = render(request, "streaming/index.html", {"client_config": config})
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
