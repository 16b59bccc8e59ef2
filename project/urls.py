"""Root URL configuration."""

from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("favicon.ico", RedirectView.as_view(url=static("streaming/favicon.svg"))),
    path("admin/", admin.site.urls),
    path("", include("streaming.urls")),
]
