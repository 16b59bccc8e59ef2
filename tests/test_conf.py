"""Settings: each default written once, and every place that lists them agrees with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import override_settings

from streaming.conf import Setting, StreamingSettings, conf

ROOT = Path(__file__).resolve().parents[1]
# Django setting name -> the environment variable project/settings.py reads it from.
ENV_NAMES = {"STREAM_ENABLE_MCP": "ENABLE_MCP_SERVER_CONFIGURATION"}


def env_name(setting: Setting[object]) -> str:
    return ENV_NAMES.get(setting.name, setting.name)


def readme_defaults() -> dict[str, str]:
    """Return the configuration table of the README: variable -> its default cell."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Configuration") : text.index("## Sources")]
    defaults = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z_]+)`", cells[0]):
                defaults[name] = cells[1]
    return defaults


def shown(default: object) -> str:
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float):
        return f"`{default:g}`"
    return f"`{default}`"


@pytest.mark.parametrize("setting", StreamingSettings.all(), ids=lambda s: s.name)
def test_the_readme_table_shows_each_default(setting: Setting[object]) -> None:
    cell = readme_defaults()[env_name(setting)]
    if setting.default in ("", 0) and not isinstance(setting.default, bool):
        # Unset, or derived from another setting: the table says which.
        assert not cell.startswith("`"), cell
    else:
        assert cell == shown(setting.default)


@pytest.mark.parametrize("setting", StreamingSettings.all(), ids=lambda s: s.name)
def test_every_setting_is_read_from_the_environment_and_listed(setting: Setting[object]) -> None:
    settings_module = (ROOT / "project" / "settings.py").read_text()
    assert f'"{env_name(setting)}"' in settings_module
    assert f"{env_name(setting)}=" in (ROOT / ".env.example").read_text()


def test_unset_settings_take_the_default() -> None:
    with override_settings(STREAM_TIMEOUT_SECONDS=None, STREAM_ON_DISCONNECT=None):
        assert conf.timeout_seconds == 1800.0
        assert conf.on_disconnect == "cancel"


def test_values_are_cast_to_the_settings_type() -> None:
    with override_settings(STREAM_MAX_STREAMS="12", STREAM_ENABLE_MCP="true"):
        assert conf.max_streams == 12
        assert conf.enable_mcp is True


def test_the_stale_threshold_is_derived_from_the_row_heartbeat_unless_set() -> None:
    with override_settings(STREAM_ROW_HEARTBEAT_SECONDS=4):
        assert conf.stale_after_seconds == 8
    with override_settings(STREAM_ROW_HEARTBEAT_SECONDS=4, STREAM_STALE_AFTER_SECONDS=30):
        assert conf.stale_after_seconds == 30


def test_an_unknown_on_disconnect_never_acts_as_either() -> None:
    with (
        override_settings(STREAM_ON_DISCONNECT="contine"),
        pytest.raises(ValueError, match="not one of"),
    ):
        _ = conf.on_disconnect
