"""Reading one raw email into what the inbox shows.

:func:`parse_email` never fails on charsets, encodings or odd structure: text
it cannot decode becomes replacement characters, parts it cannot place become
attachments. It raises :class:`UnreadableEmail` only when there is no message
to speak of (no sender address), and the caller quarantines the raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import email.utils
import hashlib
import logging
import mimetypes
import quopri
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

from patra.text import clean_text
from tnefparse import TNEF

from patra_email.charsets import decode_bytes, decode_header_value, repair
from patra_email.htmltext import html_to_text, sanitize_html
from patra_email.quotes import find_quote_start

logger = logging.getLogger(__name__)


class UnreadableEmail(ValueError):
    """The bytes are not a message Patra can file; the message says why."""


@dataclass(frozen=True)
class Address:
    name: str
    email: str  # lowercased

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email}


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None


@dataclass
class RecipientReport:
    """One recipient's line of a delivery status notification (RFC 3464)."""

    recipient: str
    action: str
    status: str
    diagnostic: str = ""

    @property
    def failed(self) -> bool:
        return self.action == "failed" or self.status.startswith("5")


@dataclass
class DeliveryReport:
    original_message_id: str | None
    recipients: list[RecipientReport] = field(default_factory=list)


@dataclass
class ParsedEmail:
    message_id: str | None
    fingerprint: str  # sha256 of the raw bytes, the identity of id-less mail
    subject: str = ""
    sender: Address | None = None
    reply_to: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    date: datetime | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    text: str = ""
    html: str | None = None
    quote_start: int | None = None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
    content_type: str = "text/plain"
    report: DeliveryReport | None = None

    def header(self, name: str) -> str:
        """The first value of a header, decoded, or an empty string."""
        values = self.headers.get(name.lower())
        return decode_header_value(values[0]) if values else ""

    @property
    def external_id(self) -> str:
        return self.message_id or f"sha256:{self.fingerprint}"


_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def message_ids(value: str | None) -> list[str]:
    """Message ids in a header value, without angle brackets, in order."""
    if not value:
        return []
    value = repair(value)
    found = _MESSAGE_ID.findall(value)
    if not found and value.strip() and " " not in value.strip():
        found = [value.strip()]
    return list(dict.fromkeys(clean_text(item)[:500] for item in found))


def parse_addresses(values: list[str] | None) -> list[Address]:
    addresses = []
    for name, address in email.utils.getaddresses(values or []):
        address = clean_text(repair(address)).strip().strip("<>").lower()
        if "@" not in address or " " in address:
            continue
        addresses.append(Address(clean_text(decode_header_value(name)), address))
    return addresses


