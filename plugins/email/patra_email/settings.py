"""An email inbox's settings, read from what the admin form stored."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class SettingsError(ValueError):
    """A setting is missing or wrong; the message says which and what to do."""


@dataclass(frozen=True)
class EmailPluginSettings:
    """``[plugins.email]`` in patra.toml: defaults for every email inbox."""

    poll_interval_seconds: int = field(default=60, metadata={"min": 10, "max": 86400})
    idle_renew_minutes: int = field(default=25, metadata={"min": 1, "max": 29})


@dataclass(frozen=True)
class EmailSettings:
    from_address: str
    from_name: str = ""
    reply_to: str = ""
    signature: str = ""
    imap_host: str = ""
    imap_port: int = 993
    imap_security: str = "ssl"
    imap_user: str = ""
    imap_password: str = ""
    imap_folders: tuple[str, ...] = ("INBOX",)
    read_existing_mail: bool = True
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_user: str = ""
    smtp_password: str = ""
    trusted_certificates: str = ""
    verify_certificates: bool = True
    poll_interval_seconds: int = 60
    idle_renew_minutes: int = 25

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2] or "localhost"


def _number(raw: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(
            f"`{key}` is {value!r}; enter a whole number between {low} and {high}."
        ) from None
    if not low <= number <= high:
        raise SettingsError(
            f"`{key}` is {number}; enter a whole number between {low} and {high}."
        )
    return number


def _security(
    raw: dict[str, Any], key: str, host: str, allowed: tuple[str, ...]
) -> str:
    value = str(raw.get(key) or allowed[0]).strip().lower()
    if value not in allowed:
        raise SettingsError(
            f"`{key}` is {value!r}; choose one of {', '.join(allowed)}."
        )
    if value == "none" and host and host not in LOCAL_HOSTS:
        raise SettingsError(
            f"`{key}` is none, which sends the password unencrypted; it is only "
            f"allowed for a server on this machine, not {host}. Choose "
            f"{' or '.join(item for item in allowed if item != 'none')}."
        )
    return value


def _flag(raw: dict[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key)
    if value in (None, ""):
        return default
    return value in (True, "true", "on", "1", 1, "yes")


def _trusted_certificates(raw: dict[str, Any]) -> str:
    """PEM certificates to trust besides the system's; checked before saving."""
    pem = str(raw.get("trusted_certificates") or "").strip()
    if not pem:
        return ""
    try:
        ssl.create_default_context().load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise SettingsError(
            "`trusted_certificates` is not a PEM certificate; paste the server's "
            "certificate including the -----BEGIN CERTIFICATE----- and "
            "-----END CERTIFICATE----- lines."
        ) from None
    return pem


def _verify_certificates(raw: dict[str, Any], hosts: tuple[str, ...]) -> bool:
    """Skipping verification is only allowed when both servers are local."""
    verify = _flag(raw, "verify_certificates", True)
    remote = [host for host in hosts if host and host not in LOCAL_HOSTS]
    if not verify and remote:
        raise SettingsError(
            "`verify_certificates` is off, which would accept any server "
            "pretending to be yours; it is only allowed for servers on this "
            f"machine, not {remote[0]}. Turn it on, and paste a self-signed "
            "certificate into `trusted_certificates` instead."
        )
    return verify


def read_settings(raw: dict[str, Any], plugin: Any = None) -> EmailSettings:
    """Validate an inbox's settings; ``plugin`` holds the patra.toml defaults."""
    defaults = plugin if isinstance(plugin, EmailPluginSettings) else None
    if isinstance(plugin, dict):
        defaults = EmailPluginSettings(**plugin)
    defaults = defaults or EmailPluginSettings()

    from_address = str(raw.get("from_address") or "").strip()
    if "@" not in from_address:
        raise SettingsError(
            "`from_address` is missing; enter the address customers write to, "
            "such as support@example.com."
        )
    imap_host = str(raw.get("imap_host") or "").strip()
    smtp_host = str(raw.get("smtp_host") or "").strip()
    folders = tuple(
        folder.strip()
        for folder in str(raw.get("imap_folders") or "INBOX").split(",")
        if folder.strip()
    )
    return EmailSettings(
        from_address=from_address,
        from_name=str(raw.get("from_name") or "").strip(),
        reply_to=str(raw.get("reply_to") or "").strip(),
        signature=str(raw.get("signature") or ""),
        imap_host=imap_host,
        imap_port=_number(raw, "imap_port", 993, 1, 65535),
        imap_security=_security(
            raw, "imap_security", imap_host, ("ssl", "starttls", "none")
        ),
        imap_user=str(raw.get("imap_user") or "").strip(),
        imap_password=str(raw.get("imap_password") or ""),
        imap_folders=folders or ("INBOX",),
        read_existing_mail=_flag(raw, "read_existing_mail", True),
        smtp_host=smtp_host,
        smtp_port=_number(raw, "smtp_port", 587, 1, 65535),
        smtp_security=_security(
            raw, "smtp_security", smtp_host, ("starttls", "ssl", "none")
        ),
        smtp_user=str(raw.get("smtp_user") or "").strip(),
        smtp_password=str(raw.get("smtp_password") or ""),
        trusted_certificates=_trusted_certificates(raw),
        verify_certificates=_verify_certificates(raw, (imap_host, smtp_host)),
        poll_interval_seconds=_number(
            raw, "poll_interval_seconds", defaults.poll_interval_seconds, 10, 86400
        ),
        idle_renew_minutes=min(max(defaults.idle_renew_minutes, 1), 29),
    )
