"""Headers for sending a stored file to a browser."""

from __future__ import annotations

from urllib.parse import quote


def content_disposition(filename: str, inline: bool = False) -> str:
    """A Content-Disposition value that survives any file name.

    HTTP headers are Latin-1, so the plain ``filename`` holds an ASCII stand-in
    (printable characters only, quotes and backslashes replaced) for old clients,
    and ``filename*`` (RFC 6266 / RFC 5987) holds the exact name as UTF-8.
    """
    name = filename or "attachment"
    ascii_name = "".join(
        char if " " <= char <= "~" and char not in '"\\' else "_" for char in name
    )
    disposition = "inline" if inline else "attachment"
    return (
        f'{disposition}; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(name, safe='')}"
    )
