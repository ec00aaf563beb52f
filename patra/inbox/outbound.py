"""The outbound path: the message row is the outbox.

An agent's reply is inserted as ``queued`` and its delivery job is deferred in
the same transaction (procrastinate's defer function is plain SQL, so it runs
on our connection). The job claims the message with one UPDATE, calls the
channel's ``send`` and records the outcome. A message is claimed at most once
per attempt and never sent again after the channel accepted it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from patra import db, events, runtime
from patra.channels import (
    DeliveryFailure,
    Inbox,
    OutboundAttachment,
    OutboundMessage,
    PermanentFailure,
)
from patra.plugins import PluginError, call_async
from patra.storage import store_bytes
from patra.text import clean_text

logger = logging.getLogger(__name__)

DELIVER_TASK = "patra.deliver_message"
MAX_TEXT_LENGTH = 20_000


class AttachmentRefused(ValueError):
    """An upload was too large or of a forbidden type; the message says which."""


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


def check_upload(upload: Upload) -> None:
    """Refuse uploads over the size limit or with a forbidden extension."""
    config = runtime.current().config
    limit = config.storage.max_upload_mb * 1024 * 1024
    if len(upload.data) > limit:
        raise AttachmentRefused(
            f"{upload.filename} is {len(upload.data) // 1024} KB; files may be at "
            f"most {config.storage.max_upload_mb} MB."
        )
    # Windows ignores trailing dots and spaces: "a.exe. " runs as "a.exe".
    lowered = upload.filename.lower().rstrip(". ")
    for extension in config.storage.forbidden_extensions:
        if lowered.endswith(extension.lower()):
            raise AttachmentRefused(
                f"{upload.filename}: {extension} files are not accepted; send it "
                "inside a zip archive or as another type."
            )


async def create_agent_message(
    *,
    workspace_id: int,
    conversation_id: int,
    user_id: int | None,
    text: str,
    kind: str = "message",
    uploads: list[Upload] | None = None,
    idempotency_key: str | None = None,
    metadata: dict | None = None,
) -> int:
    """Store a reply (queued for delivery) or a private note; return its id.

    ``metadata`` reaches the channel as ``OutboundMessage.metadata`` (the email
    channel reads ``cc`` and ``automatic`` from it).
    """
    uploads = uploads or []
    for upload in uploads:
        check_upload(upload)
    if kind not in ("message", "note"):
        raise ValueError(f"Unknown kind {kind!r}: send a message or a note.")
    text = clean_text(text).strip()
    if not text and not uploads:
        raise ValueError("Write a message or attach a file before sending.")
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(
            f"The message has {len(text):,} characters; shorten it to at most "
            f"{MAX_TEXT_LENGTH:,} or attach the text as a file."
        )

    conversation = await db.fetchrow(
        "SELECT id, inbox_id FROM conversation WHERE id = $1 AND workspace_id = $2",
        conversation_id,
        workspace_id,
    )
    if conversation is None:
        raise LookupError(f"Conversation {conversation_id} does not exist.")
    if idempotency_key:
        existing = await db.fetchval(
            "SELECT id FROM message WHERE inbox_id = $1 AND idempotency_key = $2",
            conversation["inbox_id"],
            idempotency_key,
        )
        if existing:
            return existing

    store = runtime.current().blobs
    blobs = [
        (upload, await store_bytes(store, workspace_id, upload.filename, upload.data))
        for upload in uploads
    ]
    try:
        return await _insert_agent_message(
            workspace_id,
            conversation,
            user_id,
            text,
            kind,
            blobs,
            idempotency_key,
            metadata,
        )
    except BaseException:
        # No row points at the stored files: remove them again.
        for _, blob in blobs:
            await store.delete(blob.key)
        raise


async def _insert_agent_message(
    workspace_id: int,
    conversation: dict,
    user_id: int | None,
    text: str,
    kind: str,
    blobs: list,
    idempotency_key: str | None,
    metadata: dict | None,
) -> int:
    """The message row, its attachments and its delivery job, in one transaction."""
    is_reply = kind == "message"
    conversation_id = conversation["id"]
    async with db.transaction():
        message_id = await db.fetchval(
            """INSERT INTO message (workspace_id, inbox_id, conversation_id, direction,
                   kind, sender_user_id, text, idempotency_key, delivery_status,
                   metadata)
               VALUES ($1, $2, $3, 'out', $4, $5, $6, $7, $8, $9) RETURNING id""",
            workspace_id,
            conversation["inbox_id"],
            conversation_id,
            kind,
            user_id,
            text,
            idempotency_key or secrets.token_hex(16),
            "queued" if is_reply else "received",
            metadata or {},
        )
        for upload, blob in blobs:
            await db.execute(
                """INSERT INTO attachment (workspace_id, message_id, blob_key,
                       filename, content_type, size, sha256)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                workspace_id,
                message_id,
                blob.key,
                clean_text(upload.filename)[:255] or "attachment",
                upload.content_type or "application/octet-stream",
                blob.size,
                blob.sha256,
            )
        await db.execute(
            "UPDATE conversation SET last_activity_at = now() WHERE id = $1",
            conversation_id,
        )
        if is_reply:
            await defer_delivery(message_id)
        await events.publish(
            "message.created",
            workspace_id,
            inbox_id=conversation["inbox_id"],
            conversation_id=conversation_id,
            message_id=message_id,
            direction="out",
        )
    return message_id


