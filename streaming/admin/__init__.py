"""The streaming app's admin: sessions, and the cancelled sessions with their summary."""

from streaming.admin import sessions as sessions
from streaming.admin import tokens as tokens
