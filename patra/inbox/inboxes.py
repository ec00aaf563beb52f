"""Creating and configuring inboxes (one connected channel account each)."""

from __future__ import annotations

from typing import Any

from patra import db, events, runtime
from patra.accounts.service import audit
from patra.channels import ChannelType


class InvalidSettings(ValueError):
    """Inbox settings that do not fit the channel; ``problems`` names each field."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{name}: {why}" for name, why in problems.items()))


def _split_settings(
    channel: type[ChannelType], values: dict[str, Any], keep_secrets: dict[str, Any]
) -> tuple[dict, dict]:
    """Validate ``values`` against the channel's fields; (plain, secret) dicts."""
    plain: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for field in channel.settings:
        value = values.get(field.name, field.default)
        if field.secret and value in (None, "") and field.name in keep_secrets:
            secret[field.name] = keep_secrets[field.name]
            continue
        if field.kind == "number" and value not in (None, ""):
            try:
                value = int(value)
            except (TypeError, ValueError):
                problems[field.name] = f"{field.label} must be a whole number."
                continue
        if field.kind == "boolean":
            value = value in (True, "true", "on", "1", 1)
        if field.required and value in (None, ""):
            problems[field.name] = f"{field.label} is required."
            continue
        (secret if field.secret else plain)[field.name] = value
    if problems:
        raise InvalidSettings(problems)
    return plain, secret


async def create_inbox(
    workspace_id: int,
    name: str,
    channel_type: str,
    settings: dict[str, Any],
    actor_id: int | None = None,
) -> int:
    current = runtime.current()
    channel = current.plugins.channel(channel_type)
    if not name.strip():
        raise InvalidSettings({"name": "Give the inbox a name."})
    plain, secret = _split_settings(channel, settings, {})
    async with db.transaction():
        inbox_id = await db.fetchval(
            """INSERT INTO inbox (workspace_id, name, channel_type, settings, secrets,
                   connected) VALUES ($1, $2, $3, $4, $5, true) RETURNING id""",
            workspace_id,
            name.strip(),
            channel_type,
            plain,
            current.secrets.seal(secret) if secret else None,
        )
        await audit(
            workspace_id,
            actor_id,
            "inbox.created",
            "inbox",
            inbox_id,
            {"channel_type": channel_type},
        )
        await events.publish("inbox.changed", workspace_id, inbox_id=inbox_id)
    return inbox_id


async def update_inbox(
    workspace_id: int,
    inbox_id: int,
    name: str,
    settings: dict[str, Any],
    connected: bool,
    actor_id: int | None = None,
) -> None:
    current = runtime.current()
    row = await get_inbox(workspace_id, inbox_id)
    channel = current.plugins.channel(row["channel_type"])
    kept = current.secrets.open(row["secrets"])
    plain, secret = _split_settings(channel, settings, kept)
    async with db.transaction():
        await db.execute(
            """UPDATE inbox SET name = $3, settings = $4, secrets = $5, connected = $6
               WHERE id = $1 AND workspace_id = $2""",
            inbox_id,
            workspace_id,
            name.strip() or row["name"],
            plain,
            current.secrets.seal(secret) if secret else None,
            connected,
        )
        await audit(workspace_id, actor_id, "inbox.updated", "inbox", inbox_id)
        await events.publish("inbox.changed", workspace_id, inbox_id=inbox_id)


async def get_inbox(workspace_id: int, inbox_id: int) -> dict:
    row = await db.fetchrow(
        "SELECT * FROM inbox WHERE id = $1 AND workspace_id = $2",
        inbox_id,
        workspace_id,
    )
    if row is None:
        raise LookupError(f"Inbox {inbox_id} does not exist.")
    return row


async def list_inboxes(workspace_id: int) -> list[dict]:
    return await db.fetch(
        """SELECT i.id, i.name, i.channel_type, i.connected, i.created_at,
                  (SELECT count(*) FROM inbox_member im WHERE im.inbox_id = i.id)
                      AS member_count
           FROM inbox i WHERE workspace_id = $1 ORDER BY i.id""",
        workspace_id,
    )


async def set_members(
    workspace_id: int, inbox_id: int, user_ids: list[int], actor_id: int | None = None
) -> None:
    await get_inbox(workspace_id, inbox_id)
    async with db.transaction():
        await db.execute("DELETE FROM inbox_member WHERE inbox_id = $1", inbox_id)
        await db.execute(
            """INSERT INTO inbox_member (inbox_id, user_id)
               SELECT $1, m.user_id FROM membership m
               WHERE m.workspace_id = $2 AND m.user_id = ANY($3::bigint[])""",
            inbox_id,
            workspace_id,
            user_ids,
        )
        await audit(
            workspace_id,
            actor_id,
            "inbox.members_changed",
            "inbox",
            inbox_id,
            {"user_ids": user_ids},
        )
        await events.publish("inbox.changed", workspace_id, inbox_id=inbox_id)


async def members(inbox_id: int) -> list[int]:
    rows = await db.fetch(
        "SELECT user_id FROM inbox_member WHERE inbox_id = $1", inbox_id
    )
    return [row["user_id"] for row in rows]
