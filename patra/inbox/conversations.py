"""Reading and changing conversations as an agent: lists, views, search, actions.

Everything is scoped to the inboxes the user may see; a conversation outside
them does not exist as far as that user is concerned.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from patra import db, events, runtime
from patra.accounts.service import CurrentUser, visible_inbox_ids
from patra.plugins import call_async

TABS = ("mine", "unassigned", "all")
LABEL_MAX_LENGTH = 50
STATUSES = ("open", "pending", "snoozed", "resolved")
PAGE_SIZE = 25


class ConversationNotFound(LookupError):
    pass


class InvalidChange(ValueError):
    pass


def checked_label_names(names: list[str]) -> list[str]:
    """The names without blanks, or ``InvalidChange`` naming the one too long."""
    names = [name.strip() for name in names if name.strip()]
    for name in names:
        if len(name) > LABEL_MAX_LENGTH:
            raise InvalidChange(
                f"A label can be at most {LABEL_MAX_LENGTH} characters long; "
                f"“{name[:20]}…” has {len(name)}. Shorten it and save again."
            )
    return names


@dataclass
class Page:
    items: list[dict]
    next_cursor: str | None


def encode_cursor(row: dict) -> str:
    raw = json.dumps([row["last_activity_at"].isoformat(), row["id"]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, conversation_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(when), int(conversation_id)
    except (ValueError, TypeError):
        raise InvalidChange(
            "The page cursor is not valid; start from the first page."
        ) from None


async def list_conversations(
    user: CurrentUser,
    *,
    tab: str = "all",
    status: str = "open",
    inbox_id: int | None = None,
    label: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """One page of conversations, newest activity first (keyset pagination)."""
    if tab not in TABS:
        raise InvalidChange(f"Unknown tab {tab!r}; use one of {', '.join(TABS)}.")
    if status not in STATUSES:
        raise InvalidChange(
            f"Unknown status {status!r}; use one of {', '.join(STATUSES)}."
        )
    inbox_ids = await visible_inbox_ids(user)
    if inbox_id is not None:
        inbox_ids = [i for i in inbox_ids if i == inbox_id]
    after = decode_cursor(cursor)

    conditions = [
        "c.workspace_id = $1",
        "c.inbox_id = ANY($2::bigint[])",
        "c.status = $3",
    ]
    args: list = [user.workspace_id, inbox_ids, status]
    if tab == "mine":
        args.append(user.id)
        conditions.append(f"c.assignee_id = ${len(args)}")
    elif tab == "unassigned":
        conditions.append("c.assignee_id IS NULL")
    if label:
        args.append(label)
        conditions.append(
            f"""EXISTS (SELECT 1 FROM conversation_label cl JOIN label l
                ON l.id = cl.label_id WHERE cl.conversation_id = c.id
                AND l.name = ${len(args)})"""
        )
    if after:
        args.extend(after)
        conditions.append(
            f"(c.last_activity_at, c.id) < (${len(args) - 1}, ${len(args)})"
        )
    args.append(min(max(limit, 1), 100) + 1)

    rows = await db.fetch(
        f"""SELECT c.id, c.inbox_id, c.status, c.assignee_id, c.subject, c.priority,
                   c.last_activity_at, c.snoozed_until, c.contact_id,
                   ct.name AS contact_name, ct.email AS contact_email,
                   i.name AS inbox_name, i.channel_type,
                   u.name AS assignee_name,
                   last.text AS preview, last.direction AS preview_direction
            FROM conversation c
            JOIN contact ct ON ct.id = c.contact_id
            JOIN inbox i ON i.id = c.inbox_id
            LEFT JOIN app_user u ON u.id = c.assignee_id
            LEFT JOIN LATERAL (
                SELECT m.text, m.direction FROM message m
                WHERE m.conversation_id = c.id AND m.kind = 'message'
                ORDER BY m.id DESC LIMIT 1
            ) last ON true
            WHERE {" AND ".join(conditions)}
            ORDER BY c.last_activity_at DESC, c.id DESC
            LIMIT ${len(args)}""",
        *args,
    )
    page_size = args[-1] - 1
    next_cursor = encode_cursor(rows[page_size - 1]) if len(rows) > page_size else None
    return Page(items=rows[:page_size], next_cursor=next_cursor)


async def tab_counts(user: CurrentUser, status: str = "open") -> dict[str, int]:
    inbox_ids = await visible_inbox_ids(user)
    row = await db.fetchrow(
        """SELECT count(*) AS all,
                  count(*) FILTER (WHERE assignee_id = $4) AS mine,
                  count(*) FILTER (WHERE assignee_id IS NULL) AS unassigned
           FROM conversation
           WHERE workspace_id = $1 AND inbox_id = ANY($2::bigint[]) AND status = $3""",
        user.workspace_id,
        inbox_ids,
        status,
        user.id,
    )
    return dict(row)


async def get_conversation(user: CurrentUser, conversation_id: int) -> dict:
    """The conversation with contact, inbox, assignee and labels, or NotFound."""
    inbox_ids = await visible_inbox_ids(user)
    row = await db.fetchrow(
        """SELECT c.*, i.name AS inbox_name, i.channel_type, u.name AS assignee_name
           FROM conversation c
           JOIN inbox i ON i.id = c.inbox_id
           LEFT JOIN app_user u ON u.id = c.assignee_id
           WHERE c.id = $1 AND c.workspace_id = $2
             AND c.inbox_id = ANY($3::bigint[])""",
        conversation_id,
        user.workspace_id,
        inbox_ids,
    )
    if row is None:
        raise ConversationNotFound(f"Conversation {conversation_id} does not exist.")
    row["contact"] = await db.fetchrow(
        """SELECT id, name, email, phone, attributes, created_at FROM contact
           WHERE id = $1""",
        row["contact_id"],
    )
    row["labels"] = await db.fetch(
        """SELECT l.id, l.name, l.color FROM label l
           JOIN conversation_label cl ON cl.label_id = l.id
           WHERE cl.conversation_id = $1 ORDER BY l.name""",
        conversation_id,
    )
    return row


MESSAGE_COLUMNS = """m.id, m.conversation_id, m.direction, m.kind, m.text, m.html,
    m.delivery_status, m.error, m.created_at, m.provider_time, m.metadata,
    m.external_id, m.sender_user_id, u.name AS sender_user_name,
    m.sender_contact_id, ct.name AS sender_contact_name
    FROM message m
    LEFT JOIN app_user u ON u.id = m.sender_user_id
    LEFT JOIN contact ct ON ct.id = m.sender_contact_id"""


async def list_messages(
    conversation_id: int,
    after_id: int = 0,
    limit: int = 500,
    *,
    from_oldest: bool = False,
) -> list[dict]:
    """The latest ``limit`` messages after ``after_id``, oldest first, with files.

    ``from_oldest`` takes the first ``limit`` after ``after_id`` instead, so a
    reader walking forward by id never skips any.
    """
    order = "ASC" if from_oldest else "DESC"
    messages = await db.fetch(
        f"""SELECT {MESSAGE_COLUMNS}
            WHERE m.conversation_id = $1 AND m.id > $2
            ORDER BY m.id {order} LIMIT $3""",
        conversation_id,
        after_id,
        limit,
    )
    if not from_oldest:
        messages.reverse()
    return await _with_attachments(messages)


async def _with_attachments(messages: list[dict]) -> list[dict]:
    attachments = await db.fetch(
        """SELECT id, message_id, filename, content_type, size, content_id
           FROM attachment WHERE message_id = ANY($1::bigint[]) ORDER BY id""",
        [message["id"] for message in messages],
    )
    by_message: dict[int, list] = {}
    for attachment in attachments:
        by_message.setdefault(attachment["message_id"], []).append(attachment)
    for message in messages:
        message["attachments"] = by_message.get(message["id"], [])
    return messages


async def get_message(user: CurrentUser, message_id: int) -> dict:
    rows = await db.fetch(
        f"SELECT {MESSAGE_COLUMNS} WHERE m.id = $1 AND m.workspace_id = $2",
        message_id,
        user.workspace_id,
    )
    missing = ConversationNotFound(f"Message {message_id} does not exist.")
    if not rows:
        raise missing
    try:
        await get_conversation(user, rows[0]["conversation_id"])
    except ConversationNotFound:
        raise missing from None  # the same answer: no hint of where it lives
    return (await _with_attachments(rows))[0]


async def get_attachment(user: CurrentUser, attachment_id: int) -> dict:
    row = await db.fetchrow(
        """SELECT a.*, m.conversation_id FROM attachment a
           JOIN message m ON m.id = a.message_id
           WHERE a.id = $1 AND a.workspace_id = $2""",
        attachment_id,
        user.workspace_id,
    )
    missing = ConversationNotFound(f"Attachment {attachment_id} does not exist.")
    if row is None:
        raise missing
    try:
        await get_conversation(user, row["conversation_id"])
    except ConversationNotFound:
        raise missing from None  # the same answer: no hint of where it lives
    return row


async def _record_change(
    user: CurrentUser, conversation: dict, changes: dict, note: str
) -> None:
    """An activity line in the conversation, a live event and the plugin hook."""
    await db.execute(
        """INSERT INTO message (workspace_id, inbox_id, conversation_id, direction,
               kind, sender_user_id, text, metadata)
           VALUES ($1, $2, $3, 'out', 'event', $4, $5, $6)""",
        user.workspace_id,
        conversation["inbox_id"],
        conversation["id"],
        user.id,
        note,
        {"changes": {key: str(value) for key, value in changes.items()}},
    )
    await events.publish(
        "conversation.updated",
        user.workspace_id,
        inbox_id=conversation["inbox_id"],
        conversation_id=conversation["id"],
        changes=list(changes),
    )


async def _after_change(user: CurrentUser, conversation_id: int, changes: dict) -> None:
    async def announce() -> None:
        fresh = await db.fetchrow(
            "SELECT * FROM conversation WHERE id = $1", conversation_id
        )
        fresh.pop("search", None)
        await call_async(
            runtime.current().plugins.hook.conversation_updated,
            conversation=fresh,
            changes=changes,
            actor_id=user.id,
        )

    await db.after_commit(announce)


async def assign(
    user: CurrentUser, conversation_id: int, assignee_id: int | None
) -> None:
    conversation = await get_conversation(user, conversation_id)
    name = None
    if assignee_id is not None:
        name = await db.fetchval(
            """SELECT u.name FROM app_user u JOIN membership m ON m.user_id = u.id
               WHERE u.id = $1 AND m.workspace_id = $2 AND u.is_active
                 AND (m.role IN ('owner', 'admin') OR EXISTS (
                     SELECT 1 FROM inbox_member im
                     WHERE im.user_id = u.id AND im.inbox_id = $3))""",
            assignee_id,
            user.workspace_id,
            conversation["inbox_id"],
        )
        if name is None:
            raise InvalidChange(
                "That agent cannot be assigned: they are not in this inbox."
            )
    async with db.transaction():
        await db.execute(
            "UPDATE conversation SET assignee_id = $2 WHERE id = $1",
            conversation_id,
            assignee_id,
        )
        note = (
            f"{user.name} assigned this to {name}"
            if name
            else f"{user.name} unassigned this"
        )
        await _record_change(user, conversation, {"assignee_id": assignee_id}, note)
    await _after_change(user, conversation_id, {"assignee_id": assignee_id})


async def set_status(
    user: CurrentUser,
    conversation_id: int,
    status: str,
    snoozed_until: datetime | None = None,
) -> None:
    if status not in STATUSES:
        raise InvalidChange(
            f"Unknown status {status!r}; use one of {', '.join(STATUSES)}."
        )
    if status == "snoozed" and snoozed_until is None:
        raise InvalidChange("Choose until when to snooze the conversation.")
    if status != "snoozed":
        snoozed_until = None
    conversation = await get_conversation(user, conversation_id)
    async with db.transaction():
        if status != "resolved" and conversation["thread_key"] is None:
            # Reopening must not make a second open conversation for the contact.
            clash = await db.fetchval(
                """SELECT id FROM conversation WHERE inbox_id = $1 AND contact_id = $2
                   AND status <> 'resolved' AND thread_key IS NULL AND id <> $3""",
                conversation["inbox_id"],
                conversation["contact_id"],
                conversation_id,
            )
            if clash:
                raise InvalidChange(
                    f"This contact already has an open conversation (#{clash}); "
                    "continue there or resolve it first."
                )
        await db.execute(
            "UPDATE conversation SET status = $2, snoozed_until = $3 WHERE id = $1",
            conversation_id,
            status,
            snoozed_until,
        )
        note = f"{user.name} marked this {status}"
        if snoozed_until:
            note = f"{user.name} snoozed this until {snoozed_until:%Y-%m-%d %H:%M} UTC"
        await _record_change(user, conversation, {"status": status}, note)
    await _after_change(user, conversation_id, {"status": status})


async def set_labels(user: CurrentUser, conversation_id: int, names: list[str]) -> None:
    conversation = await get_conversation(user, conversation_id)
    names = sorted({name.lower() for name in checked_label_names(names)})
    async with db.transaction():
        for name in names:
            await db.execute(
                """INSERT INTO label (workspace_id, name) VALUES ($1, $2)
                   ON CONFLICT (workspace_id, name) DO NOTHING""",
                user.workspace_id,
                name,
            )
        await db.execute(
            "DELETE FROM conversation_label WHERE conversation_id = $1", conversation_id
        )
        await db.execute(
            """INSERT INTO conversation_label (conversation_id, label_id)
               SELECT $1, id FROM label WHERE workspace_id = $2 AND name = ANY($3)""",
            conversation_id,
            user.workspace_id,
            names,
        )
        await _record_change(
            user,
            conversation,
            {"labels": ",".join(names)},
            f"{user.name} set labels: {', '.join(names) or 'none'}",
        )
    await _after_change(user, conversation_id, {"labels": names})


async def search(user: CurrentUser, query: str, limit: int = 50) -> dict:
    """Full-text search over message text and contacts, in the user's inboxes."""
    query = query.strip()
    if not query:
        return {"messages": [], "contacts": []}
    inbox_ids = await visible_inbox_ids(user)
    # The newest hits first, joined and highlighted only once they are chosen:
    # a phrase or a common word can match thousands of messages.
    messages = await db.fetch(
        """SELECT m.id, m.conversation_id, m.text, m.created_at, m.direction,
                  ct.name AS contact_name,
                  ts_headline('simple', m.text, q,
                      'MaxFragments=1, MaxWords=18, MinWords=6,
                       StartSel=<mark>, StopSel=</mark>') AS snippet
           FROM (SELECT id FROM message
                 WHERE workspace_id = $1 AND inbox_id = ANY($2::bigint[])
                   AND search @@ websearch_to_tsquery('simple', $3)
                 ORDER BY id DESC LIMIT $4) hit
           JOIN message m ON m.id = hit.id
           JOIN conversation c ON c.id = m.conversation_id
           JOIN contact ct ON ct.id = c.contact_id,
                websearch_to_tsquery('simple', $3) q
           ORDER BY m.id DESC""",
        user.workspace_id,
        inbox_ids,
        query,
        limit,
    )
    # Matching contacts through the GIN index first; ordered by id, the
    # planner would otherwise walk every contact testing each one.
    contacts = await db.fetch(
        """WITH found AS MATERIALIZED (
               SELECT id, name, email, phone FROM contact
               WHERE workspace_id = $1
                 AND search @@ websearch_to_tsquery('simple', $3))
           SELECT ct.id, ct.name, ct.email, ct.phone,
                  (SELECT max(c.id) FROM conversation c WHERE c.contact_id = ct.id
                     AND c.inbox_id = ANY($2::bigint[])) AS conversation_id
           FROM found ct
           WHERE EXISTS (SELECT 1 FROM conversation c WHERE c.contact_id = ct.id
                           AND c.inbox_id = ANY($2::bigint[]))
           ORDER BY ct.id DESC LIMIT $4""",
        user.workspace_id,
        inbox_ids,
        query,
        limit,
    )
    return {"messages": messages, "contacts": contacts}


