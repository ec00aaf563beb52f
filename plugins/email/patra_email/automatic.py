"""Recognising mail that no person wrote (RFC 3834) and addresses nobody reads.

Automatic mail is stored like any other, but never reopens a resolved
conversation and never receives an automatic answer.
"""

from __future__ import annotations

import re

from patra_email.parse import Address, ParsedEmail

_BULK_PRECEDENCE = {"bulk", "list", "junk", "auto_reply"}
_NO_REPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster"
    r"|bounces?|notifications?|auto[-_.]?(?:reply|responder)?)(?:[-_.+].*)?$",
    re.IGNORECASE,
)


def automatic_reason(parsed: ParsedEmail) -> str | None:
    """Why this message counts as automatic, or None when a person wrote it."""
    auto_submitted = parsed.header("Auto-Submitted").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = parsed.header("Precedence").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    if parsed.header("List-Id"):
        return "mailing list (List-Id)"
    if parsed.header("List-Unsubscribe"):
        return "bulk mail (List-Unsubscribe)"
    if parsed.header("Return-Path").replace(" ", "") == "<>":
        return "null return path"
    if parsed.report is not None:
        return "delivery status notification"
    if parsed.content_type == "multipart/report":
        return "report (multipart/report)"
    if parsed.header("X-Autoreply") or parsed.header("X-Autorespond"):
        return "auto-reply (X-Autoreply)"
    if parsed.sender is not None and is_no_reply(customer_address(parsed)):
        return "sent from a no-reply address"
    return None


def is_no_reply(address: Address) -> bool:
    return bool(_NO_REPLY.match(address.email.partition("@")[0]))


def customer_address(parsed: ParsedEmail) -> Address:
    """The person behind the message: Reply-To when From is a no-reply address."""
    sender = parsed.sender
    assert sender is not None
    if is_no_reply(sender):
        people = [address for address in parsed.reply_to if not is_no_reply(address)]
        if len(people) == 1:
            return people[0]
    return sender
