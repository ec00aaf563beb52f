"""The widget's HTTP endpoints as a visitor's browser uses them."""

from __future__ import annotations

import asyncio
import uuid

from patra import db
from patra.inbox.outbound import create_agent_message


async def _conversation_id(inbox_id: int) -> int:
    return await db.fetchval(
        "SELECT id FROM conversation WHERE inbox_id = $1", inbox_id
    )


async def test_visitor_message_reaches_the_inbox_as_a_new_conversation(
    new_visitor, chat_inbox
):
    visitor = await new_visitor(name="Ana", email="ana@example.test")

    response = await visitor.send("Do you ship to Portugal?", page_url="https://s/x")

    assert response.status_code == 201
    sent = response.json()["message"]
    assert sent["from"] == "visitor" and sent["text"] == "Do you ship to Portugal?"
    conversation = await db.fetchrow(
        """SELECT c.status, ct.name, ct.email, m.metadata FROM conversation c
           JOIN contact ct ON ct.id = c.contact_id
           JOIN message m ON m.conversation_id = c.id
           WHERE c.inbox_id = $1""",
        chat_inbox,
    )
    assert conversation == {
        "status": "open",
        "name": "Ana",
        "email": "ana@example.test",
        "metadata": {"webchat": {"page_url": "https://s/x"}},
    }


async def test_widget_config_carries_greeting_and_colour(client, chat_inbox):
    response = await client.get(f"/widget/{chat_inbox}/config")

    assert response.status_code == 200
    assert response.json() == {
        "inbox_id": chat_inbox,
        "greeting": "Hello from the shop",
        "color": "#0f766e",
        "prechat": False,
        "require_email": False,
    }


async def test_unsafe_colour_setting_falls_back_to_the_default(client, make_inbox):
    inbox_id = await make_inbox("webchat", color="red;}:host{display:none")

    response = await client.get(f"/widget/{inbox_id}/config")

    assert response.json()["color"] == "#2563eb"


async def test_widget_script_is_served_as_javascript_for_a_chat_inbox(
    client, chat_inbox
):
    response = await client.get(f"/widget/{chat_inbox}.js")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "attachShadow" in response.text


async def test_retried_message_with_the_same_key_is_stored_once(new_visitor):
    visitor = await new_visitor()
    key = str(uuid.uuid4())

    first = await visitor.send("Where is my order?", key=key)
    retry = await visitor.send("Where is my order?", key=key)

    assert first.status_code == 201 and retry.status_code == 200
    assert retry.json()["duplicate"] is True
    assert retry.json()["message"]["id"] == first.json()["message"]["id"]
    assert await db.fetchval("SELECT count(*) FROM message") == 1


async def test_two_visitors_may_use_the_same_key_without_colliding(new_visitor):
    ana, omar = await new_visitor(), await new_visitor()
    key = "same-key-0001"

    from_ana = await ana.send("Hello from Ana", key=key)
    from_omar = await omar.send("Hello from Omar", key=key)

    assert from_ana.status_code == from_omar.status_code == 201
    assert [m["text"] for m in (await omar.messages())["messages"]] == [
        "Hello from Omar"
    ]


async def test_twenty_concurrent_first_messages_make_one_conversation_and_contact(
    new_visitor, chat_inbox
):
    visitor = await new_visitor(name="Li")

    responses = await asyncio.gather(
        *(visitor.send(f"message {number}") for number in range(20))
    )

    assert [response.status_code for response in responses] == [201] * 20
    assert await db.fetchval("SELECT count(*) FROM contact") == 1
    assert await db.fetchval("SELECT count(*) FROM contact_identity") == 1
    assert await db.fetchval("SELECT count(*) FROM conversation") == 1
    assert await db.fetchval("SELECT count(*) FROM message") == 20