async def find_contacts(
    user: CurrentUser, email: str | None = None, query: str | None = None
):
    """Contacts in the user's inboxes by exact email or a search query."""
    inbox_ids = await visible_inbox_ids(user)
    if email:
        return await db.fetch(
            """SELECT ct.id, ct.name, ct.email, ct.phone, ct.created_at FROM contact ct
               WHERE ct.workspace_id = $1 AND lower(ct.email) = lower($2)
                 AND EXISTS (SELECT 1 FROM conversation c WHERE c.contact_id = ct.id
                             AND c.inbox_id = ANY($3::bigint[]))""",
            user.workspace_id,
            email,
            inbox_ids,
        )
    return (await search(user, query or ""))["contacts"]


async def get_contact(user: CurrentUser, contact_id: int) -> dict:
    inbox_ids = await visible_inbox_ids(user)
    row = await db.fetchrow(
        """SELECT ct.id, ct.name, ct.email, ct.phone, ct.attributes, ct.created_at
           FROM contact ct
           WHERE ct.id = $1 AND ct.workspace_id = $2 AND EXISTS (
               SELECT 1 FROM conversation c WHERE c.contact_id = ct.id
               AND c.inbox_id = ANY($3::bigint[]))""",
        contact_id,
        user.workspace_id,
        inbox_ids,
    )
    if row is None:
        raise ConversationNotFound(f"Contact {contact_id} does not exist.")
    row["conversations"] = await db.fetch(
        """SELECT id, status, subject, last_activity_at, inbox_id FROM conversation
           WHERE contact_id = $1 AND inbox_id = ANY($2::bigint[])
           ORDER BY last_activity_at DESC LIMIT 20""",
        contact_id,
        inbox_ids,
    )
    return row


