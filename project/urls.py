"""Root URL configuration."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from streaming.pages import LoginView

urlpatterns = [
    path("favicon.ico", RedirectView.as_view(url=static("streaming/favicon.svg"))),
    path("admin/", admin.site.urls),
    # STREAM_AUTH=users: signing in and out of the web client (pages, not the API).
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="/"), name="logout"),
    path("", include("streaming.urls")),
]
