"""What the widget may do: start a chat, send, and read its own conversation.

Everything a visitor reads passes through :func:`visible_messages`, which only
returns the visitor's own messages and the agents' replies once the channel
sent them: never private notes, event lines, failed or queued replies, nor
anything about agents beyond their display name.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from patra import db, runtime
from patra.channels import InboundAttachment, InboundMessage
from patra.inbox.ingest import ingest_message
from patra.inbox.outbound import AttachmentRefused, Upload, check_upload
from patra.text import clean_text

from patra_webchat import tokens
from patra_webchat.channel import DEFAULT_GREETING, allowed_origins, widget_color
from patra_webchat.settings import current_settings

logger = logging.getLogger(__name__)

VISIBLE_STATUSES = ("sent", "delivered", "read")
PAGE_SIZE = 100
MAX_ID = 2**63 - 1  # PostgreSQL bigint
_CLIENT_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


class ChatUnavailable(LookupError):
    """No web chat inbox with this id is open to visitors."""


class VisitorInputError(ValueError):
    """The visitor sent something we cannot take; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ChatInbox:
    id: int
    workspace_id: int
    settings: dict

    @property
    def origins(self) -> list[str]:
        return allowed_origins(self.settings)


async def chat_inbox(inbox_id: int) -> ChatInbox:
    if not 0 < inbox_id <= MAX_ID:
        raise ChatUnavailable(inbox_id)
    row = await db.fetchrow(
        """SELECT id, workspace_id, settings FROM inbox
           WHERE id = $1 AND channel_type = 'webchat' AND connected""",
        inbox_id,
    )
    if row is None:
        raise ChatUnavailable(inbox_id)
    return ChatInbox(row["id"], row["workspace_id"], row["settings"] or {})


def widget_config(inbox: ChatInbox) -> dict:
    settings = inbox.settings
    return {
        "inbox_id": inbox.id,
        "greeting": clean_text(settings.get("greeting") or DEFAULT_GREETING)[:500],
        "color": widget_color(settings),
        "prechat": bool(settings.get("prechat") or settings.get("require_email")),
        "require_email": bool(settings.get("require_email")),
    }


# --- visitor tokens ---------------------------------------------------------


def start_visitor(
    inbox: ChatInbox, name: str, email: str
) -> tuple[tokens.Visitor, str]:
    """A new visitor of ``inbox`` and the token the widget keeps for them."""
    name = clean_text(name).strip()
    email = clean_text(email).strip()
    if len(name) > 100:
        raise VisitorInputError("Your name may be at most 100 characters long.")
    if email and (len(email) > 254 or not _EMAIL.match(email)):
        raise VisitorInputError(
            "That email address does not look right; check it and try again."
        )
    if inbox.settings.get("require_email") and not email:
        raise VisitorInputError("Leave your email address so we can answer you.")

    visitor = tokens.new_visitor(inbox.id, name, email or None)
    return visitor, tokens.sign(visitor, _secret_keys()[0])


def read_token(inbox: ChatInbox, token: str) -> tokens.Visitor:
    settings = current_settings()
    return tokens.verify(
        token, inbox.id, _secret_keys(), settings.visitor_token_days * 86400
    )


def _secret_keys() -> list[str]:
    server = runtime.current().config.server
    return [server.secret_key, *server.old_secret_keys]


# --- writing ----------------------------------------------------------------


def check_client_key(client_key: object) -> str:
    if not isinstance(client_key, str) or not _CLIENT_KEY.match(client_key):
        raise VisitorInputError(
            "Each message needs an idempotency_key of 8 to 64 letters, digits, "
            "dashes or underscores (a UUID works)."
        )
    return client_key


def check_text(text: object, allow_empty: bool = False) -> str:
    if not isinstance(text, str):
        raise VisitorInputError("The message text must be a string.")
    text = clean_text(text).strip()
    limit = current_settings().max_message_chars
    if len(text) > limit:
        raise VisitorInputError(
            f"Your message is {len(text)} characters long; shorten it to at most "
            f"{limit}, or send it in parts.",
            status=413,
        )
    if not text and not allow_empty:
        raise VisitorInputError("Write a message before sending.")
    return text


def check_file(filename: str, content_type: str, data: bytes) -> InboundAttachment:
    """The upload as an attachment, or :class:`VisitorInputError` naming the problem."""
    name = PurePosixPath(clean_text(filename).replace("\\", "/")).name[:255]
    name = name or "attachment"
    if not data:
        raise VisitorInputError(f"{name} is empty; choose another file.")
    if not _CONTENT_TYPE.match(content_type or ""):
        content_type = "application/octet-stream"

    limit = runtime.current().config.storage.max_upload_mb * 1024 * 1024
    try:
        check_upload(Upload(name, content_type, data))
    except AttachmentRefused as refused:
        raise VisitorInputError(
            str(refused), 413 if len(data) > limit else 415
        ) from None
    return InboundAttachment(filename=name, content_type=content_type, data=data)


