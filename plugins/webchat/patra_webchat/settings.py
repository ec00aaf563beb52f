"""The ``[plugins.webchat]`` table of ``patra.toml``: limits for the public widget."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WebchatPluginSettings:
    # Messages and uploads one visitor may send per minute.
    visitor_messages_per_minute: int = field(
        default=30, metadata={"min": 1, "max": 10000}
    )
    # Writes (new chats, messages, uploads) from one IP address per minute.
    ip_writes_per_minute: int = field(default=120, metadata={"min": 1, "max": 100000})
    # Reads (catch-ups, live streams, downloads) from one IP address per minute.
    ip_reads_per_minute: int = field(default=600, metadata={"min": 1, "max": 100000})
    # New chats (visitor tokens) one IP address may start per hour.
    ip_sessions_per_hour: int = field(default=60, metadata={"min": 1, "max": 100000})
    # How long a visitor keeps their conversation across page visits.
    visitor_token_days: int = field(default=180, metadata={"min": 1, "max": 3650})
    # Longest text a visitor may send in one message, in characters.
    max_message_chars: int = field(default=5000, metadata={"min": 100, "max": 100000})


def current_settings() -> WebchatPluginSettings:
    from patra import runtime

    settings = runtime.current().plugins.plugin_settings.get("webchat")
    return settings or WebchatPluginSettings()
