"""Visitors' streams coming and going never silence the agents' stream."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from patra.inbox.outbound import create_agent_message
from patra.testing import collect_events


async def test_agent_stream_keeps_every_event_while_visitor_streams_churn(
    workspace, make_inbox, live_server_factory
):
    inbox_id = await make_inbox("webchat", members=[workspace.agent])
    server = live_server_factory()
    agent = httpx.AsyncClient(base_url=server.url, timeout=20)
    await agent.get("/login")
    await agent.post(
        "/login",
        data={"email": workspace.owner.email, "password": workspace.owner.password},
        headers={"x-csrftoken": agent.cookies.get("patra_csrf", "")},
    )
    received: asyncio.Queue = asyncio.Queue()
    ready = asyncio.Event()
    listener = asyncio.create_task(
        collect_events(agent, "message.created", received, ready)
    )
    await asyncio.wait_for(ready.wait(), 15)

    async with httpx.AsyncClient(base_url=server.url, timeout=20) as visitor:
        token = (await visitor.post(f"/widget/{inbox_id}/session", json={})).json()[
            "token"
        ]
        sent = await visitor.post(
            f"/widget/{inbox_id}/messages",
            json={"text": "hello", "idempotency_key": str(uuid.uuid4())},
            headers={"authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 201, sent.text
        conversation_id = (await received.get())["conversation_id"]

        for round_number in range(6):
            async with visitor.stream(
                "GET", f"/widget/{inbox_id}/stream", params={"token": token}
            ) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith(":"):
                        break
                reply_id = await create_agent_message(
                    workspace_id=workspace.id,
                    conversation_id=conversation_id,
                    user_id=workspace.owner.id,
                    text=f"reply {round_number}",
                )
                event = await asyncio.wait_for(received.get(), 10)
                assert event["message_id"] == reply_id
    listener.cancel()
    await agent.aclose()
