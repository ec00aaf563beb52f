"""Composing an agent's reply as an email and handing it to the SMTP server.

Each recipient (To and Cc) gets a copy of its own with its own Message-ID on
the inbox's domain, so an answer or a bounce names the copy it is about.
The first attempt fixes the recipients and ids in ``email_recipient_copy``;
each copy's outcome is stored as soon as the server answers, and a retry
sends only the copies not yet accepted, under the same ids. The ids are
recorded for threading before the server sees them, so a fast reply can
never arrive before Patra knows the id it answers.
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
from patra_email.tls import certificate_problem, client_context

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 60
MAX_REFERENCES = 30
_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+")


@dataclass
class ReplyContext:
    to: list[str]
    cc: list[str] = field(default_factory=list)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""


def outbound_message_id(
    settings: EmailSettings, message: OutboundMessage, position: int
) -> str:
    """The Message-ID of the reply's copy for its ``position``-th recipient,
    on the inbox's domain, without brackets."""
    token = re.sub(r"[^A-Za-z0-9]", "", message.idempotency_key)[:24]
    return f"patra.{message.message_id}.{token}.{position}@{settings.domain}"


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
        if _ADDRESS.fullmatch(item) and item not in to and not _is_ours(settings, item)
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


@dataclass
class RecipientCopy:
    """One recipient's copy of a reply, as kept in ``email_recipient_copy``."""

    recipient: str
    header: str  # "to" or "cc"
    message_id: str
    status: str = "pending"
    answer: str = ""

    @property
    def done(self) -> bool:
        return self.status in ("accepted", "refused", "bounced")


async def recipient_copies(
    settings: EmailSettings, message: OutboundMessage, context: ReplyContext
) -> list[RecipientCopy]:
    """The reply's copies; the first attempt fixes recipients and Message-IDs."""
    planned = [
        (address, header)
        for header, addresses in (("to", context.to), ("cc", context.cc))
        for address in addresses
    ]
    for position, (address, header) in enumerate(planned, start=1):
        await db.execute(
            """INSERT INTO email_recipient_copy
                   (patra_message_id, recipient, header, position, message_id)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (patra_message_id, recipient) DO NOTHING""",
            message.message_id,
            address,
            header,
            position,
            outbound_message_id(settings, message, position),
        )
    rows = await db.fetch(
        """SELECT recipient, header, message_id, status, answer
           FROM email_recipient_copy WHERE patra_message_id = $1
           ORDER BY position""",
        message.message_id,
    )
    return [RecipientCopy(**row) for row in rows]


async def _record_copy(message_id: int, copy: RecipientCopy) -> None:
    """Store one copy's outcome at once, so a retry knows who already has it."""
    await db.execute(
        """UPDATE email_recipient_copy SET status = $3, answer = $4,
               updated_at = now()
           WHERE patra_message_id = $1 AND recipient = $2""",
        message_id,
        copy.recipient,
        copy.status,
        copy.answer[:1000],
    )


async def send_reply(
    settings: EmailSettings, inbox_id: int, message: OutboundMessage
) -> SendResult:
    """Send each recipient its own copy; raise RetryableFailure or
    PermanentFailure when copies are still missing."""
    if not settings.smtp_host:
        raise PermanentFailure(
            "This inbox has no SMTP server set up; enter one in the inbox settings "
            "and send the message again."
        )

    context = await reply_context(settings, message)
    copies = await recipient_copies(settings, message, context)
    # A retry keeps the recipients the first attempt chose.
    context.to = [copy.recipient for copy in copies if copy.header == "to"]
    context.cc = [copy.recipient for copy in copies if copy.header == "cc"]
    # Known before the server sees them, so the fastest answer still threads.
    await threading.remember_ids(
        inbox_id,
        message.conversation_id,
        [copy.message_id for copy in copies],
        context.references,
        "sent",
        message.message_id,
    )

    mime = await compose(settings, message, context, copies[0].message_id)
    await _send_copies(settings, message.message_id, mime, copies)
    _raise_unless_sent(settings, copies)

    refused = {
        copy.recipient: copy.answer for copy in copies if copy.status == "refused"
    }
    if refused:
        logger.warning(
            "Message %s: the SMTP server refused %s of %s recipients",
            message.message_id,
            len(refused),
            len(copies),
        )
    details = {
        "message_id": copies[0].message_id,
        "message_ids": {copy.recipient: copy.message_id for copy in copies},
        "to": context.to,
        "cc": context.cc,
        "participants": [copy.recipient for copy in copies],
        "subject": context.subject,
        "in_reply_to": context.in_reply_to,
        "references": context.references,
        "accepted": [copy.recipient for copy in copies if copy.status == "accepted"],
        "refused": refused,
    }
    return SendResult(external_id=copies[0].message_id, metadata={"email": details})


