"""A contact's data on request: export, erasure, and retention of old conversations.

Export gathers everything Patra and its plugins hold on a contact into one
JSON-serialisable document. Erasure deletes the contact with their
conversations, messages and files in one transaction (plugins take part
through ``erase_contact_data``), and leaves an audit entry without personal
data. Retention deletes conversations whose last activity is older than
``[privacy] retention_days``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from patra import db, events, runtime
from patra.accounts.service import audit
from patra.plugins import call_async, call_each

logger = logging.getLogger(__name__)


class ContactNotFound(LookupError):
    pass


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items() if key != "search"}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, (bytes, memoryview)):
        return None
    return value


async def export_contact(
    workspace_id: int, contact_id: int, actor_id: int | None
) -> dict:
    """Everything held on a contact: profile, identities, conversations, messages."""
    contact = await db.fetchrow(
        "SELECT * FROM contact WHERE id = $1 AND workspace_id = $2",
        contact_id,
        workspace_id,
    )
    if contact is None:
        raise ContactNotFound(f"Contact {contact_id} does not exist.")
    identities = await db.fetch(
        """SELECT ci.external_id, i.name AS inbox, i.channel_type
           FROM contact_identity ci JOIN inbox i ON i.id = ci.inbox_id
           WHERE ci.contact_id = $1 ORDER BY ci.id""",
        contact_id,
    )
    conversations = await db.fetch(
        """SELECT id, inbox_id, status, subject, created_at, last_activity_at
           FROM conversation WHERE contact_id = $1 ORDER BY id""",
        contact_id,
    )
    for conversation in conversations:
        conversation["messages"] = await db.fetch(
            """SELECT id, direction, text, created_at, delivery_status
               FROM message WHERE conversation_id = $1 AND kind = 'message'
               ORDER BY id""",
            conversation["id"],
        )
        conversation["attachments"] = await db.fetch(
            """SELECT a.filename, a.content_type, a.size, a.sha256, a.message_id
               FROM attachment a JOIN message m ON m.id = a.message_id
               WHERE m.conversation_id = $1 ORDER BY a.id""",
            conversation["id"],
        )

    plugin_data = await call_each(
        runtime.current().plugins.hook.export_contact_data,
        workspace_id=workspace_id,
        contact_id=contact_id,
    )

    await audit(workspace_id, actor_id, "contact.exported", "contact", contact_id)
    return _jsonable(
        {
            "contact": contact,
            "identities": identities,
            "conversations": conversations,
            "plugins": plugin_data,
        }
    )


async def erase_contact(
    workspace_id: int, contact_id: int, actor_id: int | None
) -> int:
    """Delete a contact with their conversations and files; return messages erased."""
    plugins = runtime.current().plugins
    blobs = runtime.current().blobs
    async with db.transaction():
        found = await db.fetchval(
            "SELECT id FROM contact WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
            contact_id,
            workspace_id,
        )
        if found is None:
            raise ContactNotFound(f"Contact {contact_id} does not exist.")
        keys = await db.fetch(
            """SELECT a.blob_key FROM attachment a JOIN message m ON m.id = a.message_id
               JOIN conversation c ON c.id = m.conversation_id
               WHERE c.contact_id = $1""",
            contact_id,
        )
        conversations = await db.fetch(
            "SELECT id, inbox_id FROM conversation WHERE contact_id = $1", contact_id
        )
        erased = await db.fetchval(
            """SELECT count(*) FROM message m JOIN conversation c
               ON c.id = m.conversation_id WHERE c.contact_id = $1""",
            contact_id,
        )
        await call_async(
            plugins.hook.erase_contact_data,
            workspace_id=workspace_id,
            contact_id=contact_id,
        )
        await db.execute("DELETE FROM contact WHERE id = $1", contact_id)
        await audit(
            workspace_id,
            actor_id,
            "contact.erased",
            "contact",
            contact_id,
            {"messages": erased, "conversations": len(conversations)},
        )
        for conversation in conversations:
            await events.publish(
                "conversation.deleted",
                workspace_id,
                inbox_id=conversation["inbox_id"],
                conversation_id=conversation["id"],
            )
    for row in keys:
        await blobs.delete(row["blob_key"])
    await call_async(
        plugins.hook.contact_erased, workspace_id=workspace_id, contact_id=contact_id
    )
    logger.info("Erased contact %s (%s messages)", contact_id, erased)
    return erased


async def apply_retention(retention_days: int) -> int:
    """Delete conversations idle for longer than ``retention_days``; 0 keeps all."""
    if retention_days <= 0:
        return 0
    blobs = runtime.current().blobs
    async with db.transaction():
        keys = await db.fetch(
            """SELECT a.blob_key FROM attachment a JOIN message m ON m.id = a.message_id
               JOIN conversation c ON c.id = m.conversation_id
               WHERE c.last_activity_at < now() - make_interval(days => $1)""",
            retention_days,
        )
        deleted = await db.fetch(
            """DELETE FROM conversation
               WHERE last_activity_at < now() - make_interval(days => $1)
               RETURNING id, workspace_id""",
            retention_days,
        )
        # Contacts left with no conversation at all have nothing to keep them.
        await db.execute(
            """DELETE FROM contact ct WHERE NOT EXISTS (
                   SELECT 1 FROM conversation c WHERE c.contact_id = ct.id)
               AND ct.updated_at < now() - make_interval(days => $1)""",
            retention_days,
        )
        for workspace_id in {row["workspace_id"] for row in deleted}:
            count = sum(1 for row in deleted if row["workspace_id"] == workspace_id)
            await audit(
                workspace_id,
                None,
                "retention.applied",
                "conversation",
                "",
                {"conversations": count, "retention_days": retention_days},
            )
    for row in keys:
        await blobs.delete(row["blob_key"])
    if deleted:
        logger.info("Retention removed %s conversations", len(deleted))
    return len(deleted)
