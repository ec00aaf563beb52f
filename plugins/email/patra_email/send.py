"""Composing an agent's reply as an email and handing it to the SMTP server.

The Message-ID is derived from the message's idempotency key, so a retry
after an unclear outcome carries the same id and receiving clients show one
message. The id is recorded for threading before the server sees it, so a
fast reply can never arrive before Patra knows the id it answers.
"""

from __future__ import annotations

import email.policy
import email.utils
import html
import logging
import re
from dataclasses import dataclass, field
from email.message import EmailMessage

import aiosmtplib
from patra import db
from patra.channels import (
    OutboundMessage,
    PermanentFailure,
    RetryableFailure,
    SendResult,
)

from patra_email import threading
from patra_email.settings import EmailSettings

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 60
MAX_REFERENCES = 30


@dataclass
class ReplyContext:
    to: list[str]
    cc: list[str] = field(default_factory=list)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""


def outbound_message_id(settings: EmailSettings, message: OutboundMessage) -> str:
    """Our Message-ID for a reply, on the inbox's domain, without brackets."""
    token = re.sub(r"[^A-Za-z0-9]", "", message.idempotency_key)[:24]
    return f"patra.{message.message_id}.{token}@{settings.domain}"


async def reply_context(
    settings: EmailSettings, message: OutboundMessage
) -> ReplyContext:
    """Recipients and threading headers for a reply in its conversation."""
    contact_address = (
        message.contact_external_id or (message.contact or {}).get("email") or ""
    ).lower()
    if "@" not in contact_address:
        raise PermanentFailure(
            "This contact has no email address, so the reply cannot be sent by "
            "email. Add an address to the contact or answer on another channel."
        )

    last_inbound = await db.fetchrow(
        """SELECT metadata FROM message
           WHERE conversation_id = $1 AND direction = 'in' AND kind = 'message'
             AND metadata -> 'email' ->> 'automatic' IS NULL
           ORDER BY id DESC LIMIT 1""",
        message.conversation_id,
    )
    details = (last_inbound or {}).get("metadata", {}).get("email", {}) or {}

    to = [contact_address]
    cc = _copy_recipients(settings, message, details, to)
    in_reply_to = details.get("message_id")
    references = await _references(message.conversation_id, details)
    subject = _reply_subject(message)
    return ReplyContext(to, cc, in_reply_to, references, subject)


def _copy_recipients(
    settings: EmailSettings, message: OutboundMessage, details: dict, to: list[str]
) -> list[str]:
    """Cc: the agent's choice, else everyone the customer's last mail went to."""
    chosen = (message.metadata or {}).get("cc")
    if isinstance(chosen, list):
        cc = [str(item).lower() for item in chosen]
    else:
        cc = [item["email"] for item in details.get("to", []) + details.get("cc", [])]
    return [
        item
        for item in dict.fromkeys(cc)
        if item not in to and not _is_ours(settings, item)
    ]


async def _references(conversation_id: int, details: dict) -> list[str]:
    """The customer's References and id, then the conversation's other ids."""
    references = [*details.get("references", [])]
    if details.get("message_id"):
        references.append(details["message_id"])
    references.extend(await threading.conversation_ids(conversation_id))

    references = list(dict.fromkeys(references))
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    return references


def _reply_subject(message: OutboundMessage) -> str:
    subject = str((message.conversation or {}).get("subject") or "").strip()
    subject = subject or "Your message"
    if not re.match(r"^(re|aw|sv|antw)\s*:", subject, re.IGNORECASE):
        subject = f"Re: {subject}"

    token = threading.subject_token(message.conversation_id)
    if token not in subject:
        subject = f"{subject} {token}"
    return subject


def _is_ours(settings: EmailSettings, address: str) -> bool:
    return address.rpartition("@")[2] == settings.domain


def _html_from_text(text: str) -> str:
    paragraphs = [
        "<p>" + html.escape(paragraph).replace("\n", "<br>\n") + "</p>"
        for paragraph in re.split(r"\n\s*\n", text.strip())
        if paragraph.strip()
    ]
    return '<div dir="auto">\n' + "\n".join(paragraphs) + "\n</div>"


