"""Loading plugins: errors that name the plugin and the hook."""

import re
import types
from pathlib import Path

import pytest

from patra import hookspecs
from patra.channels import ChannelType
from patra.config import Config
from patra.hookspecs import hookimpl
from patra.plugins import PluginError, load_plugins


def test_default_plugins_load_without_configuration():
    manager = load_plugins(Config())
    names = {name for name, _ in manager.list_name_plugin()}
    assert {"localdisk", "offline_ai"} <= names


def test_a_hook_with_unknown_arguments_names_plugin_and_hook():
    bad = types.ModuleType("bad_plugin")

    @hookimpl
    def message_received(message, conversation, surprise):
        return None

    bad.message_received = message_received
    with pytest.raises(PluginError) as caught:
        load_plugins(Config(), extra=[bad])
    assert "bad_plugin" in str(caught.value)
    assert "message_received" in str(caught.value)


def test_a_channel_without_send_is_refused_with_the_plugin_name():
    class Broken(ChannelType):
        name = "broken"

    plugin = types.ModuleType("broken_channel_plugin")
    plugin.register_channel_types = hookimpl(lambda: [Broken])
    with pytest.raises(
        PluginError, match="broken_channel_plugin.*register_channel_types"
    ):
        load_plugins(Config(), extra=[plugin])


def test_unknown_plugin_settings_table_is_an_error():
    config = Config()
    config.plugins.settings = {"nosuch": {"a": 1}}
    with pytest.raises(Exception, match=r"\[plugins.nosuch\]"):
        load_plugins(config)


def test_every_hook_is_documented():
    """docs/plugins/hooks.md has a section for every hookspec."""
    docs = (Path(__file__).parents[1] / "docs" / "plugins" / "hooks.md").read_text()
    documented = set(re.findall(r"^### `?(\w+)", docs, flags=re.MULTILINE))
    hooks = {
        name
        for name in dir(hookspecs)
        if hasattr(getattr(hookspecs, name), "patra_spec")
    }
    assert hooks, "no hookspecs found"
    missing = hooks - documented
    assert not missing, f"hooks without a section in docs/plugins/hooks.md: {missing}"
