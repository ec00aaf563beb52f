"""The web chat channel type: replies are read by the widget, not pushed anywhere."""

from __future__ import annotations

import re

from patra.channels import (
    Capabilities,
    ChannelType,
    OutboundMessage,
    SendResult,
    SettingField,
)

DEFAULT_COLOR = "#2563eb"
DEFAULT_GREETING = "Hi! How can we help?"
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


class WebChatChannel(ChannelType):
    name = "webchat"
    label = "Website chat"
    settings = (
        SettingField(
            "greeting",
            "Greeting",
            default=DEFAULT_GREETING,
            help="The first line visitors read when they open the chat.",
        ),
        SettingField(
            "color",
            "Colour",
            default=DEFAULT_COLOR,
            help="The launcher and header colour as #rrggbb, such as #2563eb.",
        ),
        SettingField(
            "prechat",
            "Ask for name and email before the chat",
            kind="boolean",
            default=False,
        ),
        SettingField(
            "require_email",
            "Require an email address before the chat",
            kind="boolean",
            default=False,
            help="Visitors must leave an address so you can answer after they left.",
        ),
        SettingField(
            "allowed_origins",
            "Sites allowed to embed the chat",
            kind="textarea",
            default="",
            help="One origin per line, such as https://shop.example. "
            "Leave empty to allow any site.",
        ),
    )
    capabilities = Capabilities(media=True)

    async def send(self, message: OutboundMessage) -> SendResult:
        # The reply is already stored; the visitor's widget reads it from there
        # (live over its event stream, or when it catches up after a reconnect).
        return SendResult(external_id=f"webchat-{message.message_id}", status="sent")


def widget_color(settings: dict) -> str:
    """The configured colour when it is a plain hex colour, else the default."""
    color = str(settings.get("color") or "").strip()
    return color if _HEX_COLOR.match(color) else DEFAULT_COLOR


def allowed_origins(settings: dict) -> list[str]:
    """Origins from the inbox settings, normalised; empty means any origin.

    A mistyped line stays in the list and matches nothing, so a typo locks the
    chat down rather than opening it to every site.
    """
    raw = str(settings.get("allowed_origins") or "")
    return [origin.rstrip("/").lower() for origin in re.split(r"[\s,]+", raw) if origin]
