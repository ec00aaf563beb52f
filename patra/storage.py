"""Blob storage for attachments and raw messages.

The active store is chosen by ``[storage] backend`` among those plugins
register through ``register_blob_stores``; local disk ships by default.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def open(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def size(self, key: str) -> int: ...


class BlobNotFound(Exception):
    pass


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


def new_key(workspace_id: int, filename: str) -> str:
    """A fresh key that never reuses the uploaded name as a path."""
    suffix = PurePosixPath(filename).suffix.lower()[:16]
    if not suffix[1:].isalnum():
        suffix = ""
    return f"{workspace_id}/{secrets.token_hex(2)}/{secrets.token_hex(16)}{suffix}"


async def store_bytes(
    store: BlobStore, workspace_id: int, filename: str, data: bytes
) -> StoredBlob:
    key = new_key(workspace_id, filename)
    await store.put(key, data)
    return StoredBlob(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())
