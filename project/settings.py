"""Settings: the only module that reads the environment (see .env.example)."""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Lets classes such as ModelAdmin take type parameters at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG=false the server needs a secret key: "
            'generate one with `python -c "import secrets; print(secrets.token_urlsafe(50))"` '
            "and set it in the environment."
        )
    SECRET_KEY = "django-insecure-local-development-only"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Railway's health checker calls /healthz with this Host header.
ALLOWED_HOSTS.append("healthcheck.railway.app")

# Origins of web clients allowed to call the API (CORS) and open WebSockets, as in deer-flow.
ALLOWED_ORIGINS = env.list("ALLOWED_ORIGINS", default=["http://localhost:3000"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    # Before the admin, so that its admin/base_site.html (the favicon) extends the admin's.
    "streaming",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "servestatic",
    "corsheaders",
    "channels",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the client's static files; async-only, so streams stay async.
    "servestatic.middleware.ServeStaticMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost: the middleware above run in one thread hop, not one each (see its doc).
    "streaming.transports.middleware.SyncMiddlewareBoundary",
]

ROOT_URLCONF = "project.urls"
# STREAM_AUTH=users: the client's sign-in page, and where signing in and out lead.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets the admin read while streams write; IMMEDIATE avoids lock upgrades.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request runs its ORM calls in a thread of its own, so persistent
    # connections would pile up, one per finished request (Django ticket #33497). A pool
    # bounds them: Django returns the connection to the pool at the end of each request.
    # Stream records use one long-lived connection of their own (streaming/records.py).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# CORS for deer-flow's web client, served from another origin.
CORS_ALLOWED_ORIGINS = ALLOWED_ORIGINS
CORS_URLS_REGEX = r"^/(api/|healthz|readyz).*$"
CORS_ALLOW_CREDENTIALS = True
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "cache-control",
    "content-type",
    "last-event-id",
    "user-agent",
    "x-csrftoken",
    "x-requested-with",
)
CORS_EXPOSE_HEADERS = ["X-Stream-Session-Id"]

# Behind Railway's (or any) TLS-terminating proxy.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)

# The streaming app's settings, where the environment sets them; unset (None) means the
# app's default (streaming/conf.py, which documents each one).
STREAM_TIMEOUT_SECONDS = env.float("STREAM_TIMEOUT_SECONDS", default=None)
STREAM_IDLE_TIMEOUT_SECONDS = env.float("STREAM_IDLE_TIMEOUT_SECONDS", default=None)
STREAM_HEARTBEAT_SECONDS = env.float("STREAM_HEARTBEAT_SECONDS", default=None)
STREAM_ROW_HEARTBEAT_SECONDS = env.float("STREAM_ROW_HEARTBEAT_SECONDS", default=None)
STREAM_STALE_AFTER_SECONDS = env.float("STREAM_STALE_AFTER_SECONDS", default=None)
STREAM_ON_DISCONNECT = env.str("STREAM_ON_DISCONNECT", default=None)
STREAM_MULTITASK_STRATEGY = env.str("STREAM_MULTITASK_STRATEGY", default=None)
STREAM_CHAT_SOURCE = env.str("STREAM_CHAT_SOURCE", default=None)
STREAM_PROSE_SOURCE = env.str("STREAM_PROSE_SOURCE", default=None)
STREAM_DEMO_DELAY_MS = env.int("STREAM_DEMO_DELAY_MS", default=None)
STREAM_AUTH = env.str("STREAM_AUTH", default=None)
STREAM_API_TOKEN = env.str("STREAM_API_TOKEN", default=None)
STREAM_OBSERVER_LINK_SECONDS = env.float("STREAM_OBSERVER_LINK_SECONDS", default=None)
STREAM_METRICS_TOKEN = env.str("STREAM_METRICS_TOKEN", default=None)
# OpenTelemetry's own variable; the SDK reads the other OTEL_* itself (README).
OTEL_TRACES_EXPORTER = env.str("OTEL_TRACES_EXPORTER", default=None)
STREAM_LOG_MAX_EVENTS = env.int("STREAM_LOG_MAX_EVENTS", default=None)
STREAM_LOG_MAX_BYTES = env.int("STREAM_LOG_MAX_BYTES", default=None)
STREAM_SEND_TIMEOUT_SECONDS = env.float("STREAM_SEND_TIMEOUT_SECONDS", default=None)
STREAM_LOG_TTL_SECONDS = env.float("STREAM_LOG_TTL_SECONDS", default=None)
STREAM_LOG_RETAIN = env.int("STREAM_LOG_RETAIN", default=None)
STREAM_MAX_STREAMS = env.int("STREAM_MAX_STREAMS", default=None)
STREAM_MAX_STREAMS_PER_CLIENT = env.int("STREAM_MAX_STREAMS_PER_CLIENT", default=None)
STREAM_RETRY_AFTER_SECONDS = env.int("STREAM_RETRY_AFTER_SECONDS", default=None)
STREAM_CANCEL_GRACE_SECONDS = env.float("STREAM_CANCEL_GRACE_SECONDS", default=None)
STREAM_WEBHOOK_URL = env.str("STREAM_WEBHOOK_URL", default=None)
STREAM_WEBHOOK_ALLOWED_HOSTS = env.str("STREAM_WEBHOOK_ALLOWED_HOSTS", default=None)
STREAM_WEBHOOK_SECRET = env.str("STREAM_WEBHOOK_SECRET", default=None)
STREAM_WEBHOOK_ATTEMPTS = env.int("STREAM_WEBHOOK_ATTEMPTS", default=None)
STREAM_WEBHOOK_TIMEOUT_SECONDS = env.float("STREAM_WEBHOOK_TIMEOUT_SECONDS", default=None)
STREAM_MAX_BODY_BYTES = env.int("STREAM_MAX_BODY_BYTES", default=None)
STREAM_ENABLE_MCP = env.bool("ENABLE_MCP_SERVER_CONFIGURATION", default=None)

# Real sources (openai, langgraph); see README.
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default=None)
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default=None)
LLM_MODEL = env.str("LLM_MODEL", default=None)
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=None)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=None)
# Retired (STREAM_IDLE_TIMEOUT_SECONDS took its place): read only so a check can say so.
STREAM_UPSTREAM_IDLE_SECONDS = env.str("STREAM_UPSTREAM_IDLE_SECONDS", default=None)
STREAM_OPENAI_AGENT = env.str("STREAM_OPENAI_AGENT", default=None)
STREAM_CHAT_GRAPH = env.str("STREAM_CHAT_GRAPH", default=None)
STREAM_PROSE_GRAPH = env.str("STREAM_PROSE_GRAPH", default=None)
LANGGRAPH_CHECKPOINTER = env.str("LANGGRAPH_CHECKPOINTER", default=None)
AGENT_RECURSION_LIMIT = env.int("AGENT_RECURSION_LIMIT", default=None)

# LOG_FORMAT=json: one JSON object per line. Either way, each line logged while a stream
# runs carries its session id, thread id and kind (streaming/observe/context.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"stream": {"()": "streaming.observe.context.StreamContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "streaming.observe.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["stream"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # uvicorn's own lines (start, access, errors) in the same format, once the app loads.
        **{
            name: {"handlers": ["console"], "level": "INFO", "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            if LOG_FORMAT == "json"
        },
    },
}
