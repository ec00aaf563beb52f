"""Filing one raw email into an inbox: the step shared by IMAP and import.

Parse, recognise our own and automatic mail, apply delivery reports, choose
the conversation, keep the raw message in blob storage and hand the result to
the core's ingest service. Running it twice on the same bytes stores nothing
new. Bytes that cannot be read go to the quarantine with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import asyncpg
from patra import db, runtime
from patra.channels import InboundAttachment, InboundMessage, InboundStatus
from patra.inbox.ingest import ingest_message, quarantine, record_status
from patra.storage import store_bytes
from patra.text import clean_text

from patra_email import threading
from patra_email.automatic import automatic_reason, customer_address
from patra_email.parse import ParsedEmail, UnreadableEmail, parse_email

logger = logging.getLogger(__name__)

CHANNEL = "email"

Outcome = Literal["stored", "duplicate", "own", "quarantined"]


@dataclass(frozen=True)
class FiledEmail:
    outcome: Outcome
    message_id: int | None = None
    conversation_id: int | None = None


@dataclass(frozen=True)
class InboxIdentity:
    """What filing needs to know about the inbox that received the mail."""

    id: int
    workspace_id: int
    own_addresses: frozenset[str]


async def inbox_identity(inbox_id: int, settings: dict | None = None) -> InboxIdentity:
    row = await db.fetchrow(
        "SELECT workspace_id, settings FROM inbox WHERE id = $1", inbox_id
    )
    if row is None:
        raise LookupError(f"Inbox {inbox_id} does not exist.")
    settings = settings if settings is not None else row["settings"]
    addresses = {
        str(settings.get(key) or "").strip().lower()
        for key in ("from_address", "reply_to", "imap_user", "smtp_user")
    }
    return InboxIdentity(
        inbox_id,
        row["workspace_id"],
        frozenset(address for address in addresses if "@" in address),
    )


async def file_email(inbox: InboxIdentity, raw: bytes, source: str) -> FiledEmail:
    """Store one raw message in ``inbox``; ``source`` says where it came from."""
    try:
        parsed = parse_email(raw)
    except UnreadableEmail as error:
        return await _quarantine(inbox, raw, source, str(error))
    except Exception as error:  # noqa: BLE001 - unreadable mail must not stop the rest
        return await _quarantine(inbox, raw, source, _kept_unchanged("read", error))

    if await _is_our_own(inbox, parsed):
        await _remember_own(inbox, parsed)
        return FiledEmail("own")

    existing = await db.fetchrow(
        """SELECT id, conversation_id FROM message
           WHERE inbox_id = $1 AND external_id = $2""",
        inbox.id,
        parsed.external_id,
    )
    if existing is not None:
        return FiledEmail("duplicate", existing["id"], existing["conversation_id"])

    if parsed.report is not None:
        await _apply_delivery_report(inbox, parsed)

    contact = customer_address(parsed)
    conversation_id = await threading.find_conversation(inbox.id, parsed, contact.email)
    inbound = _inbound(inbox, parsed, contact.email, contact.name, conversation_id)
    filed = await _ingest_with_raw(inbox, inbound, raw, source)

    if filed.outcome == "stored":
        await threading.remember_ids(
            inbox.id,
            filed.conversation_id,
            [parsed.message_id] if parsed.message_id else [],
            threading.candidate_ids(parsed),
            "received",
            filed.message_id,
        )
    return filed


async def _ingest_with_raw(
    inbox: InboxIdentity, inbound: InboundMessage, raw: bytes, source: str
) -> FiledEmail:
    """Keep the raw message in storage and ingest; the blob goes if the row does."""
    store = runtime.current().blobs
    raw_blob = await store_bytes(store, inbox.workspace_id, "message.eml", raw)
    inbound.metadata["email"].update(
        raw_key=raw_blob.key, raw_size=raw_blob.size, source=source
    )

    try:
        result = await ingest_message(inbound)
    except asyncpg.DataError as error:
        # The database refused a value: keep the mail for an admin and go on.
        await store.delete(raw_blob.key)
        return await _quarantine(inbox, raw, source, _kept_unchanged("store", error))
    except BaseException:
        await store.delete(raw_blob.key)
        raise

    if result.duplicate:
        await store.delete(raw_blob.key)
        return FiledEmail("duplicate", result.message_id, result.conversation_id)
    return FiledEmail("stored", result.message_id, result.conversation_id)


def _kept_unchanged(verb: str, error: Exception) -> str:
    return (
        f"Patra could not {verb} this message ({type(error).__name__}). It is "
        "kept here unchanged; download it to look at it in a mail program."
    )


async def _quarantine(
    inbox: InboxIdentity, raw: bytes, source: str, reason: str
) -> FiledEmail:
    await quarantine(inbox.id, CHANNEL, reason, raw, {"source": source})
    return FiledEmail("quarantined")


def _inbound(
    inbox: InboxIdentity,
    parsed: ParsedEmail,
    address: str,
    name: str,
    conversation_id: int | None,
) -> InboundMessage:
    automatic = automatic_reason(parsed)
    participants = sorted(
        {
            item.email
            for item in [parsed.sender, *parsed.reply_to, *parsed.to, *parsed.cc]
            if item is not None and item.email not in inbox.own_addresses
        }
    )
    metadata = {
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": parsed.references,
        "subject": parsed.subject,
        "from": parsed.sender.as_dict() if parsed.sender else None,
        "reply_to": [item.as_dict() for item in parsed.reply_to],
        "to": [item.as_dict() for item in parsed.to],
        "cc": [item.as_dict() for item in parsed.cc],
        "participants": participants,
        "quote_start": parsed.quote_start,
        "automatic": automatic,
    }
    if parsed.report is not None:
        metadata["delivery_report"] = {
            "original_message_id": parsed.report.original_message_id,
            "recipients": [vars(item) for item in parsed.report.recipients],
        }
    return InboundMessage(
        inbox_id=inbox.id,
        contact_external_id=address,
        contact_email=address,
        contact_name=name,
        external_id=parsed.external_id,
        text=parsed.text,
        html=parsed.html,
        subject=parsed.subject,
        provider_time=parsed.date,
        attachments=[
            InboundAttachment(
                filename=item.filename,
                content_type=item.content_type,
                data=item.data,
                content_id=item.content_id,
            )
            for item in parsed.attachments
        ],
        metadata={"email": _clean(metadata)},
        conversation_id=conversation_id,
        thread_key=None if conversation_id else _thread_root(parsed),
        automatic=automatic is not None,
    )


def _clean(value):
    """Metadata PostgreSQL's jsonb accepts: no NUL, no lone surrogates."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def _thread_root(parsed: ParsedEmail) -> str:
    return (parsed.references or parsed.in_reply_to or [parsed.external_id])[0]


