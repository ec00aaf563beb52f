"""Visitor tokens: who a widget visitor is, signed so nobody can pose as another.

A token is ``base64url(json payload) "." base64url(HMAC-SHA256)``. The HMAC key
is derived from ``server.secret_key`` for this purpose only; tokens signed with
a key listed in ``server.old_secret_keys`` stay valid after a rotation. The
payload is readable by whoever holds the token (the visitor's own browser):
the inbox id, a random visitor id and the name and email the visitor typed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

PURPOSE = b"patra:webchat:visitor-token:v1"
MAX_TOKEN_LENGTH = 2048


class InvalidToken(Exception):
    """The token is malformed, forged, expired or for another inbox."""


@dataclass(frozen=True)
class Visitor:
    inbox_id: int
    visitor_id: str
    name: str = ""
    email: str | None = None
    issued_at: int = 0


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), PURPOSE, hashlib.sha256).digest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_visitor(inbox_id: int, name: str = "", email: str | None = None) -> Visitor:
    return Visitor(inbox_id, secrets.token_urlsafe(18), name, email, int(time.time()))


def sign(visitor: Visitor, secret_key: str) -> str:
    payload = {
        "i": visitor.inbox_id,
        "v": visitor.visitor_id,
        "n": visitor.name,
        "e": visitor.email,
        "t": visitor.issued_at,
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
    signature = hmac.new(_key(secret_key), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64encode(signature)}"


def verify(
    token: str,
    inbox_id: int,
    secret_keys: list[str],
    max_age_seconds: int,
) -> Visitor:
    """The visitor a token names; raises :class:`InvalidToken` otherwise."""
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise InvalidToken("malformed")
    body, signature_text = token.split(".")
    try:
        signature = _b64decode(signature_text)
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed") from None
    if not any(
        hmac.compare_digest(
            signature, hmac.new(_key(key), body.encode(), hashlib.sha256).digest()
        )
        for key in secret_keys
        if key
    ):
        raise InvalidToken("signature")

    try:
        payload = json.loads(_b64decode(body))
        visitor = Visitor(
            inbox_id=int(payload["i"]),
            visitor_id=str(payload["v"]),
            name=str(payload.get("n") or ""),
            email=payload.get("e") or None,
            issued_at=int(payload["t"]),
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidToken("payload") from None
    if visitor.inbox_id != inbox_id:
        raise InvalidToken("inbox")
    if time.time() - visitor.issued_at > max_age_seconds:
        raise InvalidToken("expired")
    return visitor
