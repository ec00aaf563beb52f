"""Moving a message when threading guessed wrong."""

import pytest

from patra import db
from patra.accounts.service import authenticate
from patra.channels import InboundMessage
from patra.hookspecs import hookimpl
from patra.inbox.conversations import (
    ConversationNotFound,
    InvalidChange,
    list_messages,
    move_message,
)
from patra.inbox.ingest import ingest_message


async def inbound(inbox_id, external_id, thread_key):
    return await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id="ana@example.test",
            external_id=external_id,
            text=f"text {external_id}",
            thread_key=thread_key,
        )
    )


async def test_a_message_moves_with_an_activity_line_in_both(
    workspace, make_inbox, test_channel, patra_runtime
):
    inbox_id = await make_inbox("testchannel")
    first = await inbound(inbox_id, "a", "thread-a")
    stray = await inbound(inbox_id, "b", "thread-b")
    owner = await authenticate(workspace.owner.email, workspace.owner.password)

    moved = []

    class Watcher:
        @staticmethod
        @hookimpl
        def message_moved(message, from_conversation_id, to_conversation_id):
            moved.append((message["id"], from_conversation_id, to_conversation_id))

    watcher = Watcher()
    patra_runtime.plugins.register(watcher, name="watcher")
    try:
        await move_message(owner, stray.message_id, first.conversation_id)
    finally:
        patra_runtime.plugins.unregister(watcher)

    target = await list_messages(first.conversation_id)
    assert [m["text"] for m in target if m["kind"] == "message"] == ["text a", "text b"]
    assert any("moved message" in m["text"] for m in target if m["kind"] == "event")
    source = await list_messages(stray.conversation_id)
    assert [m["kind"] for m in source] == ["event"]
    assert moved == [(stray.message_id, stray.conversation_id, first.conversation_id)]


async def test_moving_across_inboxes_or_out_of_sight_is_refused(
    workspace, make_inbox, test_channel
):
    mine = await make_inbox("testchannel", members=[workspace.agent])
    other = await make_inbox("testchannel", name="Other")
    here = await inbound(mine, "a", "t1")
    there = await inbound(other, "b", "t2")
    owner = await authenticate(workspace.owner.email, workspace.owner.password)
    agent = await authenticate(workspace.agent.email, workspace.agent.password)

    with pytest.raises(InvalidChange, match="same inbox"):
        await move_message(owner, here.message_id, there.conversation_id)
    with pytest.raises(ConversationNotFound):
        await move_message(agent, here.message_id, there.conversation_id)
    assert (
        await db.fetchval(
            "SELECT conversation_id FROM message WHERE id = $1", here.message_id
        )
        == here.conversation_id
    )


async def test_an_agent_moves_a_message_from_the_conversation_page(
    client, workspace, login, make_inbox, test_channel
):
    from patra.testing import csrf_token

    inbox_id = await make_inbox("testchannel")
    first = await inbound(inbox_id, "a", "thread-a")
    stray = await inbound(inbox_id, "b", "thread-b")
    await login(client, workspace.owner)
    page = await client.get(f"/inbox/conversations/{stray.conversation_id}")
    assert f'action="/inbox/messages/{stray.message_id}/move"' in page.text

    response = await client.post(
        f"/inbox/messages/{stray.message_id}/move",
        data={"conversation_id": f"#{first.conversation_id}"},
        headers={"x-csrftoken": csrf_token(client), "hx-request": "true"},
    )
    assert response.status_code == 200
    assert (
        await db.fetchval(
            "SELECT conversation_id FROM message WHERE id = $1", stray.message_id
        )
        == first.conversation_id
    )

    refused = await client.post(
        f"/inbox/messages/{stray.message_id}/move",
        data={"conversation_id": "abc"},
        headers={"x-csrftoken": csrf_token(client), "hx-request": "true"},
    )
    assert refused.status_code == 400
    assert "number of the conversation" in refused.text


async def test_the_original_of_a_message_can_be_downloaded(
    client, workspace, login, make_inbox, test_channel, patra_runtime
):
    from patra.storage import store_bytes

    inbox_id = await make_inbox("testchannel")
    raw = b"From: ana@example.test\\r\\nSubject: hi\\r\\n\\r\\nhello\\r\\n"
    blob = await store_bytes(patra_runtime.blobs, workspace.id, "m.eml", raw)
    result = await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id="ana@example.test",
            external_id="raw-1",
            text="hello",
            metadata={"email": {"raw_key": blob.key}},
        )
    )
    await login(client, workspace.owner)
    page = await client.get(f"/inbox/conversations/{result.conversation_id}")
    assert f"/inbox/messages/{result.message_id}/original" in page.text

    download = await client.get(f"/inbox/messages/{result.message_id}/original")
    assert download.status_code == 200
    assert download.content == raw
    assert "attachment" in download.headers["content-disposition"]
