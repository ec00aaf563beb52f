"""The inbound path every channel uses: one transaction per customer message.

Contact by (inbox, external id); the open conversation fetched or created
atomically; the message inserted under a unique (inbox, external id) so a
redelivered event changes nothing; live views told after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from patra import db, events, runtime
from patra.channels import InboundMessage, InboundStatus
from patra.plugins import call_async
from patra.storage import store_bytes
from patra.text import clean_text

logger = logging.getLogger(__name__)


class UnknownInbox(LookupError):
    pass


@dataclass(frozen=True)
class IngestResult:
    message_id: int
    conversation_id: int
    contact_id: int
    duplicate: bool = False
    conversation_created: bool = False


class _Duplicate(Exception):
    def __init__(self, message_id: int, conversation_id: int, contact_id: int):
        self.result = IngestResult(message_id, conversation_id, contact_id, True)


async def ingest_message(inbound: InboundMessage) -> IngestResult:
    """Store one inbound message; a second call with the same ids is a no-op."""
    inbox = await db.fetchrow(
        "SELECT id, workspace_id FROM inbox WHERE id = $1", inbound.inbox_id
    )
    if inbox is None:
        raise UnknownInbox(f"Inbox {inbound.inbox_id} does not exist.")
    existing = await _existing_message(inbound)
    if existing:
        return existing

    blobs = await _store_attachments(inbox["workspace_id"], inbound)
    try:
        async with db.transaction():
            result, message, conversation = await _write(
                inbox["workspace_id"], inbound, blobs
            )
    except _Duplicate as duplicate:
        await _discard(blobs)
        return duplicate.result
    except BaseException:
        await _discard(blobs)
        raise

    await _announce(result, message, conversation)
    return result


async def _existing_message(inbound: InboundMessage) -> IngestResult | None:
    row = await db.fetchrow(
        """SELECT m.id, m.conversation_id, c.contact_id
           FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE m.inbox_id = $1 AND (m.external_id = $2 OR m.idempotency_key = $3)
           LIMIT 1""",
        inbound.inbox_id,
        inbound.external_id,
        inbound.idempotency_key,
    )
    if row is None:
        return None
    return IngestResult(row["id"], row["conversation_id"], row["contact_id"], True)


async def _store_attachments(workspace_id: int, inbound: InboundMessage) -> list:
    store = runtime.current().blobs
    stored = []
    for attachment in inbound.attachments:
        blob = await store_bytes(
            store, workspace_id, attachment.filename, attachment.data
        )
        stored.append((attachment, blob))
    return stored


async def _discard(blobs: list) -> None:
    store = runtime.current().blobs
    for _, blob in blobs:
        await store.delete(blob.key)


async def _write(
    workspace_id: int, inbound: InboundMessage, blobs: list
) -> tuple[IngestResult, dict, dict]:
    """Write the message; the result with the new message and conversation rows."""
    contact_id = await resolve_contact(workspace_id, inbound)
    conversation_id, created = await _conversation_for(
        workspace_id, contact_id, inbound
    )

    # RETURNING * hands the rows to the hooks without reading them again.
    message = await db.fetchrow(
        """INSERT INTO message (workspace_id, inbox_id, conversation_id, direction,
               sender_contact_id, text, html, external_id, idempotency_key,
               provider_time, metadata)
           VALUES ($1, $2, $3, 'in', $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT DO NOTHING
           RETURNING *""",
        workspace_id,
        inbound.inbox_id,
        conversation_id,
        contact_id,
        clean_text(inbound.text),
        clean_text(inbound.html) if inbound.html else None,
        inbound.external_id,
        inbound.idempotency_key,
        inbound.provider_time,
        inbound.metadata,
    )
    if message is None:
        # A concurrent delivery of the same event won; undo this transaction.
        row = await _existing_message(inbound)
        raise _Duplicate(row.message_id, row.conversation_id, row.contact_id)
    message_id = message["id"]

    for attachment, blob in blobs:
        await db.execute(
            """INSERT INTO attachment (workspace_id, message_id, blob_key, filename,
                   content_type, size, sha256, content_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            workspace_id,
            message_id,
            blob.key,
            clean_text(attachment.filename)[:255] or "attachment",
            attachment.content_type or "application/octet-stream",
            blob.size,
            blob.sha256,
            attachment.content_id,
        )

    conversation = await db.fetchrow(
        """UPDATE conversation SET
               last_activity_at = now(), last_inbound_at = now(),
               status = CASE WHEN $2 THEN status ELSE 'open' END,
               snoozed_until = CASE WHEN $2 THEN snoozed_until END
           WHERE id = $1
           RETURNING *""",
        conversation_id,
        inbound.automatic,
    )
    await events.publish(
        "message.created",
        workspace_id,
        inbox_id=inbound.inbox_id,
        conversation_id=conversation_id,
        message_id=message_id,
        direction="in",
    )
    result = IngestResult(message_id, conversation_id, contact_id, False, created)
    return result, message, conversation


async def resolve_contact(workspace_id: int, inbound: InboundMessage) -> int:
    """The contact behind (inbox, external id), created on first sight."""
    known = await db.fetchrow(
        """SELECT ci.contact_id, c.name, c.email, c.phone
           FROM contact_identity ci JOIN contact c ON c.id = ci.contact_id
           WHERE ci.inbox_id = $1 AND ci.external_id = $2""",
        inbound.inbox_id,
        inbound.contact_external_id,
    )
    if known is not None:
        if _fills_a_gap(known, inbound):
            await _fill_contact(known["contact_id"], inbound)
        return known["contact_id"]

    new_contact_id = await db.fetchval(
        """INSERT INTO contact (workspace_id, name, email, phone)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        workspace_id,
        clean_text(inbound.contact_name)[:200],
        inbound.contact_email,
        inbound.contact_phone,
    )
    linked = await db.fetchval(
        """INSERT INTO contact_identity
               (workspace_id, contact_id, inbox_id, external_id)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (inbox_id, external_id) DO NOTHING RETURNING contact_id""",
        workspace_id,
        new_contact_id,
        inbound.inbox_id,
        inbound.contact_external_id,
    )
    if linked is not None:
        return linked

    # Another transaction linked this identity first; use its contact.
    await db.execute("DELETE FROM contact WHERE id = $1", new_contact_id)
    return await db.fetchval(
        "SELECT contact_id FROM contact_identity "
        "WHERE inbox_id = $1 AND external_id = $2",
        inbound.inbox_id,
        inbound.contact_external_id,
    )


def _fills_a_gap(contact: dict, inbound: InboundMessage) -> bool:
    """Whether the message brings a name, email or phone the contact lacks.

    Checked before writing so that a known contact's row is not rewritten on
    every message.
    """
    return bool(
        (not contact["name"] and clean_text(inbound.contact_name)[:200])
        or (contact["email"] is None and inbound.contact_email)
        or (contact["phone"] is None and inbound.contact_phone)
    )


async def _fill_contact(contact_id: int, inbound: InboundMessage) -> None:
    """Complete a contact's name, email and phone where they are still empty."""
    if not (inbound.contact_name or inbound.contact_email or inbound.contact_phone):
        return
    await db.execute(
        """UPDATE contact SET
               name = CASE WHEN name = '' THEN $2 ELSE name END,
               email = coalesce(email, $3),
               phone = coalesce(phone, $4)
           WHERE id = $1 AND (name = '' OR email IS NULL OR phone IS NULL)""",
        contact_id,
        clean_text(inbound.contact_name)[:200],
        inbound.contact_email,
        inbound.contact_phone,
    )


async def _conversation_for(
    workspace_id: int, contact_id: int, inbound: InboundMessage
) -> tuple[int, bool]:
    if inbound.conversation_id is not None:
        found = await db.fetchval(
            "SELECT id FROM conversation WHERE id = $1 AND inbox_id = $2",
            inbound.conversation_id,
            inbound.inbox_id,
        )
        if found is not None:
            return found, False
    if inbound.thread_key is not None:
        return await _create_conversation(workspace_id, contact_id, inbound), True

    while True:
        found = await db.fetchval(
            """SELECT id FROM conversation
               WHERE inbox_id = $1 AND contact_id = $2 AND thread_key IS NULL
                 AND status <> 'resolved'""",
            inbound.inbox_id,
            contact_id,
        )
        if found is not None:
            return found, False
        created = await _create_conversation(workspace_id, contact_id, inbound)
        if created is not None:
            return created, True
        # Lost the race against a concurrent first message: read the winner.


async def _create_conversation(
    workspace_id: int, contact_id: int, inbound: InboundMessage
) -> int | None:
    conversation_id = await db.fetchval(
        """INSERT INTO conversation (workspace_id, inbox_id, contact_id, subject,
               thread_key, last_inbound_at)
           VALUES ($1, $2, $3, $4, $5, now())
           ON CONFLICT (inbox_id, contact_id)
               WHERE status <> 'resolved' AND thread_key IS NULL
           DO NOTHING RETURNING id""",
        workspace_id,
        inbound.inbox_id,
        contact_id,
        clean_text(inbound.subject)[:500],
        inbound.thread_key,
    )
    if conversation_id is not None:
        await events.publish(
            "conversation.created",
            workspace_id,
            inbox_id=inbound.inbox_id,
            conversation_id=conversation_id,
        )
    return conversation_id


async def _announce(result: IngestResult, message: dict, conversation: dict) -> None:
    plugins = runtime.current().plugins
    message.pop("search", None)
    if result.conversation_created:
        await call_async(plugins.hook.conversation_created, conversation=conversation)
    await call_async(
        plugins.hook.message_received, message=message, conversation=conversation
    )


async def record_status(status: InboundStatus) -> bool:
    """Move a sent message's delivery status forward; False when nothing moved."""
    row = await db.fetchrow(
        """UPDATE message SET delivery_status = $3, updated_at = now(),
               error = CASE WHEN $3 = 'failed' THEN $4 ELSE error END
           WHERE inbox_id = $1 AND external_id = $2 AND direction = 'out'
             AND patra_delivery_rank(delivery_status) < patra_delivery_rank($3)
             -- a message the customer read was delivered; a late failure is stale
             AND NOT (delivery_status = 'read' AND $3 = 'failed')
           RETURNING id, workspace_id, conversation_id, inbox_id""",
        status.inbox_id,
        status.external_id,
        status.status,
        status.error,
    )
    if row is None:
        return False
    await events.publish(
        "message.updated",
        row["workspace_id"],
        inbox_id=row["inbox_id"],
        conversation_id=row["conversation_id"],
        message_id=row["id"],
    )
    return True


async def quarantine(
    inbox_id: int | None,
    channel_type: str,
    reason: str,
    payload: bytes,
    headers: dict | None = None,
) -> int:
    """Keep an inbound payload the channel could not understand, for an admin."""
    workspace_id = None
    if inbox_id is not None:
        workspace_id = await db.fetchval(
            "SELECT workspace_id FROM inbox WHERE id = $1", inbox_id
        )
    item_id = await db.fetchval(
        """INSERT INTO quarantine_item (workspace_id, inbox_id, channel_type, reason,
               payload, headers) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        workspace_id,
        inbox_id if workspace_id is not None else None,
        channel_type,
        reason,
        payload,
        headers or {},
    )
    logger.warning(
        "Quarantined an inbound %s payload for inbox %s: %s",
        channel_type,
        inbox_id,
        reason,
    )
    return item_id
