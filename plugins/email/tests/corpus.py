"""Building tricky raw messages for the tests, byte by byte where it matters."""

from __future__ import annotations

import base64
import struct

CRLF = b"\r\n"


def raw_message(
    *,
    sender: str = "Dana Levi <dana@customer.test>",
    to: str = "Support <support@shop.test>",
    subject: str = "Order 1042 arrived broken",
    message_id: str | None = "<m1@customer.test>",
    extra_headers: list[str] | None = None,
    body: bytes = b"Hello, the vase arrived broken.",
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    """A single-part message; headers are ASCII unless given as raw bytes."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines.append("Date: Tue, 01 Dec 2026 10:00:00 +0100")
    lines.extend(extra_headers or [])
    lines += ["MIME-Version: 1.0", f"Content-Type: {content_type}"]
    head = CRLF.join(line.encode("utf-8", "surrogateescape") for line in lines)
    return head + CRLF + CRLF + body + CRLF


def multipart(
    subtype: str, parts: list[bytes], headers: list[str] | None = None
) -> bytes:
    """A multipart body (with its own Content-Type line) from encoded parts."""
    boundary = f"b-{subtype}-{len(parts)}-{abs(hash(tuple(parts))) % 10**8}"
    head = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"']
    head += headers or []
    out = CRLF.join(line.encode() for line in head) + CRLF + CRLF
    for part in parts:
        out += f"--{boundary}".encode() + CRLF + part + CRLF
    return out + f"--{boundary}--".encode() + CRLF


def part(headers: list[str], body: bytes) -> bytes:
    return CRLF.join(line.encode() for line in headers) + CRLF + CRLF + body


def with_envelope(headers: list[str], body_with_type: bytes) -> bytes:
    """Top-level headers followed by a multipart body made by :func:`multipart`."""
    head = CRLF.join(line.encode("utf-8", "surrogateescape") for line in headers)
    return head + CRLF + b"MIME-Version: 1.0" + CRLF + body_with_type


def tnef(body: bytes, files: list[tuple[str, bytes]]) -> bytes:
    """A minimal Outlook winmail.dat holding a plain-text body and files."""

    def attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
        checksum = sum(data) & 0xFFFF
        return (
            struct.pack("<BHHI", level, name, kind, len(data))
            + data
            + struct.pack("<H", checksum)
        )

    out = struct.pack("<IH", 0x223E9F78, 1)
    out += attribute(1, 0x9006, 0x0009, struct.pack("<I", 0x00010000))
    out += attribute(1, 0x800C, 0x0002, body)
    for name, data in files:
        out += attribute(2, 0x9002, 0x0006, b"\x01\x00" + b"\xff" * 12)
        out += attribute(2, 0x8010, 0x0001, name.encode() + b"\x00")
        out += attribute(2, 0x800F, 0x0006, data)
    return out


def delivery_report(
    original_message_id: str,
    status: str = "5.1.1",
    action: str = "failed",
    base64_status: bool = False,
) -> bytes:
    """A bounce (RFC 3464) for a message we sent to dana@customer.test."""
    human = part(
        ["Content-Type: text/plain; charset=us-ascii"],
        b"This is the mail system. Your message could not be delivered.",
    )
    fields = (
        b"Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        b"Final-Recipient: rfc822; dana@customer.test\r\n"
        + f"Action: {action}\r\nStatus: {status}\r\n".encode()
        + b"Diagnostic-Code: smtp; 550 5.1.1 <dana@customer.test>: mailbox unknown\r\n"
    )
    if base64_status:
        machine = part(
            [
                "Content-Type: message/delivery-status",
                "Content-Transfer-Encoding: base64",
            ],
            base64.encodebytes(fields),
        )
    else:
        machine = part(["Content-Type: message/delivery-status"], fields)
    original = part(
        ["Content-Type: text/rfc822-headers"],
        f"From: support@shop.test\r\nTo: dana@customer.test\r\n"
        f"Message-ID: <{original_message_id}>\r\nSubject: Re: Order\r\n".encode(),
    )
    body = multipart(
        "report",
        [human, machine, original],
    ).replace(
        b"multipart/report;", b"multipart/report; report-type=delivery-status;", 1
    )
    return with_envelope(
        [
            "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>",
            "To: support@shop.test",
            "Subject: Undelivered Mail Returned to Sender",
            "Message-ID: <bounce-1@mx.customer.test>",
            "Auto-Submitted: auto-replied",
            "Date: Tue, 01 Dec 2026 11:00:00 +0100",
        ],
        body,
    )
