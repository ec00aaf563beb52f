"""The inbound path every channel shares."""

import asyncio

from patra import db
from patra.channels import InboundAttachment, InboundMessage, InboundStatus
from patra.inbox.ingest import ingest_message, record_status


def inbound(inbox_id: int, external_id: str, visitor: str = "visitor-1", **extra):
    return InboundMessage(
        inbox_id=inbox_id,
        contact_external_id=visitor,
        external_id=external_id,
        text=extra.pop("text", f"hello {external_id}"),
        contact_name=extra.pop("contact_name", "Visitor"),
        **extra,
    )


async def count(table: str) -> int:
    return await db.fetchval(f"SELECT count(*) FROM {table}")


async def test_redelivered_event_changes_nothing(make_inbox, test_channel):
    inbox_id = await make_inbox("testchannel")
    first = await ingest_message(inbound(inbox_id, "evt-1"))
    again = await ingest_message(inbound(inbox_id, "evt-1", text="changed text"))

    assert again.duplicate and again.message_id == first.message_id
    assert await count("message") == 1
    assert await count("contact") == 1
    assert await db.fetchval("SELECT text FROM message") == "hello evt-1"


async def test_twenty_concurrent_first_messages_make_one_conversation(
    make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    results = await asyncio.gather(
        *(ingest_message(inbound(inbox_id, f"m-{n}", "new-visitor")) for n in range(20))
    )

    assert len({result.conversation_id for result in results}) == 1
    assert len({result.contact_id for result in results}) == 1
    assert await count("conversation") == 1
    assert await count("contact") == 1
    assert await count("message") == 20


async def test_concurrent_redelivery_of_one_event_stores_it_once(
    make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    results = await asyncio.gather(
        *(ingest_message(inbound(inbox_id, "same-event", "v")) for _ in range(10))
    )
    assert sum(not result.duplicate for result in results) == 1
    assert await count("message") == 1


async def test_message_after_resolution_opens_a_new_conversation(
    make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    first = await ingest_message(inbound(inbox_id, "a"))
    await db.execute("UPDATE conversation SET status = 'resolved'")
    second = await ingest_message(inbound(inbox_id, "b"))
    assert second.conversation_id != first.conversation_id
    assert second.contact_id == first.contact_id


async def test_customer_message_reopens_pending_conversation(make_inbox, test_channel):
    inbox_id = await make_inbox("testchannel")
    first = await ingest_message(inbound(inbox_id, "a"))
    await db.execute("UPDATE conversation SET status = 'pending'")
    await ingest_message(inbound(inbox_id, "b"))
    status = await db.fetchval(
        "SELECT status FROM conversation WHERE id = $1", first.conversation_id
    )
    assert status == "open"


async def test_nul_bytes_and_lone_surrogates_are_stored_safely(
    make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    await ingest_message(inbound(inbox_id, "x", text="bad\x00byte \ud800 here"))
    stored = await db.fetchval("SELECT text FROM message")
    assert "\x00" not in stored and stored.startswith("bad")


async def test_attachments_are_stored_with_checksum(
    make_inbox, test_channel, patra_runtime
):
    inbox_id = await make_inbox("testchannel")
    result = await ingest_message(
        inbound(
            inbox_id,
            "with-file",
            attachments=[InboundAttachment("photo.png", "image/png", b"\x89PNG data")],
        )
    )
    row = await db.fetchrow(
        "SELECT * FROM attachment WHERE message_id = $1", result.message_id
    )
    assert row["filename"] == "photo.png" and row["size"] == 9
    assert await patra_runtime.blobs.open(row["blob_key"]) == b"\x89PNG data"


async def test_delivery_status_only_moves_forward(make_inbox, test_channel):
    inbox_id = await make_inbox("testchannel")
    conversation = (await ingest_message(inbound(inbox_id, "in-1"))).conversation_id
    await db.execute(
        """INSERT INTO message (workspace_id, inbox_id, conversation_id, direction,
               text, external_id, delivery_status)
           SELECT workspace_id, $1, $2, 'out', 'reply', 'prov-1', 'sent'
           FROM inbox WHERE id = $1""",
        inbox_id,
        conversation,
    )

    assert await record_status(InboundStatus(inbox_id, "prov-1", "read"))
    assert not await record_status(InboundStatus(inbox_id, "prov-1", "delivered"))
    status = await db.fetchval(
        "SELECT delivery_status FROM message WHERE external_id = 'prov-1'"
    )
    assert status == "read"
