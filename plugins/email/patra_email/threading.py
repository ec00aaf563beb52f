"""Which conversation an email belongs to.

Every Message-ID an inbox received, sent or saw referenced is kept with its
conversation (table ``email_message_id``). A new message joins the
conversation of its In-Reply-To id, else of its References ids tried newest
first. A ``[#123]`` subject token joins conversation 123 only when the sender
already takes part in it, so a guessed number cannot read someone else's
thread. Anything else starts a new conversation.
"""

from __future__ import annotations

import re

from patra import db

from patra_email.parse import ParsedEmail

_SUBJECT_TOKEN = re.compile(r"\[#(\d{1,18})\]")


def subject_token(conversation_id: int) -> str:
    return f"[#{conversation_id}]"


def candidate_ids(parsed: ParsedEmail) -> list[str]:
    """Ids to match, best first: In-Reply-To, then References newest first."""
    ids = [*parsed.in_reply_to, *reversed(parsed.references)]
    if parsed.report is not None and parsed.report.original_message_id:
        ids.insert(0, parsed.report.original_message_id)
    return list(dict.fromkeys(ids))


async def find_conversation(
    inbox_id: int, parsed: ParsedEmail, sender_address: str
) -> int | None:
    """The existing conversation this message continues, or None for a new one."""
    # Last resort: a reply that arrived before this message already named it.
    ids = [*candidate_ids(parsed), *([parsed.message_id] if parsed.message_id else [])]
    if ids:
        found = await db.fetchval(
            """SELECT known.conversation_id
               FROM unnest($2::text[]) WITH ORDINALITY AS wanted(id, position)
               JOIN email_message_id known
                 ON known.inbox_id = $1 AND known.message_id = wanted.id
               ORDER BY wanted.position LIMIT 1""",
            inbox_id,
            ids,
        )
        if found is not None:
            return found

    for match in _SUBJECT_TOKEN.finditer(parsed.subject):
        conversation_id = int(match.group(1))
        if await takes_part(inbox_id, conversation_id, sender_address):
            return conversation_id
    return None


async def takes_part(inbox_id: int, conversation_id: int, address: str) -> bool:
    """Whether ``address`` is the conversation's contact, or wrote or was copied
    in it."""
    return await db.fetchval(
        """SELECT EXISTS (
               SELECT 1 FROM conversation c
               JOIN contact_identity identity
                 ON identity.contact_id = c.contact_id
                AND identity.inbox_id = c.inbox_id
               WHERE c.id = $2 AND c.inbox_id = $1 AND identity.external_id = $3
           ) OR EXISTS (
               SELECT 1 FROM message m
               WHERE m.conversation_id = $2 AND m.inbox_id = $1
                 AND m.metadata -> 'email' -> 'participants' ? $3
           )""",
        inbox_id,
        conversation_id,
        address,
    )


async def remember_ids(
    inbox_id: int,
    conversation_id: int,
    own_ids: list[str],
    referenced: list[str],
    origin: str,
    patra_message_id: int | None = None,
) -> None:
    """Record a message's own ids (received or sent) and the ids it mentions.

    ``patra_message_id`` is the stored message the ids belong to; referenced
    ids seen here first belong to it too, so they move with it.
    """
    own_ids = [item for item in dict.fromkeys(own_ids) if item]
    if own_ids:
        await db.execute(
            """INSERT INTO email_message_id
                   (inbox_id, message_id, conversation_id, origin, patra_message_id)
               SELECT $1, id, $3, $4, $5 FROM unnest($2::text[]) AS ids(id)
               ON CONFLICT (inbox_id, message_id) DO UPDATE
               SET origin = $4,
                   patra_message_id = coalesce($5, email_message_id.patra_message_id)
               WHERE email_message_id.origin = 'referenced'""",
            inbox_id,
            own_ids,
            conversation_id,
            origin,
            patra_message_id,
        )
    others = [
        item for item in dict.fromkeys(referenced) if item and item not in own_ids
    ]
    if others:
        await db.execute(
            """INSERT INTO email_message_id
                   (inbox_id, message_id, conversation_id, origin, patra_message_id)
               SELECT $1, id, $3, 'referenced', $4
               FROM unnest($2::text[]) AS ids(id)
               ON CONFLICT (inbox_id, message_id) DO NOTHING""",
            inbox_id,
            others,
            conversation_id,
            patra_message_id,
        )


async def move_ids(patra_message_id: int, to_conversation_id: int) -> None:
    """Move the ids a stored message received, sent or first mentioned."""
    await db.execute(
        """UPDATE email_message_id SET conversation_id = $2
           WHERE patra_message_id = $1""",
        patra_message_id,
        to_conversation_id,
    )


async def sent_message_for(inbox_id: int, message_id: str) -> int | None:
    """The stored reply one of whose copies carried ``message_id``."""
    return await db.fetchval(
        """SELECT patra_message_id FROM email_message_id
           WHERE inbox_id = $1 AND message_id = $2 AND origin = 'sent'""",
        inbox_id,
        message_id,
    )


async def is_our_message_id(inbox_id: int, message_id: str | None) -> bool:
    if not message_id:
        return False
    return await db.fetchval(
        """SELECT EXISTS (SELECT 1 FROM email_message_id
               WHERE inbox_id = $1 AND message_id = $2 AND origin = 'sent')""",
        inbox_id,
        message_id,
    )


async def conversation_ids(conversation_id: int, limit: int = 20) -> list[str]:
    """Ids received or sent in a conversation, oldest first: the root and the
    most recent ones, at most ``limit``."""
    rows = await db.fetch(
        """SELECT message_id FROM email_message_id
           WHERE conversation_id = $1 AND origin <> 'referenced'
           ORDER BY created_at, message_id""",
        conversation_id,
    )
    ids = [row["message_id"] for row in rows]
    if len(ids) > limit:
        ids = ids[:1] + ids[-(limit - 1) :]
    return ids
