"""What a channel adapter is: the types plugins implement and exchange with the core.

A plugin returns :class:`ChannelType` subclasses from ``register_channel_types``.
The core creates one instance per inbox of that type and calls it to send, to
receive and to report health. Inbound traffic reaches the core as
:class:`InboundMessage` and :class:`InboundStatus` values through
:mod:`patra.inbox.ingest`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

FieldKind = Literal["text", "password", "number", "boolean", "email", "url", "textarea"]


@dataclass(frozen=True)
class SettingField:
    """One setting of an inbox of this channel, shown in the admin form."""

    name: str
    label: str
    kind: FieldKind = "text"
    required: bool = False
    secret: bool = False  # stored encrypted, never shown again after saving
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class Capabilities:
    media: bool = False
    receipts: bool = False
    edits: bool = False
    templates: bool = False
    typing: bool = False
    reply_window_hours: int | None = None  # None: reply any time
    threads: bool = False  # several open conversations per contact (email)


@dataclass
class InboundAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None


@dataclass
class InboundMessage:
    """A message a customer sent, normalised by the channel adapter."""

    inbox_id: int
    contact_external_id: str
    external_id: str
    text: str = ""
    html: str | None = None
    contact_name: str = ""
    contact_email: str | None = None
    contact_phone: str | None = None
    attachments: list[InboundAttachment] = field(default_factory=list)
    provider_time: datetime | None = None
    subject: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # Threaded channels choose the conversation themselves: an existing id, or
    # a thread key that starts a new conversation when no id matches.
    conversation_id: int | None = None
    thread_key: str | None = None
    # Automatic mail (auto-replies, bulk) never reopens a resolved conversation.
    automatic: bool = False
    idempotency_key: str | None = None


@dataclass
class InboundStatus:
    """A delivery receipt for a message we sent, by its provider id."""

    inbox_id: int
    external_id: str
    status: Literal["sent", "delivered", "read", "failed"]
    error: str | None = None


@dataclass
class OutboundAttachment:
    filename: str
    content_type: str
    size: int
    open: Any  # async callable returning the bytes


@dataclass
class OutboundMessage:
    """An agent's reply handed to :meth:`ChannelType.send`."""

    message_id: int
    conversation_id: int
    idempotency_key: str
    text: str
    html: str | None
    contact_external_id: str
    contact: dict[str, Any]
    conversation: dict[str, Any]
    attachments: list[OutboundAttachment] = field(default_factory=list)
    sender_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SendResult:
    """What a channel reports after sending; ``metadata`` is merged into the
    message's metadata (per-recipient results, for example)."""

    external_id: str | None = None
    status: Literal["sent", "delivered"] = "sent"
    metadata: dict[str, Any] = field(default_factory=dict)


class DeliveryFailure(Exception):
    """Raised by :meth:`ChannelType.send`. ``retryable`` decides what happens next.

    ``reason`` is shown to the agent as written, so make it a sentence that
    names the provider's code and what to do.
    """

    def __init__(self, reason: str, *, retryable: bool, code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code


class RetryableFailure(DeliveryFailure):
    def __init__(self, reason: str, code: str | None = None):
        super().__init__(reason, retryable=True, code=code)


class PermanentFailure(DeliveryFailure):
    def __init__(self, reason: str, code: str | None = None):
        super().__init__(reason, retryable=False, code=code)


@dataclass
class Health:
    ok: bool
    detail: str = ""


@dataclass
class Inbox:
    """An inbox as a channel sees it: its settings with secrets decrypted."""

    id: int
    workspace_id: int
    name: str
    channel_type: str
    settings: dict[str, Any]


class ChannelType:
    """Base class of every channel adapter.

    Subclasses set ``name``, ``label``, ``settings`` and ``capabilities`` and
    implement :meth:`send`. Every method is ``async``.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    settings: ClassVar[tuple[SettingField, ...]] = ()
    capabilities: ClassVar[Capabilities] = Capabilities()
    has_receiver: ClassVar[bool] = False

    def __init__(self, inbox: Inbox, plugin_settings: dict[str, Any] | None = None):
        self.inbox = inbox
        self.plugin_settings = plugin_settings or {}

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send one message; return the provider id or raise DeliveryFailure."""
        raise NotImplementedError

    async def run_receiver(self, stop: asyncio.Event) -> None:
        """Receive until ``stop`` is set (IMAP IDLE, long polling).

        Only called when ``has_receiver`` is true; the core runs at most one
        receiver per inbox across all processes.
        """

    async def health(self) -> Health:
        return Health(ok=True)

    async def test_connection(self) -> list[tuple[str, bool, str]]:
        """Check the account; a list of (server, ok, answer) lines for the admin."""
        return []
