"""Reading an inbox's settings: defaults, limits and sentences that say what to fix."""

from __future__ import annotations

import pytest

from patra_email.settings import EmailPluginSettings, SettingsError, read_settings

BASE = {"from_address": "support@shop.test", "imap_host": "imap.shop.test"}


def test_defaults_come_from_patra_toml_and_the_inbox_can_override_them():
    plugin = EmailPluginSettings(poll_interval_seconds=300, idle_renew_minutes=20)

    inherited = read_settings(BASE, plugin)
    overridden = read_settings({**BASE, "poll_interval_seconds": "30"}, plugin)

    assert inherited.poll_interval_seconds == 300
    assert inherited.idle_renew_minutes == 20
    assert overridden.poll_interval_seconds == 30
    assert inherited.imap_folders == ("INBOX",)
    assert inherited.domain == "shop.test"


def test_folders_are_a_comma_separated_list():
    settings = read_settings({**BASE, "imap_folders": " INBOX , Support/Orders ,"})

    assert settings.imap_folders == ("INBOX", "Support/Orders")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"from_address": ""}, "`from_address` is missing"),
        ({"imap_port": "99999"}, "between 1 and 65535"),
        ({"imap_port": "imap"}, "enter a whole number"),
        ({"smtp_security": "tls"}, "choose one of starttls, ssl, none"),
        ({"imap_security": "none"}, "only allowed for a server on this machine"),
        ({"trusted_certificates": "my cert"}, "not a PEM certificate"),
        ({"verify_certificates": False}, "only allowed for servers on this machine"),
    ],
)
def test_wrong_settings_are_explained(change, message):
    with pytest.raises(SettingsError, match=message):
        read_settings({**BASE, **change})


def test_unencrypted_connections_are_allowed_on_this_machine():
    settings = read_settings(
        {**BASE, "imap_host": "127.0.0.1", "imap_security": "none"}
    )

    assert settings.imap_security == "none"