async def defer_delivery(message_id: int) -> None:
    """Queue the delivery job inside the caller's transaction."""
    await db.execute(
        """SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
               'outbound', $1, 0, NULL, $2, $3::jsonb, NULL
           )::procrastinate_job_to_defer_v1])""",
        DELIVER_TASK,
        f"deliver-{message_id}",
        {"message_id": message_id},  # the jsonb codec encodes it
    )


async def deliver(message_id: int, attempt: int, max_attempts: int) -> str:
    """Send a queued message through its channel; return the resulting status.

    Raises :class:`DeliveryFailure` (retryable) to ask the job queue for another
    attempt with backoff; every other outcome is recorded on the message.
    """
    claimed = await db.fetchrow(
        """UPDATE message SET delivery_status = 'sending', attempts = attempts + 1,
               updated_at = now()
           WHERE id = $1 AND delivery_status = 'queued' RETURNING *""",
        message_id,
    )
    if claimed is None:
        logger.info("Message %s is no longer queued; nothing to send", message_id)
        return "skipped"

    try:
        channel, outbound = await _prepare(claimed)
    except PluginError as error:
        # Nothing was sent: the channel's plugin is not enabled on this server.
        await _record_failure(claimed, PermanentFailure(str(error)), True, attempt + 1)
        return "failed"

    try:
        result = await channel.send(outbound)
    except DeliveryFailure as failure:
        final = not failure.retryable or attempt + 1 >= max_attempts
        await _record_failure(claimed, failure, final, attempt + 1)
        if final:
            return "failed"
        raise
    except Exception as error:  # noqa: BLE001 - a plugin bug must not leave it sending
        logger.exception(
            "Channel %s raised while sending message %s",
            claimed["inbox_id"],
            message_id,
        )
        unknown = DeliveryFailure(
            f"The channel failed unexpectedly ({type(error).__name__}); it may or may "
            "not have sent this message. Check before sending it again.",
            retryable=False,
        )
        await _record_failure(claimed, unknown, True, attempt + 1)
        return "failed"

    await db.execute(
        """UPDATE message SET delivery_status = $2, external_id = coalesce($3,
               external_id), error = NULL, updated_at = now(),
               metadata = metadata || $4::jsonb
           WHERE id = $1""",
        message_id,
        result.status,
        result.external_id,
        result.metadata,
    )
    await _publish_update(claimed)
    logger.info("Message %s sent through inbox %s", message_id, claimed["inbox_id"])
    sent = await db.fetchrow(
        "SELECT id, conversation_id, inbox_id, external_id, delivery_status "
        "FROM message WHERE id = $1",
        message_id,
    )
    await call_async(runtime.current().plugins.hook.message_sent, message=sent)
    return result.status