async def test_concurrent_retries_of_one_message_store_it_once(new_visitor):
    visitor = await new_visitor()
    key = str(uuid.uuid4())

    responses = await asyncio.gather(*(visitor.send("Hi", key=key) for _ in range(8)))

    assert sorted(response.status_code for response in responses) == [200] * 7 + [201]
    assert len({response.json()["message"]["id"] for response in responses}) == 1
    assert await db.fetchval("SELECT count(*) FROM message") == 1


async def test_catch_up_returns_missed_agent_replies_but_never_notes(
    new_visitor, chat_inbox, workspace, run_jobs
):
    visitor = await new_visitor()
    question = (await visitor.send("Is the blue teapot in stock?")).json()["message"]
    conversation_id = await _conversation_id(chat_inbox)
    await create_agent_message(
        workspace_id=workspace.id,
        conversation_id=conversation_id,
        user_id=workspace.agent.id,
        text="Customer seems upset, offer 10% (internal)",
        kind="note",
    )
    await create_agent_message(
        workspace_id=workspace.id,
        conversation_id=conversation_id,
        user_id=workspace.agent.id,
        text="Yes, we have three left.",
    )
    await run_jobs()

    page = await visitor.messages(since=question["id"])

    assert [(m["from"], m["text"]) for m in page["messages"]] == [
        ("agent", "Yes, we have three left.")
    ]
    reply = page["messages"][0]
    assert reply["sender"] == "Agent Person"
    assert workspace.agent.email not in str(page)
    assert "internal" not in str(await visitor.messages())


async def test_queued_reply_stays_ahead_of_the_cursor_until_it_is_delivered(
    new_visitor, chat_inbox, workspace, run_jobs
):
    visitor = await new_visitor()
    await visitor.send("First question")
    conversation_id = await _conversation_id(chat_inbox)
    reply_id = await create_agent_message(
        workspace_id=workspace.id,
        conversation_id=conversation_id,
        user_id=workspace.agent.id,
        text="An answer on its way",
    )
    later = (await visitor.send("Second question")).json()["message"]

    before_delivery = await visitor.messages()
    await run_jobs()
    after_delivery = await visitor.messages(since=before_delivery["cursor"])

    assert [m["text"] for m in before_delivery["messages"]] == [
        "First question",
        "Second question",
    ]
    assert before_delivery["cursor"] < reply_id < later["id"]
    assert [m["id"] for m in after_delivery["messages"]] == [reply_id, later["id"]]
    assert after_delivery["cursor"] == later["id"]


async def test_delivered_reply_shows_as_sent_to_the_agent(
    new_visitor, chat_inbox, workspace, run_jobs
):
    visitor = await new_visitor()
    await visitor.send("Hello")
    reply_id = await create_agent_message(
        workspace_id=workspace.id,
        conversation_id=await _conversation_id(chat_inbox),
        user_id=workspace.agent.id,
        text="Hi there",
    )

    await run_jobs()

    status = await db.fetchval(
        "SELECT delivery_status FROM message WHERE id = $1", reply_id
    )
    assert status == "sent"


async def test_a_visitor_never_sees_another_visitors_conversation(new_visitor):
    ana, omar = await new_visitor(), await new_visitor()
    await ana.send("Ana's private question")

    assert (await omar.messages())["messages"] == []


async def test_prechat_email_is_required_when_the_inbox_asks_for_it(client, make_inbox):
    inbox_id = await make_inbox("webchat", require_email=True)

    without = await client.post(f"/widget/{inbox_id}/session", json={"name": "Jo"})
    malformed = await client.post(
        f"/widget/{inbox_id}/session", json={"email": "not an address"}
    )
    with_email = await client.post(
        f"/widget/{inbox_id}/session", json={"email": "jo@example.test"}
    )

    assert without.status_code == 400
    assert "email" in without.json()["error"]
    assert malformed.status_code == 400
    assert with_email.status_code == 201
    config = (await client.get(f"/widget/{inbox_id}/config")).json()
    assert config["prechat"] is True and config["require_email"] is True
