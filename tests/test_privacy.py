"""A contact's data on request: export, erasure, retention, suggestions."""

import json
import os
import subprocess
import sys

from patra import db, privacy
from patra.channels import InboundAttachment, InboundMessage
from patra.hookspecs import hookimpl
from patra.inbox.ingest import ingest_message


async def seed(inbox_id, visitor="v1", text="Where is my order 5531?"):
    return await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id=visitor,
            external_id=f"{visitor}-1",
            text=text,
            contact_name="Rosa",
            contact_email="rosa@example.test",
            attachments=[InboundAttachment("receipt.pdf", "application/pdf", b"%PDF")],
        )
    )


async def test_export_contains_profile_conversations_and_files(
    workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    result = await seed(inbox_id)
    document = await privacy.export_contact(workspace.id, result.contact_id, None)

    json.dumps(document)  # must be serialisable as it is
    assert document["contact"]["email"] == "rosa@example.test"
    [conversation] = document["conversations"]
    assert conversation["messages"][0]["text"] == "Where is my order 5531?"
    assert conversation["attachments"][0]["filename"] == "receipt.pdf"
    assert document["identities"][0]["external_id"] == "v1"


async def test_erasure_removes_everything_and_keeps_other_contacts(
    workspace, make_inbox, test_channel, patra_runtime
):
    inbox_id = await make_inbox("testchannel")
    erased = await seed(inbox_id, "v1")
    kept = await seed(inbox_id, "v2", text="Other customer")
    blob_key = await db.fetchval(
        "SELECT blob_key FROM attachment WHERE message_id = $1", erased.message_id
    )

    assert await privacy.erase_contact(workspace.id, erased.contact_id, None) == 1

    assert (
        await db.fetchval("SELECT count(*) FROM message WHERE text LIKE '%5531%'") == 0
    )
    assert await db.fetchval("SELECT count(*) FROM contact") == 1
    assert await db.fetchval("SELECT count(*) FROM message") == 1
    assert not (patra_runtime.config.storage_path / blob_key).exists()
    audit = await db.fetchrow(
        "SELECT details FROM audit_event WHERE action = 'contact.erased'"
    )
    assert "rosa" not in json.dumps(audit["details"])
    assert kept.contact_id != erased.contact_id


async def test_a_plugin_refusing_erasure_leaves_the_contact_intact(
    workspace, make_inbox, test_channel, patra_runtime
):
    class Refuses:
        @staticmethod
        @hookimpl
        def erase_contact_data(workspace_id, contact_id):
            raise RuntimeError("legal hold on this contact")

    inbox_id = await make_inbox("testchannel")
    result = await seed(inbox_id)
    plugin = Refuses()
    patra_runtime.plugins.register(plugin, name="refuses")
    try:
        try:
            await privacy.erase_contact(workspace.id, result.contact_id, None)
        except RuntimeError as error:
            assert "legal hold" in str(error)
        else:
            raise AssertionError("erasure went ahead despite the plugin")
    finally:
        patra_runtime.plugins.unregister(plugin)
    assert await db.fetchval("SELECT count(*) FROM message") == 1


async def test_retention_deletes_only_conversations_idle_long_enough(
    workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    old = await seed(inbox_id, "old")
    recent = await seed(inbox_id, "recent")
    await db.execute(
        "UPDATE conversation SET last_activity_at = now() - interval '40 days' "
        "WHERE id = $1",
        old.conversation_id,
    )
    assert await privacy.apply_retention(0) == 0
    assert await privacy.apply_retention(30) == 1
    remaining = await db.fetch("SELECT id FROM conversation")
    assert [row["id"] for row in remaining] == [recent.conversation_id]


async def test_erase_command_needs_confirmation(
    workspace, make_inbox, test_channel, patra_config
):
    inbox_id = await make_inbox("testchannel")
    result = await seed(inbox_id)
    env = {
        **os.environ,
        "PATRA_DATABASE_URL": patra_config.database.url,
        "PATRA_SECRET_KEY": patra_config.server.secret_key,
        "PATRA_DATA_DIR": patra_config.server.data_dir,
    }
    command = [
        sys.executable,
        "-m",
        "patra.cli",
        "contacts",
        "erase",
        str(result.contact_id),
    ]
    refused = subprocess.run(command, capture_output=True, text=True, env=env)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert await db.fetchval("SELECT count(*) FROM contact") == 1

    done = subprocess.run([*command, "--yes"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert await db.fetchval("SELECT count(*) FROM contact") == 0


async def test_offline_suggestions_come_from_matching_canned_responses(
    workspace, make_inbox, test_channel
):
    from patra.accounts.service import authenticate
    from patra.ai import suggest_replies

    inbox_id = await make_inbox("testchannel")
    result = await seed(inbox_id, text="When will my order ship?")
    await db.execute(
        """INSERT INTO canned_response (workspace_id, short_code, content) VALUES
           ($1, 'shipping', 'Orders ship within two days.'),
           ($1, 'refund', 'Refunds take five days.')""",
        workspace.id,
    )
    owner = await authenticate(workspace.owner.email, workspace.owner.password)
    assert await suggest_replies(owner, result.conversation_id) == [
        "Orders ship within two days."
    ]