async def _send_copies(
    settings: EmailSettings,
    message_id: int,
    mime: EmailMessage,
    copies: list[RecipientCopy],
) -> None:
    """Hand every copy not yet accepted or refused to the server, one by one."""
    waiting = [copy for copy in copies if not copy.done]
    if not waiting:
        return  # an earlier attempt delivered every copy
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    client = aiosmtplib.SMTP(**smtp_connection(settings))
    try:
        await client.connect()
        for copy in waiting:
            mime.replace_header("Message-ID", f"<{copy.message_id}>")
            copy.status, copy.answer = await _send_copy(client, settings, mime, copy)
            await _record_copy(message_id, copy)
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
            f"The mail server {where} answered {error.code} {error.message}"
            f"{_progress(copies)}.",
        ) from None
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError) as error:
        problem = certificate_problem(error, "SMTP")
        raise RetryableFailure(
            (f"{problem} " if problem else "")
            + f"Could not reach the mail server {where} ({type(error).__name__})"
            + _progress(copies)
            + ". Patra will try again.",
        ) from None
    except (aiosmtplib.SMTPServerDisconnected, OSError) as error:
        problem = certificate_problem(error, "SMTP")
        raise RetryableFailure(
            (f"{problem} " if problem else "")
            + f"The connection to the mail server {where} broke "
            f"({type(error).__name__})"
            + _progress(copies)
            + ". Patra will try again.",
        ) from None
    except aiosmtplib.SMTPException as error:
        raise PermanentFailure(
            f"Sending through {where} failed: {error}. Check the SMTP security "
            "setting (starttls, ssl or none) and the port.",
        ) from None
    finally:
        client.close()


async def _send_copy(
    client: aiosmtplib.SMTP,
    settings: EmailSettings,
    mime: EmailMessage,
    copy: RecipientCopy,
) -> tuple[str, str]:
    """(status, server's answer) for one copy; the copy counts as accepted
    only once the server answered its data with 2xx."""
    try:
        _, answer = await client.send_message(
            mime, sender=settings.from_address, recipients=[copy.recipient]
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        [refusal] = error.recipients
        code, text = refusal.code, refusal.message
    except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError) as error:
        code, text = error.code, error.message
    else:
        return "accepted", f"250 {answer}".strip()
    status = "deferred" if 400 <= code < 500 else "refused"
    return status, f"{code} {text}".strip()


def _progress(copies: list[RecipientCopy]) -> str:
    """For failure sentences: which recipients already have their copy."""
    accepted = [copy.recipient for copy in copies if copy.status == "accepted"]
    if not accepted:
        return ""
    return f"; {', '.join(accepted)} already got the message and will not get it twice"


def _raise_unless_sent(settings: EmailSettings, copies: list[RecipientCopy]) -> None:
    """Retry while copies were refused for now; fail when every one was refused."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    deferred = [copy for copy in copies if copy.status == "deferred"]
    if deferred:
        summary = "; ".join(f"{copy.recipient}: {copy.answer}" for copy in deferred)
        raise RetryableFailure(
            f"The mail server {where} refused {_some_or_every(deferred, copies)} "
            f"for now ({summary}){_progress(copies)}. Patra will try again.",
            code=deferred[0].answer.split(" ")[0],
        )
    if all(copy.status == "refused" for copy in copies):
        summary = "; ".join(f"{copy.recipient}: {copy.answer}" for copy in copies)
        raise PermanentFailure(
            f"The mail server {where} refused every recipient ({summary}). Check "
            "the addresses and send the message again.",
            code=copies[0].answer.split(" ")[0],
        )


def _some_or_every(some: list, every: list) -> str:
    if len(some) == len(every):
        return "every recipient"
    return f"{len(some)} of {len(every)} recipients"


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
        "tls_context": client_context(settings),
    }
