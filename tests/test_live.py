"""Live updates across server processes (LISTEN/NOTIFY behind SSE)."""

import asyncio

import httpx

from patra.channels import InboundMessage
from patra.inbox.ingest import ingest_message
from patra.testing import collect_events


async def logged_in_client(base_url: str, user) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=10)
    await client.get("/login")
    response = await client.post(
        "/login",
        data={"email": user.email, "password": user.password, "next": "/"},
        headers={"x-csrftoken": client.cookies.get("patra_csrf", "")},
    )
    assert response.status_code in (302, 303), response.text
    return client


async def first_event(client: httpx.AsyncClient, event_type: str, ready: asyncio.Event):
    events: asyncio.Queue = asyncio.Queue()
    reader = asyncio.create_task(collect_events(client, event_type, events, ready))
    try:
        return await events.get()
    finally:
        reader.cancel()


async def test_two_server_processes_both_receive_a_live_update(
    workspace, make_inbox, test_channel, live_server_factory
):
    inbox_id = await make_inbox("testchannel", name="Support")
    servers = [live_server_factory(), live_server_factory()]
    clients = [await logged_in_client(s.url, workspace.owner) for s in servers]
    readiness = [asyncio.Event() for _ in clients]
    listeners = [
        asyncio.create_task(first_event(client, "message.created", ready))
        for client, ready in zip(clients, readiness, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readiness)), 15)

    result = await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id="visitor-9",
            external_id="live-1",
            text="Is anyone there?",
        )
    )

    events = await asyncio.wait_for(asyncio.gather(*listeners), 15)
    for event in events:
        assert event["conversation_id"] == result.conversation_id
        assert event["message_id"] == result.message_id
    for client in clients:
        await client.aclose()


async def test_agent_stream_skips_inboxes_they_are_not_member_of(
    workspace, make_inbox, test_channel, live_server
):
    theirs = await make_inbox("testchannel", name="Theirs", members=[workspace.agent])
    other = await make_inbox("testchannel", name="Other")
    client = await logged_in_client(live_server.url, workspace.agent)
    ready = asyncio.Event()
    listener = asyncio.create_task(first_event(client, "message.created", ready))
    await asyncio.wait_for(ready.wait(), 15)

    await ingest_message(
        InboundMessage(inbox_id=other, contact_external_id="a", external_id="o-1")
    )
    visible = await ingest_message(
        InboundMessage(inbox_id=theirs, contact_external_id="b", external_id="t-1")
    )

    event = await asyncio.wait_for(listener, 15)
    assert event["inbox_id"] == theirs
    assert event["message_id"] == visible.message_id
    await client.aclose()


async def test_streams_coming_and_going_never_silence_the_others(
    workspace, make_inbox, test_channel, live_server
):
    """Other readers connecting and leaving must not stop a stream's events."""
    inbox_id = await make_inbox("testchannel")
    agent = await logged_in_client(live_server.url, workspace.owner)
    received: asyncio.Queue = asyncio.Queue()
    ready = asyncio.Event()
    listener = asyncio.create_task(
        collect_events(agent, "message.created", received, ready)
    )
    await asyncio.wait_for(ready.wait(), 15)
    passer_by = await logged_in_client(live_server.url, workspace.agent)

    for round_number in range(8):
        short_ready = asyncio.Event()
        short = asyncio.create_task(first_event(passer_by, "never-sent", short_ready))
        await asyncio.wait_for(short_ready.wait(), 15)
        short.cancel()
        await asyncio.sleep(0.05)  # let the server notice the disconnect
        result = await ingest_message(
            InboundMessage(
                inbox_id=inbox_id,
                contact_external_id=f"visitor-{round_number}",
                external_id=f"churn-{round_number}",
            )
        )
        event = await asyncio.wait_for(received.get(), 10)
        assert event["message_id"] == result.message_id

    listener.cancel()
    await agent.aclose()
    await passer_by.aclose()
