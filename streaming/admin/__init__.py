"""The streaming app's admin: sessions, the cancelled ones with their summary, a live panel."""

from streaming.admin import panel as panel
from streaming.admin import sessions as sessions
from streaming.admin import tokens as tokens
