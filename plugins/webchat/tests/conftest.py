"""Fixtures for the web chat: a chat inbox and visitors talking to it over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import pytest_asyncio


@dataclass
class ChatVisitor:
    """A visitor of ``inbox_id`` holding a token, talking through ``client``."""

    client: object
    inbox_id: int
    token: str

    @property
    def auth(self) -> dict:
        return {"authorization": f"Bearer {self.token}"}

    async def send(self, text: str, key: str | None = None, **extra):
        return await self.client.post(
            f"/widget/{self.inbox_id}/messages",
            json={"text": text, "idempotency_key": key or str(uuid.uuid4()), **extra},
            headers=self.auth,
        )

    async def messages(self, since: int = 0):
        response = await self.client.get(
            f"/widget/{self.inbox_id}/messages",
            params={"since": since},
            headers=self.auth,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest_asyncio.fixture
async def chat_inbox(make_inbox, workspace) -> int:
    return await make_inbox(
        "webchat",
        name="Website chat",
        members=[workspace.agent],
        greeting="Hello from the shop",
        color="#0f766e",
    )


@pytest.fixture
def new_visitor(client, chat_inbox):
    async def start(name: str = "", email: str = "", inbox_id: int | None = None):
        inbox_id = inbox_id or chat_inbox
        response = await client.post(
            f"/widget/{inbox_id}/session", json={"name": name, "email": email}
        )
        assert response.status_code == 201, response.text
        return ChatVisitor(client, inbox_id, response.json()["token"])

    return start
