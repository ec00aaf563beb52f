"""Finding where the quoted earlier mail starts in a reply.

The full text is kept; the offset lets the inbox collapse the quote. Mail
clients mark quotes in a handful of ways: an attribution line ("On ... wrote:"
and its translations), Outlook's header block or separator, or a trailing run
of lines starting with ">".
"""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"^[ \t]*(?:On|Am|Le|El|Op|Il|Em|W dniu|Den|På)\b[^\n]{0,300}"
    r"(?:\n[^\n]{0,200})?"
    r"\b(?:wrote|schrieb|a écrit|escribió|schreef|ha scritto|escreveu|napisał"
    r"|skrev)\b(?:[^\n]{0,200}:)?[ \t]*:?[ \t]*$",
    re.MULTILINE,
)
_SEPARATOR = re.compile(
    r"^[ \t]*-{2,}[ \t]*(?:Original Message|Ursprüngliche Nachricht|"
    r"Message d'origine|Mensaje original|Messaggio originale|"
    r"Oorspronkelijk bericht|Mensagem original)[ \t]*-{2,}[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_OUTLOOK_HEADER = re.compile(
    r"^(?:_{8,}[ \t]*\n)?[ \t]*\*?(?:From|Von|De|Van|Da|Od)\*?:[^\n]+\n"
    r"[ \t]*\*?(?:Sent|Gesendet|Envoyé|Enviado|Verzonden|Inviato|Date|Wysłano)"
    r"\*?:",
    re.MULTILINE,
)


def find_quote_start(text: str) -> int | None:
    """Offset in ``text`` where quoted earlier mail starts, or None."""
    candidates = [
        match.start()
        for pattern in (_ATTRIBUTION, _SEPARATOR, _OUTLOOK_HEADER)
        if (match := pattern.search(text))
    ]
    trailing = _trailing_quote_block(text)
    if trailing is not None:
        candidates.append(trailing)
    # A message that is nothing but a quote has no new text to show instead.
    found = [offset for offset in candidates if text[:offset].strip()]
    return min(found) if found else None


def _trailing_quote_block(text: str) -> int | None:
    """Start of the run of ">" lines that ends the text (blank lines allowed)."""
    offset = len(text)
    start = None
    for line in reversed(text.splitlines(keepends=True)):
        offset -= len(line)
        stripped = line.strip()
        if stripped.startswith(">"):
            start = offset
        elif stripped:
            break
    return start
