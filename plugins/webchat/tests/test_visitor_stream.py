"""The visitor's live stream, against a real ``patra serve`` process."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
from patra import db
from patra.inbox.outbound import create_agent_message


async def _read_events(response, into: list[dict], until_text: str) -> None:
    """Collect the stream's messages; every data line must be a message event."""
    event_name = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event_name = line[7:]
        elif line.startswith("data:"):
            assert event_name == "message", f"stray data line {line!r}"
            into.append(json.loads(line[6:]))
            if into[-1]["text"] == until_text:
                return
        elif line == "":
            event_name = None


async def test_visitor_stream_carries_replies_but_never_notes_or_other_chats(
    workspace, make_inbox, live_server_factory
):
    inbox_id = await make_inbox("webchat", members=[workspace.agent])
    server = live_server_factory()
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:

        async def visitor_token() -> str:
            response = await http.post(f"/widget/{inbox_id}/session", json={})
            return response.json()["token"]

        ana, omar = await visitor_token(), await visitor_token()

        async def send(token: str, text: str) -> dict:
            response = await http.post(
                f"/widget/{inbox_id}/messages",
                json={"text": text, "idempotency_key": str(uuid.uuid4())},
                headers={"authorization": f"Bearer {token}"},
            )
            assert response.status_code == 201, response.text
            return response.json()["message"]

        await send(ana, "Is shipping free?")
        conversation_id = await db.fetchval(
            "SELECT conversation_id FROM message ORDER BY id LIMIT 1"
        )
        received: list[dict] = []
        async with http.stream(
            "GET", f"/widget/{inbox_id}/stream", params={"token": ana}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            reader = asyncio.create_task(
                _read_events(stream, received, "Yes, above 30 euros.")
            )
            await asyncio.sleep(0.5)  # let the stream subscribe
            await send(omar, "Omar's own question")
            await send(ana, "Hello?")
            await create_agent_message(
                workspace_id=workspace.id,
                conversation_id=conversation_id,
                user_id=workspace.agent.id,
                text="VIP customer, be nice (note)",
                kind="note",
            )
            await create_agent_message(
                workspace_id=workspace.id,
                conversation_id=conversation_id,
                user_id=workspace.agent.id,
                text="Yes, above 30 euros.",
            )
            await asyncio.wait_for(reader, 20)

    assert [(m["from"], m["text"]) for m in received] == [
        ("visitor", "Hello?"),
        ("agent", "Yes, above 30 euros."),
    ]
    assert received[-1]["sender"] == "Agent Person"
    assert "note" not in json.dumps(received)