async def _record_failure(
    message, failure: DeliveryFailure, final: bool, attempts: int
):
    if final:
        reason = failure.reason
        if failure.retryable:
            reason = f"Gave up after {attempts} attempts. Last error: {failure.reason}"
        await db.execute(
            "UPDATE message SET delivery_status = 'failed', error = $2, "
            "updated_at = now() WHERE id = $1",
            message["id"],
            reason,
        )
        logger.warning(
            "Message %s failed permanently through inbox %s (code %s)",
            message["id"],
            message["inbox_id"],
            failure.code,
        )
    else:
        await db.execute(
            "UPDATE message SET delivery_status = 'queued', error = $2, "
            "updated_at = now() WHERE id = $1",
            message["id"],
            f"Retrying: {failure.reason}",
        )
        logger.info(
            "Message %s: retryable failure (code %s), retry scheduled",
            message["id"],
            failure.code,
        )
    await _publish_update(message)


async def _publish_update(message) -> None:
    async with db.transaction():
        await events.publish(
            "message.updated",
            message["workspace_id"],
            inbox_id=message["inbox_id"],
            conversation_id=message["conversation_id"],
            message_id=message["id"],
        )


async def channel_for_inbox(inbox_id: int):
    """An instance of the inbox's channel type, with its secrets decrypted."""
    current = runtime.current()
    row = await db.fetchrow("SELECT * FROM inbox WHERE id = $1", inbox_id)
    channel_class = current.plugins.channel(row["channel_type"])
    settings = {**row["settings"], **current.secrets.open(row["secrets"])}
    inbox = Inbox(
        id=row["id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        channel_type=row["channel_type"],
        settings=settings,
    )
    plugin_settings = current.plugins.plugin_settings.get(channel_class.name)
    return channel_class(inbox, plugin_settings)


async def _prepare(message) -> tuple:
    conversation = await db.fetchrow(
        "SELECT * FROM conversation WHERE id = $1", message["conversation_id"]
    )
    contact = await db.fetchrow(
        "SELECT id, name, email, phone, attributes FROM contact WHERE id = $1",
        conversation["contact_id"],
    )
    external_id = await db.fetchval(
        "SELECT external_id FROM contact_identity "
        "WHERE contact_id = $1 AND inbox_id = $2",
        conversation["contact_id"],
        conversation["inbox_id"],
    )
    sender_name = ""
    if message["sender_user_id"]:
        sender_name = await db.fetchval(
            "SELECT name FROM app_user WHERE id = $1", message["sender_user_id"]
        )
    rows = await db.fetch(
        "SELECT * FROM attachment WHERE message_id = $1 ORDER BY id", message["id"]
    )
    store = runtime.current().blobs
    attachments = [
        OutboundAttachment(
            filename=row["filename"],
            content_type=row["content_type"],
            size=row["size"],
            open=lambda key=row["blob_key"]: store.open(key),
        )
        for row in rows
    ]
    conversation.pop("search", None)
    outbound = OutboundMessage(
        message_id=message["id"],
        conversation_id=message["conversation_id"],
        idempotency_key=message["idempotency_key"],
        text=message["text"],
        html=message["html"],
        contact_external_id=external_id or "",
        contact=contact,
        conversation=conversation,
        attachments=attachments,
        sender_name=sender_name or "",
        metadata=message["metadata"],
    )
    return await channel_for_inbox(message["inbox_id"]), outbound


async def resolve_stuck_sends(older_than_minutes: int = 15) -> int:
    """Mark messages left ``sending`` by a crashed worker as failed, never resend.

    The channel may or may not have accepted them, so an agent decides.
    """
    rows = await db.fetch(
        """UPDATE message SET delivery_status = 'failed', updated_at = now(),
               error = 'Delivery outcome unknown: the worker stopped while sending. '
                       || 'Check with the customer before sending it again.'
           WHERE delivery_status = 'sending'
             AND updated_at < now() - make_interval(mins => $1)
           RETURNING id, workspace_id, inbox_id, conversation_id""",
        older_than_minutes,
    )
    for row in rows:
        await _publish_update(row)
    return len(rows)
