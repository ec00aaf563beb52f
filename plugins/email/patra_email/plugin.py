"""The hooks through which Patra loads the email channel."""

from __future__ import annotations

from pathlib import Path

from patra.hookspecs import hookimpl

from patra_email.channel import EmailChannel
from patra_email.importer import add_commands
from patra_email.settings import EmailPluginSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_channel_types():
    return [EmailChannel]


@hookimpl
def register_migrations():
    return [("email", MIGRATIONS)]


@hookimpl
def plugin_settings_schema():
    return ("email", EmailPluginSettings)


@hookimpl
def register_commands(subparsers):
    add_commands(subparsers)


@hookimpl
async def erase_contact_data(workspace_id, contact_id):
    """Delete the raw copies of the contact's mail kept for download."""
    from patra import db, runtime

    rows = await db.fetch(
        """SELECT m.metadata -> 'email' ->> 'raw_key' AS raw_key
           FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE m.workspace_id = $1
             AND (c.contact_id = $2 OR m.sender_contact_id = $2)
             AND m.metadata -> 'email' ? 'raw_key'""",
        workspace_id,
        contact_id,
    )
    store = runtime.current().blobs
    for row in rows:
        await store.delete(row["raw_key"])


@hookimpl
async def message_moved(message, from_conversation_id, to_conversation_id):
    """Move the Message-IDs of a moved email, so later replies follow it."""
    from patra_email.threading import move_ids

    await move_ids(message["id"], to_conversation_id)