async def _is_our_own(inbox: InboxIdentity, parsed: ParsedEmail) -> bool:
    """Copies of our own mail: sent by Patra, or from the inbox's own address."""
    if await threading.is_our_message_id(inbox.id, parsed.message_id):
        return True
    return parsed.sender is not None and parsed.sender.email in inbox.own_addresses


async def _remember_own(inbox: InboxIdentity, parsed: ParsedEmail) -> None:
    """Let replies to mail sent from the inbox's address elsewhere find their thread."""
    conversation_id = await threading.find_conversation(inbox.id, parsed, "")
    if conversation_id is not None:
        own_ids = [parsed.message_id] if parsed.message_id else []
        await threading.remember_ids(inbox.id, conversation_id, own_ids, [], "sent")
    logger.info("Inbox %s: skipped a copy of its own outgoing mail", inbox.id)


async def _apply_delivery_report(inbox: InboxIdentity, parsed: ParsedEmail) -> None:
    """Mark the reply a bounce refers to as failed, naming the recipient and
    the server's reason."""
    report = parsed.report
    failed = [item for item in report.recipients if item.failed]
    if not report.original_message_id or not failed:
        return
    details = "; ".join(
        f"{item.recipient}: {item.status} {item.diagnostic}".strip() for item in failed
    )

    # Each recipient's copy has its own id; the message is known by the first.
    reply_id = await threading.sent_message_for(inbox.id, report.original_message_id)
    external_id = report.original_message_id
    if reply_id is not None:
        external_id = await db.fetchval(
            "SELECT external_id FROM message WHERE id = $1", reply_id
        )
        await db.execute(
            """UPDATE email_recipient_copy SET status = 'bounced', answer = $3,
                   updated_at = now()
               WHERE patra_message_id = $1 AND message_id = $2""",
            reply_id,
            report.original_message_id,
            details[:1000],
        )

    error = (
        f"The recipient's mail server could not deliver this message ({details}). "
        "Check the address, or reach the customer another way."
    )
    moved = await record_status(
        InboundStatus(
            inbox_id=inbox.id,
            external_id=external_id or report.original_message_id,
            status="failed",
            error=error[:2000],
        )
    )
    if moved:
        logger.info(
            "Inbox %s: a delivery report marked a sent message failed (%s)",
            inbox.id,
            ", ".join(item.status for item in failed),
        )
