"""Encryption of channel secrets with keys derived from ``server.secret_key``.

Secrets are encrypted with Fernet (AES-128-CBC + HMAC-SHA256). Rotation: put the
previous key in ``server.old_secret_keys``; values still decrypt, and
``patra rotate-secrets`` re-encrypts them under the current key.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretsUnreadable(Exception):
    """Stored secrets do not decrypt with any configured key."""


def _fernet(secret_key: str, purpose: bytes) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"patra:" + purpose
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


class SecretBox:
    def __init__(self, secret_key: str, old_keys: list[str] | None = None):
        keys = [secret_key, *(old_keys or [])]
        self._fernet = MultiFernet([_fernet(key, b"secrets") for key in keys])

    def seal(self, values: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(values).encode())

    def open(self, token: bytes | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(bytes(token)))
        except InvalidToken:
            raise SecretsUnreadable(
                "Stored channel secrets cannot be decrypted: the secret key changed. "
                "Put the previous key in server.old_secret_keys."
            ) from None

    def rotate(self, token: bytes) -> bytes:
        return self._fernet.rotate(bytes(token))
