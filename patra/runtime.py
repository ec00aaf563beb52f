"""The running instance: configuration, plugins and shared services.

Built once by :func:`start` (from ``patra serve``, ``patra worker`` or a test)
and reached with :func:`current` by services and plugins alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from patra import db
from patra.config import Config, ConfigError
from patra.crypto import SecretBox
from patra.plugins import PluginManager, load_plugins
from patra.storage import BlobStore

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: Config
    plugins: PluginManager
    database_url: str
    blobs: BlobStore
    secrets: SecretBox
    ai: Any
    jobs: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


_current: Runtime | None = None


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("Patra is not started; call patra.runtime.start() first.")
    return _current


def build(config: Config, extra_plugins: list | None = None) -> Runtime:
    """Load plugins, choose the stores and point the database engine at the URL."""
    global _current
    plugins = load_plugins(config, extra_plugins)
    url = db.database_url(config)
    db.configure(url, config.database.pool_size)

    stores: dict[str, BlobStore] = {}
    for contributed in plugins.hook.register_blob_stores(config=config):
        stores.update(contributed or {})
    if config.storage.backend not in stores:
        raise ConfigError(
            config.source,
            [
                f"`storage.backend` = {config.storage.backend!r}: expected one of "
                f"{', '.join(sorted(stores))}."
            ],
        )
    providers: dict[str, Any] = {}
    for contributed in plugins.hook.register_ai_providers(config=config):
        providers.update(contributed or {})
    if config.ai.provider not in providers:
        raise ConfigError(
            config.source,
            [
                f"`ai.provider` = {config.ai.provider!r}: expected one of "
                f"{', '.join(sorted(providers))}."
            ],
        )

    from patra.jobs import build_jobs_app

    runtime = Runtime(
        config=config,
        plugins=plugins,
        database_url=url,
        blobs=stores[config.storage.backend],
        secrets=SecretBox(config.server.secret_key, config.server.old_secret_keys),
        ai=providers[config.ai.provider],
    )
    runtime.jobs = build_jobs_app(runtime)
    _current = runtime
    return runtime