def parse_email(raw: bytes) -> ParsedEmail:
    """Everything Patra needs from one raw message; see the module docstring."""
    if not raw.strip():
        raise UnreadableEmail("The message is empty.")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        headers.setdefault(name.lower(), []).append(str(value))

    senders = parse_addresses(headers.get("from")) or parse_addresses(
        headers.get("sender")
    )
    if not senders:
        raise UnreadableEmail(
            "The message has no sender address in From or Sender, so it cannot "
            "be filed under a contact."
        )

    ids = message_ids(_first(headers, "message-id"))
    parsed = ParsedEmail(
        message_id=ids[0] if ids else None,
        fingerprint=hashlib.sha256(raw).hexdigest(),
        sender=senders[0],
        subject=clean_text(decode_header_value(_first(headers, "subject"))),
        reply_to=parse_addresses(headers.get("reply-to")),
        to=parse_addresses(headers.get("to")),
        cc=parse_addresses(headers.get("cc")),
        date=_parse_date(_first(headers, "date")),
        in_reply_to=message_ids(_first(headers, "in-reply-to")),
        references=message_ids(" ".join(headers.get("references", []))),
        headers=headers,
        content_type=_content_type(message),
    )

    _read_body(message, parsed)
    if parsed.content_type == "multipart/report":
        parsed.report = _delivery_report(message)
    return parsed


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _content_type(part: EmailMessage) -> str:
    try:
        return part.get_content_type()
    except (ValueError, IndexError, AttributeError):
        return "application/octet-stream"


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(repair(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# --- Body and attachments --------------------------------------------------


@dataclass
class _Collected:
    extra_text: list[str] = field(default_factory=list)
    extra_html: list[str] = field(default_factory=list)
    tnef_text: str = ""
    tnef_html: str = ""


def _read_body(message: EmailMessage, parsed: ParsedEmail) -> None:
    plain_part = _body_part(message, "plain")
    html_part = _body_part(message, "html")
    text = _decode_part(plain_part) if plain_part is not None else ""
    html = _decode_part(html_part) if html_part is not None else ""

    collected = _Collected()
    body_parts = {id(part) for part in (plain_part, html_part) if part is not None}
    _collect(message, body_parts, parsed, collected)

    # Apple Mail splits a body around inline images into several parts.
    for extra in collected.extra_text:
        if _squeezed(extra) not in _squeezed(text):
            text = f"{text}\n\n{extra}" if text else extra
    if html:
        html = "\n".join([html, *collected.extra_html])
    text = text or collected.tnef_text
    html = html or collected.tnef_html
    if html:
        parsed.html = clean_text(sanitize_html(html))
        text = text or html_to_text(html)
    parsed.text = clean_text(text).replace("\r\n", "\n").strip("\n")
    parsed.quote_start = find_quote_start(parsed.text)


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def _body_part(message: EmailMessage, subtype: str) -> EmailMessage | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except (KeyError, ValueError, IndexError, AttributeError):
        return None
    if part is None or _content_type(part) != f"text/{subtype}":
        return None
    return part


def _decode_part(part: EmailMessage) -> str:
    data = part.get_payload(decode=True) or b""
    charset = part.get_param("charset")
    if isinstance(charset, tuple):  # RFC 2231 encoded parameter
        charset = charset[2]
    if charset is None and _content_type(part) == "text/html":
        charset = _html_meta_charset(data)
    return decode_bytes(data, charset if isinstance(charset, str) else None)


_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.I)


def _html_meta_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def _collect(
    part: EmailMessage,
    body_parts: set[int],
    parsed: ParsedEmail,
    collected: _Collected,
) -> None:
    content_type = _content_type(part)
    if content_type in ("message/rfc822", "message/global"):
        parsed.attachments.append(_attached_message(part))
        return
    if content_type in ("message/delivery-status", "text/rfc822-headers"):
        return  # read by _delivery_report; the raw message keeps the bytes
    if part.is_multipart():
        for child in part.iter_parts():
            _collect(child, body_parts, parsed, collected)
        return
    if id(part) in body_parts:
        return

    filename = _filename(part)
    disposition = _disposition(part)
    if content_type in ("text/plain", "text/html") and not filename:
        if disposition != "attachment":
            text = _decode_part(part)
            if content_type == "text/html":
                collected.extra_html.append(text)
                text = html_to_text(text)
            collected.extra_text.append(text)
            return

    data = part.get_payload(decode=True) or b""
    if _is_tnef(content_type, filename):
        if _unpack_tnef(data, parsed, collected):
            return
    parsed.attachments.append(
        ParsedAttachment(
            filename=filename or _default_filename(content_type),
            content_type=content_type,
            data=data,
            content_id=_content_id(part),
        )
    )


def _filename(part: EmailMessage) -> str:
    try:
        name = part.get_filename() or part.get_param("name")
    except (ValueError, IndexError, LookupError, AttributeError):
        name = None
    if isinstance(name, tuple):
        name = email.utils.collapse_rfc2231_value(name)
    if not name:
        return ""
    name = decode_header_value(str(name))
    # A file name, not a path: keep what follows the last slash.
    name = re.split(r"[\\/]", name)[-1]
    return clean_text(name).strip()[:255]


def _disposition(part: EmailMessage) -> str | None:
    try:
        return part.get_content_disposition()
    except (ValueError, IndexError, AttributeError):
        return None


def _content_id(part: EmailMessage) -> str | None:
    value = part.get("Content-ID")
    if not value:
        return None
    return clean_text(repair(str(value))).strip().strip("<>").strip()[:255] or None


def _default_filename(content_type: str) -> str:
    extension = mimetypes.guess_extension(content_type) or ".bin"
    base = "image" if content_type.startswith("image/") else "attachment"
    return base + extension


def _attached_message(part: EmailMessage) -> ParsedAttachment:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, EmailMessage):
        data = inner.as_bytes(policy=email.policy.default.clone(linesep="\r\n"))
        subject = decode_header_value(
            next(
                (
                    str(value)
                    for name, value in inner.raw_items()
                    if name.lower() == "subject"
                ),
                "",
            )
        )
    else:
        data = part.get_payload(decode=True) or b""
        subject = ""
    subject = re.sub(r"[^\w .,()-]+", "", subject).strip()[:100]
    filename = _filename(part) or f"{subject or 'attached message'}.eml"
    return ParsedAttachment(filename, "message/rfc822", data, _content_id(part))