async def compose(
    settings: EmailSettings,
    message: OutboundMessage,
    context: ReplyContext,
    message_id: str,
) -> EmailMessage:
    mime = EmailMessage(policy=email.policy.SMTP)
    display_name = settings.from_name or message.sender_name
    mime["From"] = email.utils.formataddr((display_name, settings.from_address))
    mime["To"] = ", ".join(context.to)
    if context.cc:
        mime["Cc"] = ", ".join(context.cc)
    if settings.reply_to:
        mime["Reply-To"] = settings.reply_to
    mime["Subject"] = context.subject
    mime["Date"] = email.utils.formatdate(usegmt=True)

    mime["Message-ID"] = f"<{message_id}>"
    if context.in_reply_to:
        mime["In-Reply-To"] = f"<{context.in_reply_to}>"
    if context.references:
        mime["References"] = " ".join(f"<{item}>" for item in context.references)
    if (message.metadata or {}).get("automatic"):
        mime["Auto-Submitted"] = "auto-replied"

    text = message.text or ""
    if settings.signature.strip():
        text = f"{text}\n\n-- \n{settings.signature.strip()}"
    mime.set_content(text)

    body_html = message.html or _html_from_text(message.text or "")
    if settings.signature.strip():
        body_html += _html_from_text(settings.signature)
    mime.add_alternative(body_html, subtype="html")

    for attachment in message.attachments:
        data = await attachment.open()
        maintype, _, subtype = (attachment.content_type or "").partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        mime.add_attachment(
            data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return mime


async def send_reply(
    settings: EmailSettings, inbox_id: int, message: OutboundMessage
) -> SendResult:
    """Send one reply; raise RetryableFailure or PermanentFailure on refusal."""
    if not settings.smtp_host:
        raise PermanentFailure(
            "This inbox has no SMTP server set up; enter one in the inbox settings "
            "and send the message again."
        )

    context = await reply_context(settings, message)
    message_id = outbound_message_id(settings, message)
    mime = await compose(settings, message, context, message_id)
    # Known before the server sees it, so the fastest answer still threads.
    await threading.remember_ids(
        inbox_id, message.conversation_id, message_id, context.references, "sent"
    )

    recipients = [*context.to, *context.cc]
    refused = await _smtp_send(settings, mime, recipients)

    details = {
        "message_id": message_id,
        "to": context.to,
        "cc": context.cc,
        "participants": recipients,
        "subject": context.subject,
        "in_reply_to": context.in_reply_to,
        "references": context.references,
        "accepted": [item for item in recipients if item not in refused],
        "refused": refused,
    }
    # The core keeps SendResult.metadata nowhere yet; store it on the message.
    await db.execute(
        "UPDATE message SET metadata = metadata || $2 WHERE id = $1",
        message.message_id,
        {"email": details},
    )
    if refused:
        logger.warning(
            "Message %s: the SMTP server refused %s of %s recipients",
            message.message_id,
            len(refused),
            len(recipients),
        )
    return SendResult(external_id=message_id, metadata={"email": details})


async def _smtp_send(
    settings: EmailSettings, mime: EmailMessage, recipients: list[str]
) -> dict[str, str]:
    """Hand the message over; return refused recipients with the server's answer."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        refused, _ = await aiosmtplib.send(
            mime,
            sender=settings.from_address,
            recipients=recipients,
            **smtp_connection(settings),
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        answers = {
            item.recipient: f"{item.code} {item.message}" for item in error.recipients
        }
        summary = "; ".join(f"{who}: {answer}" for who, answer in answers.items())
        if all(400 <= item.code < 500 for item in error.recipients):
            raise RetryableFailure(
                f"The mail server {where} refused every recipient for now "
                f"({summary}). Patra will try again.",
                code=str(error.recipients[0].code),
            ) from None
        raise PermanentFailure(
            f"The mail server {where} refused every recipient ({summary}). Check "
            "the addresses and send the message again.",
            code=str(error.recipients[0].code),
        ) from None
    except aiosmtplib.SMTPAuthenticationError as error:
        raise _response_failure(
            error,
            f"The mail server {where} refused the login ({error.code} "
            f"{error.message}). Check the SMTP user and password in the inbox "
            "settings.",
        ) from None
    except aiosmtplib.SMTPResponseException as error:
        raise _response_failure(
            error,
            f"The mail server {where} refused the message ({error.code} "
            f"{error.message}).",
        ) from None
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError) as error:
        raise RetryableFailure(
            f"Could not reach the mail server {where} ({type(error).__name__}). "
            "Patra will try again.",
        ) from None
    except (aiosmtplib.SMTPServerDisconnected, OSError) as error:
        raise RetryableFailure(
            f"The connection to the mail server {where} broke "
            f"({type(error).__name__}). Patra will try again.",
        ) from None
    except aiosmtplib.SMTPException as error:
        raise PermanentFailure(
            f"Sending through {where} failed: {error}. Check the SMTP security "
            "setting (starttls, ssl or none) and the port.",
        ) from None
    return {who: f"{answer.code} {answer.message}" for who, answer in refused.items()}


def _response_failure(error: aiosmtplib.SMTPResponseException, reason: str):
    if 400 <= error.code < 500:
        return RetryableFailure(f"{reason} Patra will try again.", code=str(error.code))
    return PermanentFailure(reason, code=str(error.code))


def smtp_connection(settings: EmailSettings) -> dict:
    """Keyword arguments for aiosmtplib that connect and log in to the server."""
    return {
        "hostname": settings.smtp_host,
        "port": settings.smtp_port,
        "username": settings.smtp_user or None,
        "password": settings.smtp_password or None,
        "use_tls": settings.smtp_security == "ssl",
        "start_tls": settings.smtp_security == "starttls",
        "timeout": SMTP_TIMEOUT_SECONDS,
    }
