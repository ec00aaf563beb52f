"""Finding, enabling and checking plugins.

Plugins are modules registered under the ``patra`` entry-point group. The
core's own defaults (local-disk storage, the offline AI provider) are listed
there too and always load; every other plugin loads only when its name is in
``[plugins] enabled``.
"""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass
from importlib.metadata import entry_points

import pluggy

from patra import hookspecs
from patra.channels import ChannelType
from patra.config import Config, ConfigError, validate_section

logger = logging.getLogger(__name__)

DEFAULT_PLUGINS = ("localdisk", "offline_ai")


class PluginError(Exception):
    """A plugin could not be loaded or broke the contract; the message says which."""


@dataclass(frozen=True)
class InstalledPlugin:
    name: str
    module: str
    distribution: str
    version: str
    enabled: bool
    default: bool


def installed_plugins(config: Config | None = None) -> list[InstalledPlugin]:
    enabled = set(config.plugins.enabled) if config else set()
    plugins = []
    for entry in sorted(entry_points(group="patra"), key=lambda e: e.name):
        distribution = entry.dist.name if entry.dist else "?"
        version = entry.dist.version if entry.dist else "?"
        default = entry.name in DEFAULT_PLUGINS
        plugins.append(
            InstalledPlugin(
                name=entry.name,
                module=entry.value,
                distribution=distribution,
                version=version,
                enabled=default or entry.name in enabled,
                default=default,
            )
        )
    return plugins


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus the channel registry and plugin settings."""

    def __init__(self) -> None:
        super().__init__("patra")
        self.add_hookspecs(hookspecs)
        self.channel_types: dict[str, type[ChannelType]] = {}
        self.plugin_settings: dict[str, object] = {}
        if os.environ.get("PATRA_TRACE_HOOKS"):
            self.trace.root.setwriter(logging.getLogger("patra.hooks").debug)
            self.enable_tracing()

    def channel(self, channel_type: str) -> type[ChannelType]:
        try:
            return self.channel_types[channel_type]
        except KeyError:
            raise PluginError(
                f"No enabled plugin provides the channel type {channel_type!r}, so "
                "nothing was sent. Enable that plugin in [plugins] enabled, restart "
                "and send the message again."
            ) from None


def load_plugins(config: Config, extra: list | None = None) -> PluginManager:
    """Load the default and enabled plugins, checking each against the contract.

    ``extra`` modules are registered as if installed (for tests).
    """
    manager = PluginManager()
    available = {entry.name: entry for entry in entry_points(group="patra")}
    unknown = [name for name in config.plugins.enabled if name not in available]
    if unknown:
        names = ", ".join(sorted(available)) or "none"
        raise ConfigError(
            config.source,
            [
                f"`plugins.enabled` names {', '.join(map(repr, unknown))}, which is "
                f"not installed. Installed plugins: {names}."
            ],
        )

    wanted = [*DEFAULT_PLUGINS, *config.plugins.enabled]
    for name in dict.fromkeys(wanted):
        if name not in available:
            continue
        try:
            module = available[name].load()
        except Exception as error:  # noqa: BLE001 - any import failure stops start-up
            raise PluginError(
                f"Plugin {name!r} failed to import ({available[name].value}): "
                f"{type(error).__name__}: {error}"
            ) from error
        _register(manager, module, name)
    for index, module in enumerate(extra or []):
        _register(manager, module, getattr(module, "__name__", f"extra{index}"))

    _collect_channel_types(manager)
    _validate_plugin_settings(manager, config)
    return manager


def _register(manager: PluginManager, module, name: str) -> None:
    try:
        manager.register(module, name=name)
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(
            f"Plugin {name!r} breaks the hook contract: {error}"
        ) from None


def _collect_channel_types(manager: PluginManager) -> None:
    for impl in manager.hook.register_channel_types.get_hookimpls():
        for channel in impl.function() or []:
            hook = f"Plugin {impl.plugin_name!r}, hook register_channel_types"
            if not (inspect.isclass(channel) and issubclass(channel, ChannelType)):
                raise PluginError(f"{hook}: {channel!r} is not a ChannelType subclass.")
            if not channel.name:
                raise PluginError(f"{hook}: {channel.__name__} has no `name`.")
            if channel.send is ChannelType.send:
                raise PluginError(
                    f"{hook}: {channel.__name__} does not implement send."
                )
            if channel.name in manager.channel_types:
                raise PluginError(
                    f"{hook}: channel type {channel.name!r} is already registered."
                )
            manager.channel_types[channel.name] = channel


def _validate_plugin_settings(manager: PluginManager, config: Config) -> None:
    declared = {}
    for impl in manager.hook.plugin_settings_schema.get_hookimpls():
        result = impl.function()
        if result is None:
            continue
        if not (isinstance(result, tuple) and len(result) == 2):
            raise PluginError(
                f"Plugin {impl.plugin_name!r}, hook plugin_settings_schema: return "
                f"(name, dataclass), got {result!r}."
            )
        declared[result[0]] = result[1]

    problems: list[str] = []
    for name, schema in declared.items():
        raw = config.plugins.settings.get(name, {})
        settings = validate_section(schema, raw, f"plugins.{name}.", problems)
        manager.plugin_settings[name] = settings
    for name in config.plugins.settings:
        if name not in declared and name not in DEFAULT_PLUGINS:
            problems.append(
                f"[plugins.{name}] configures a plugin that is not enabled or takes "
                "no settings; add it to `plugins.enabled` or remove the table."
            )
    if problems:
        raise ConfigError(config.source, problems)


async def call_async(hook_caller, **kwargs) -> list:
    """Call a hook and await any awaitable results (the one async convention)."""
    results = []
    for result in hook_caller(**kwargs):
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            results.append(result)
    return results


async def call_each(hook_caller, **kwargs) -> dict[str, object]:
    """Call a hook and return ``{plugin name: result}``, skipping ``None``."""
    results = {}
    for impl in hook_caller.get_hookimpls():
        result = impl.function(**{name: kwargs[name] for name in impl.argnames})
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            results[impl.plugin_name] = result
    return results
