"""Loading and validating ``patra.toml``.

Every section is a dataclass; :func:`load_config` reads the file, applies
environment overrides and checks each value against its type. Problems are
collected and raised together as :class:`ConfigError`, whose message names the
file, the key, the value and what is expected.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ENV_OVERRIDES = {
    "PATRA_HOST": ("server", "host"),
    "PATRA_PORT": ("server", "port"),
    "PATRA_PUBLIC_URL": ("server", "public_url"),
    "PATRA_SECRET_KEY": ("server", "secret_key"),
    "PATRA_DATA_DIR": ("server", "data_dir"),
    "PATRA_DATABASE_URL": ("database", "url"),
    "PATRA_LOG_LEVEL": ("logging", "level"),
}


class ConfigError(Exception):
    """The configuration is invalid; the message lists every problem."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {problem}" for problem in problems]
        super().__init__("\n".join(lines))


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = field(default=8000, metadata={"min": 1, "max": 65535})
    public_url: str = ""
    secret_key: str = ""
    old_secret_keys: list[str] = field(default_factory=list)
    data_dir: str = "data"
    theme: str = "default"
    demo: bool = False
    max_body_mb: int = field(default=30, metadata={"min": 1, "max": 2048})
    trusted_proxies: list[str] = field(default_factory=list)


@dataclass
class DatabaseConfig:
    url: str = ""
    pool_size: int = field(default=10, metadata={"min": 1, "max": 200})


@dataclass
class StorageConfig:
    backend: str = "localdisk"
    path: str = ""
    max_upload_mb: int = field(default=25, metadata={"min": 1, "max": 2048})
    forbidden_extensions: list[str] = field(
        default_factory=lambda: [
            ".exe",
            ".bat",
            ".cmd",
            ".com",
            ".scr",
            ".msi",
            ".js",
            ".vbs",
            ".ps1",
        ]
    )


@dataclass
class PluginsConfig:
    enabled: list[str] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class PrivacyConfig:
    retention_days: int = field(default=0, metadata={"min": 0, "max": 36500})


@dataclass
class AIConfig:
    provider: str = "offline"
    suggestions: bool = True


@dataclass
class JobsConfig:
    concurrency: int = field(default=4, metadata={"min": 1, "max": 64})
    max_attempts: int = field(default=8, metadata={"min": 1, "max": 100})
    run_in_server: bool = True


@dataclass
class LoggingConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    ai: AIConfig = field(default_factory=AIConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: str = "defaults"

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir).expanduser().resolve()

    @property
    def public_url(self) -> str:
        url = self.server.public_url or f"http://{self.server.host}:{self.server.port}"
        return url.rstrip("/")

    @property
    def storage_path(self) -> Path:
        if self.storage.path:
            return Path(self.storage.path).expanduser().resolve()
        return self.data_dir / "files"

    def plugin_settings(self, name: str) -> dict[str, Any]:
        return self.plugins.settings.get(name, {})


def load_config(
    path: str | os.PathLike[str] | None,
    environ: typing.Mapping[str, str] | None = None,
) -> Config:
    """Read ``path`` (or only defaults and environment when None) into a Config."""
    environ = os.environ if environ is None else environ
    source = str(path) if path else "environment"
    raw: dict[str, Any] = {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(source, ["the file does not exist."]) from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(source, [f"is not valid TOML: {error}."]) from None

    for variable, (section, key) in ENV_OVERRIDES.items():
        if environ.get(variable):
            raw.setdefault(section, {})[key] = environ[variable]

    problems: list[str] = []
    config = validate_section(Config, raw, "", problems)
    if problems:
        raise ConfigError(source, problems)
    config.source = source
    return config


def _plugin_sections(raw: dict[str, Any]) -> dict[str, Any]:
    """Split ``[plugins]`` into ``enabled`` and one settings table per plugin."""
    tables = {key: value for key, value in raw.items() if key != "enabled"}
    result: dict[str, Any] = {"settings": tables}
    if "enabled" in raw:
        result["enabled"] = raw["enabled"]
    return result


def validate_section(cls: type, raw: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"`{prefix.rstrip('.')}` must be a table, got {raw!r}.")
        return cls()
    if cls is PluginsConfig:
        raw = _plugin_sections(raw)

    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    for key in raw:
        if key not in known:
            where = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
            problems.append(
                f"unknown key `{prefix}{key}` in {where}; known keys are "
                f"{', '.join(sorted(known))}."
            )

    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        key = f"{prefix}{f.name}"
        expected = hints[f.name]
        if dataclasses.is_dataclass(expected):
            values[f.name] = validate_section(
                expected, raw[f.name], f"{key}.", problems
            )
            continue
        value, problem = _coerce(raw[f.name], expected, f.metadata)
        if problem:
            problems.append(f"`{key}` = {raw[f.name]!r}: expected {problem}.")
        else:
            values[f.name] = value
    return cls(**values)


def _coerce(value: Any, expected: Any, metadata: typing.Mapping[str, Any]):
    """Return (value, None) when ``value`` fits ``expected``, else (None, why)."""
    origin = typing.get_origin(expected)
    if expected is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1"), None
        return (value, None) if isinstance(value, bool) else (None, "true or false")
    if expected is int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return None, _int_expectation(metadata)
        low, high = metadata.get("min"), metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            return None, _int_expectation(metadata)
        return value, None
    if expected is str:
        return (value, None) if isinstance(value, str) else (None, "a string")
    if origin is Literal:
        choices = typing.get_args(expected)
        if value in choices:
            return value, None
        return None, "one of " + ", ".join(repr(choice) for choice in choices)
    if origin is list:
        (item_type,) = typing.get_args(expected)
        if not isinstance(value, list):
            return None, f"a list of {item_type.__name__}"
        if not all(isinstance(item, item_type) for item in value):
            return None, f"a list of {item_type.__name__}"
        return value, None
    if origin is dict:
        return (value, None) if isinstance(value, dict) else (None, "a table")
    return value, None


def _int_expectation(metadata: typing.Mapping[str, Any]) -> str:
    low, high = metadata.get("min"), metadata.get("max")
    if low is not None and high is not None:
        return f"a whole number between {low} and {high}"
    return "a whole number"


def check_secret_key(config: Config) -> None:
    """Refuse to serve without a secret key of reasonable length."""
    key = config.server.secret_key
    if len(key) < 32:
        raise ConfigError(
            config.source,
            [
                "`server.secret_key` must be at least 32 characters; generate one "
                f"with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))' "
                f"(got {len(key)} characters). PATRA_SECRET_KEY overrides it."
            ],
        )


def generate_secret_key() -> str:
    return secrets.token_urlsafe(48)
