"""Text that PostgreSQL accepts: no NUL characters, no lone surrogates."""

from __future__ import annotations


def clean_text(value: str | None) -> str:
    if not value:
        return ""
    value = value.replace("\x00", "\ufffd")
    return value.encode("utf-8", "replace").decode("utf-8")
