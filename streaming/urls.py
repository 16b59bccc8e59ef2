"""HTTP routes of the streaming app."""

from __future__ import annotations

from django.urls import path, re_path

from streaming import pages
from streaming.transports import http as views
from streaming.transports import metrics, observers, openapi, sessions

app_name = "streaming"

urlpatterns = [
    path("", pages.IndexView.as_view(), name="index"),
    path("api/chat/stream", views.ChatStreamView.as_view(), name="chat-stream"),
    path("api/prose/generate", views.ProseStreamView.as_view(), name="prose-generate"),
    path("api/config", views.ConfigView.as_view(), name="config"),
    path("api/openapi.json", openapi.OpenAPIView.as_view(), name="openapi"),
    path("api/sessions/<uuid:session_id>", sessions.SessionDetailView.as_view(), name="session"),
    path(
        "api/sessions/<uuid:session_id>/stream",
        views.SessionStreamView.as_view(),
        name="session-stream",
    ),
    path(
        "api/sessions/<uuid:session_id>/cancel",
        sessions.SessionCancelView.as_view(),
        name="session-cancel",
    ),
    path(
        "api/sessions/<uuid:session_id>/observer-link",
        observers.ObserverLinkView.as_view(),
        name="session-observer-link",
    ),
    path(
        "api/sessions/<uuid:session_id>/observe",
        observers.SessionObserveView.as_view(),
        name="session-observe",
    ),
    path(
        "api/threads/<str:thread_id>/sessions",
        sessions.ThreadSessionsView.as_view(),
        name="thread-sessions",
    ),
    path("healthz", views.HealthView.as_view(), name="healthz"),
    path("readyz", views.ReadyView.as_view(), name="readyz"),
    path("metrics", metrics.MetricsView.as_view(), name="metrics"),
    re_path(r"^api/", views.ApiNotFoundView.as_view(), name="api-not-found"),
]