async def assignable_agents(user: CurrentUser, inbox_id: int) -> list[dict]:
    return await db.fetch(
        """SELECT u.id, u.name FROM app_user u JOIN membership m ON m.user_id = u.id
           WHERE m.workspace_id = $1 AND u.is_active
             AND (m.role IN ('owner', 'admin') OR EXISTS (
                 SELECT 1 FROM inbox_member im WHERE im.user_id = u.id
                 AND im.inbox_id = $2))
           ORDER BY u.name""",
        user.workspace_id,
        inbox_id,
    )


async def move_message(
    user: CurrentUser, message_id: int, to_conversation_id: int
) -> None:
    """Move a customer's or agent's message into another conversation of its inbox.

    For when threading guessed wrong. Both conversations must be visible to the
    user and belong to the same inbox; plugins move their own records through
    the ``message_moved`` hook in the same transaction.
    """
    message = await get_message(user, message_id)
    source = await get_conversation(user, message["conversation_id"])
    target = await get_conversation(user, to_conversation_id)
    if target["inbox_id"] != source["inbox_id"]:
        raise InvalidChange(
            "A message can only move to a conversation of the same inbox."
        )
    if target["id"] == source["id"]:
        raise InvalidChange("The message is already in that conversation.")
    if message["kind"] != "message":
        raise InvalidChange("Only messages can be moved, not notes or activity lines.")
    async with db.transaction():
        await db.execute(
            "UPDATE message SET conversation_id = $2, updated_at = now() WHERE id = $1",
            message_id,
            to_conversation_id,
        )
        await db.execute(
            """UPDATE conversation SET last_activity_at = greatest(last_activity_at,
                   (SELECT created_at FROM message WHERE id = $2)) WHERE id = $1""",
            to_conversation_id,
            message_id,
        )
        await call_async(
            runtime.current().plugins.hook.message_moved,
            message=message,
            from_conversation_id=source["id"],
            to_conversation_id=to_conversation_id,
        )
        note = (
            f"{user.name} moved message #{message_id} to conversation #{target['id']}"
        )
        await _record_change(user, source, {"moved_message": message_id}, note)
        await _record_change(
            user,
            target,
            {"moved_message": message_id},
            f"{user.name} moved message #{message_id} here from #{source['id']}",
        )
