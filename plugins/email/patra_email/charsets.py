"""Turning mail bytes into text whatever the charset label says.

Mail declares charsets Python does not know (``iso-8859-8-i``,
``unknown-8bit``, ``x-mac-roman``), declares the wrong one, or declares none.
Decoding never fails here: a known label is tried first, then UTF-8, then
Windows-1252, and the last resort keeps every readable character and puts a
replacement character where bytes made no sense.
"""

from __future__ import annotations

import codecs
import email.header
import re

# Labels seen in real mail that Python's codec registry does not resolve, or
# resolves to a narrower charset than senders actually use (as browsers do).
_ALIASES = {
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-9": "cp1254",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}

# Labels that say nothing about the bytes: guess as if no label was given.
_UNKNOWN = {
    "unknown-8bit",
    "x-unknown",
    "unknown",
    "8bit",
    "default",
    "x-user-defined",
    "us-ascii",
    "ascii",
    "",
}


def codec_for(label: str | None) -> str | None:
    """The Python codec for a charset label, or None when it names none we trust."""
    if label is None:
        return None
    name = label.strip().strip("\"'").lower()
    if name in _UNKNOWN:
        return None
    name = _ALIASES.get(name, name)
    for candidate in (name, name.removeprefix("x-")):
        try:
            info = codecs.lookup(candidate)
        except LookupError:
            continue
        # bytes-to-bytes codecs such as base64 or zlib are not charsets
        if getattr(info, "_is_text_encoding", True):
            return info.name
    return None


def decode_bytes(data: bytes, label: str | None = None) -> str:
    """Decode ``data``; never raises, never loses readable characters."""
    declared = codec_for(label)
    attempts = [declared] if declared else []
    attempts.append("utf-8")
    if declared is None:
        attempts.append("cp1252")
    for codec in attempts:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(declared or "utf-8", errors="replace")


def has_raw_bytes(value: str) -> bool:
    """True when ``value`` carries undecoded bytes as surrogate escapes."""
    return any("\udc80" <= character <= "\udcff" for character in value)


def repair(value: str) -> str:
    """Decode the raw 8-bit bytes a header parser left as surrogate escapes."""
    if not has_raw_bytes(value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"))


_FOLDING = re.compile(r"\r?\n[ \t]*")


def decode_header_value(raw: str | None) -> str:
    """A header's text with RFC 2047 encoded-words and raw 8-bit bytes decoded.

    Adjacent encoded-words in one charset are joined before decoding, so a
    multibyte character split across two words survives.
    """
    if not raw:
        return ""
    unfolded = _FOLDING.sub(" ", str(raw))
    try:
        chunks = email.header.decode_header(unfolded)
    except (ValueError, LookupError, AssertionError):
        return repair(unfolded)
    pieces = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            pieces.append(repair(chunk))
        else:
            pieces.append(decode_bytes(chunk, charset))
    return "".join(pieces).strip()