def _is_tnef(content_type: str, filename: str) -> bool:
    return (
        content_type
        in (
            "application/ms-tnef",
            "application/vnd.ms-tnef",
        )
        or filename.lower() == "winmail.dat"
    )


def _unpack_tnef(data: bytes, parsed: ParsedEmail, collected: _Collected) -> bool:
    """Add the files and body inside an Outlook winmail.dat; False if unreadable."""
    try:
        tnef = TNEF(data, do_checksum=False)
        files = [
            (attachment.long_filename(), attachment.data)
            for attachment in tnef.attachments
        ]
    except Exception as error:  # noqa: BLE001 - any failure keeps winmail.dat whole
        logger.info(
            "Could not unpack a winmail.dat attachment: %s", type(error).__name__
        )
        return False

    for name, content in files:
        name = clean_text(str(name or "")).strip("\x00 ") or "attachment.bin"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        parsed.attachments.append(ParsedAttachment(name, content_type, content or b""))
    if tnef.body:
        collected.tnef_text = _as_text(tnef.body)
    if tnef.htmlbody:
        collected.tnef_html = _as_text(tnef.htmlbody)
    return True


def _as_text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        return decode_bytes(value.rstrip(b"\x00"))
    return value.rstrip("\x00")


# --- Delivery reports ------------------------------------------------------


def _delivery_report(message: EmailMessage) -> DeliveryReport | None:
    """The per-recipient results of a delivery status notification (RFC 3464)."""
    if str(message.get_param("report-type", "")).lower() != "delivery-status":
        return None
    report = DeliveryReport(original_message_id=None)
    for part in message.walk():
        content_type = _content_type(part)
        if content_type == "message/delivery-status":
            report.recipients.extend(_recipient_reports(part))
        elif content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if inner is not None and report.original_message_id is None:
                ids = message_ids(inner.get("Message-ID"))
                report.original_message_id = ids[0] if ids else None
        elif content_type == "text/rfc822-headers":
            headers = email.message_from_bytes(
                part.get_payload(decode=True) or b"", policy=email.policy.compat32
            )
            ids = message_ids(headers.get("Message-ID"))
            if ids and report.original_message_id is None:
                report.original_message_id = ids[0]
    return report


def _status_blocks(part: EmailMessage) -> list[dict[str, str]]:
    """The header blocks of a message/delivery-status part, names in lower case."""
    blocks = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding in ("base64", "quoted-printable") or not isinstance(blocks, list):
        # Python parses the encoded lines as headers; decode the body instead.
        body = part.as_bytes().replace(b"\r\n", b"\n").partition(b"\n\n")[2]
        if encoding == "base64":
            try:
                body = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/]", b"", body) + b"==")
            except binascii.Error:
                body = b""
        elif encoding == "quoted-printable":
            body = quopri.decodestring(body)
        text = decode_bytes(body)
        blocks = [
            email.message_from_string(chunk, policy=email.policy.compat32)
            for chunk in re.split(r"\r?\n\r?\n", text)
        ]
    return [
        {name.lower(): " ".join(str(value).split()) for name, value in block.items()}
        for block in blocks
    ]


def _after_type(value: str) -> str:
    """``rfc822; dana@x.test`` -> ``dana@x.test`` (RFC 3464 typed fields)."""
    kind, separator, rest = value.partition(";")
    return rest.strip() if separator else kind.strip()


def _recipient_reports(part: EmailMessage) -> list[RecipientReport]:
    reports = []
    for block in _status_blocks(part):
        recipient = block.get("final-recipient") or block.get("original-recipient")
        if not recipient:
            continue  # the per-message block
        reports.append(
            RecipientReport(
                recipient=_after_type(recipient).lower(),
                action=block.get("action", "").lower(),
                status=block.get("status", ""),
                diagnostic=_after_type(block.get("diagnostic-code", "")),
            )
        )
    return reports
