"""Local-disk blob storage: files under ``[storage] path`` (default data/files)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from patra.hookspecs import hookimpl
from patra.storage import BlobNotFound


class LocalDiskStore:
    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise BlobNotFound(key)
        return path

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".part")
        temporary.write_bytes(data)
        os.replace(temporary, path)

    async def open(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None


@hookimpl
def register_blob_stores(config):
    return {"localdisk": LocalDiskStore(config.storage_path)}
