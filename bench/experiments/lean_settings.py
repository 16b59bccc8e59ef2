"""Benchmark experiment only: the project's settings with only the CORS middleware."""

from project.settings import *  # noqa: F403

MIDDLEWARE = ["corsheaders.middleware.CorsMiddleware"]