async def post_message(
    inbox: ChatInbox,
    visitor: tokens.Visitor,
    client_key: str,
    text: str,
    page_url: str = "",
    attachment: InboundAttachment | None = None,
) -> tuple[dict | None, bool]:
    """Store the visitor's message once per ``client_key``; (message, duplicate)."""
    # Keys are scoped to the visitor so one visitor cannot collide with another's.
    scoped_key = f"webchat:{visitor.visitor_id}:{client_key}"
    metadata = {}
    if page_url:
        metadata["webchat"] = {"page_url": clean_text(page_url)[:500]}
    result = await ingest_message(
        InboundMessage(
            inbox_id=inbox.id,
            contact_external_id=visitor.visitor_id,
            external_id=scoped_key,
            idempotency_key=scoped_key,
            text=text,
            contact_name=visitor.name,
            contact_email=visitor.email,
            attachments=[attachment] if attachment else [],
            metadata=metadata,
        )
    )
    message = await visible_message(visitor, result.message_id)
    if not result.duplicate:
        logger.debug(
            "Web chat message %s stored in inbox %s", result.message_id, inbox.id
        )
    return message, result.duplicate


# --- reading ----------------------------------------------------------------

_VISIBLE_SQL = """
    SELECT m.id, m.direction, m.text, m.created_at, u.name AS agent_name
    FROM contact_identity ci
    JOIN conversation c ON c.contact_id = ci.contact_id AND c.inbox_id = ci.inbox_id
    JOIN message m ON m.conversation_id = c.id
    LEFT JOIN app_user u ON u.id = m.sender_user_id
    WHERE ci.inbox_id = $1 AND ci.external_id = $2
      AND m.kind = 'message'
      AND (m.direction = 'in' OR m.delivery_status = ANY($3::text[]))
"""


async def visible_messages(visitor: tokens.Visitor, since: int = 0) -> dict:
    """The visitor's conversation after message ``since``, oldest first.

    Pages hold at most :data:`PAGE_SIZE` messages; ``more`` says another
    follows (ask again with the last id). ``cursor`` is where the next catch-up
    should start: it stays below any reply still waiting for delivery, so a
    reply that becomes visible later is not skipped by a widget that catches up
    after a reconnect.
    """
    since = min(max(since, 0), MAX_ID)
    rows = await db.fetch(
        _VISIBLE_SQL + " AND m.id > $4 ORDER BY m.id LIMIT $5",
        visitor.inbox_id,
        visitor.visitor_id,
        list(VISIBLE_STATUSES),
        since,
        PAGE_SIZE + 1,
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    cursor = rows[-1]["id"] if rows else since

    first_pending = await db.fetchval(
        """SELECT min(m.id)
           FROM contact_identity ci
           JOIN conversation c
             ON c.contact_id = ci.contact_id AND c.inbox_id = ci.inbox_id
           JOIN message m ON m.conversation_id = c.id
           WHERE ci.inbox_id = $1 AND ci.external_id = $2 AND m.id > $3
             AND m.direction = 'out' AND m.kind = 'message'
             AND m.delivery_status IN ('queued', 'sending')""",
        visitor.inbox_id,
        visitor.visitor_id,
        since,
    )
    if first_pending is not None:
        cursor = min(cursor, first_pending - 1)
    return {
        "messages": await _with_attachments(visitor, rows),
        "cursor": cursor,
        "more": more,
    }


async def visible_message(visitor: tokens.Visitor, message_id: int) -> dict | None:
    rows = await db.fetch(
        _VISIBLE_SQL + " AND m.id = $4",
        visitor.inbox_id,
        visitor.visitor_id,
        list(VISIBLE_STATUSES),
        message_id,
    )
    messages = await _with_attachments(visitor, rows)
    return messages[0] if messages else None


async def _with_attachments(visitor: tokens.Visitor, rows: list[dict]) -> list[dict]:
    attachments: dict[int, list[dict]] = {}
    if rows:
        for row in await db.fetch(
            """SELECT id, message_id, filename, content_type, size FROM attachment
               WHERE message_id = ANY($1::bigint[]) ORDER BY id""",
            [row["id"] for row in rows],
        ):
            attachments.setdefault(row["message_id"], []).append(
                {
                    "id": row["id"],
                    "filename": row["filename"],
                    "content_type": row["content_type"],
                    "size": row["size"],
                    "url": f"/widget/{visitor.inbox_id}/attachments/{row['id']}",
                }
            )
    return [
        {
            "id": row["id"],
            "from": "visitor" if row["direction"] == "in" else "agent",
            "text": row["text"],
            "sender": "" if row["direction"] == "in" else (row["agent_name"] or ""),
            "created_at": row["created_at"].isoformat(),
            "attachments": attachments.get(row["id"], []),
        }
        for row in rows
    ]


async def visitor_attachment(visitor: tokens.Visitor, attachment_id: int) -> dict:
    """An attachment of a message the visitor can see, with its bytes."""
    if not 0 < attachment_id <= MAX_ID:
        raise LookupError(attachment_id)
    row = await db.fetchrow(
        """SELECT a.filename, a.content_type, a.blob_key
           FROM attachment a JOIN message m ON m.id = a.message_id
           JOIN conversation c ON c.id = m.conversation_id
           JOIN contact_identity ci
             ON ci.contact_id = c.contact_id AND ci.inbox_id = c.inbox_id
           WHERE a.id = $1 AND ci.inbox_id = $2 AND ci.external_id = $3
             AND m.kind = 'message'
             AND (m.direction = 'in' OR m.delivery_status = ANY($4::text[]))""",
        attachment_id,
        visitor.inbox_id,
        visitor.visitor_id,
        list(VISIBLE_STATUSES),
    )
    if row is None:
        raise LookupError(attachment_id)
    data = await runtime.current().blobs.open(row["blob_key"])
    return {**row, "data": data}
