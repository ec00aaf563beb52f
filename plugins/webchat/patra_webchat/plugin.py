"""The hooks through which Patra loads the website chat."""

from __future__ import annotations

from pathlib import Path

from patra.hookspecs import hookimpl

from patra_webchat.channel import WebChatChannel
from patra_webchat.settings import WebchatPluginSettings

HERE = Path(__file__).parent


@hookimpl
def register_channel_types():
    return [WebChatChannel]


@hookimpl
def plugin_settings_schema():
    return ("webchat", WebchatPluginSettings)


@hookimpl
def register_routes():
    from patra_webchat.demo import demo_site
    from patra_webchat.web import widget_router

    return [widget_router, demo_site]


@hookimpl
def register_template_dirs():
    return [HERE / "templates"]


@hookimpl
def register_static_dirs():
    return [("webchat", HERE / "static")]


@hookimpl
def inbox_setup_hints(inbox, public_url):
    if inbox.get("channel_type") != "webchat":
        return None
    from patra_webchat.snippet import setup_hint_html

    return setup_hint_html(public_url, inbox["id"])
