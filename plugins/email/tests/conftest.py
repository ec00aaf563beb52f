"""Fixtures for the email channel: real Dovecot, a real SMTP server, PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

# The tests share the message builders in corpus.py next to this file.
sys.path.insert(0, str(Path(__file__).parent))

import pytest_asyncio  # noqa: E402
from patra import db  # noqa: E402
from patra.inbox import outbound  # noqa: E402
from servers import (  # noqa: E402,F401
    certificate,
    dovecot,
    dovecot_tls,
    smtp_implicit_tls_server,
    smtp_server,
    smtp_starttls_server,
)

from patra_email.receive import file_email, inbox_identity  # noqa: E402


class Shop:
    """An email inbox of the test workspace, sending through ``smtp_server``."""

    def __init__(self, workspace, inbox_id, identity, smtp_handler):
        self.workspace = workspace
        self.inbox_id = inbox_id
        self.identity = identity
        self.smtp = smtp_handler

    async def file(self, raw: bytes, source: str = "test"):
        return await file_email(self.identity, raw, source)

    async def reply(
        self, conversation_id: int, text: str = "Thanks for writing.", **kw
    ):
        """An agent's reply, delivered to the SMTP server; returns the first
        recipient's copy as it arrived there."""
        return (await self.reply_copies(conversation_id, text, **kw))[0]

    async def reply_copies(
        self, conversation_id: int, text: str = "Thanks for writing.", **kw
    ):
        """An agent's reply; returns every recipient's copy as it arrived."""
        before = len(self.smtp.received)
        message_id = await outbound.create_agent_message(
            workspace_id=self.workspace.id,
            conversation_id=conversation_id,
            user_id=self.workspace.agent.id,
            text=text,
            **kw,
        )
        status = await outbound.deliver(message_id, 0, 3)
        assert status == "sent", await db.fetchval(
            "SELECT error FROM message WHERE id = $1", message_id
        )
        copies = await db.fetchval(
            "SELECT count(*) FROM email_recipient_copy WHERE patra_message_id = $1",
            message_id,
        )
        received = await self.smtp.wait_for(before + copies)
        return received[before : before + copies]

    async def messages(self, conversation_id: int | None = None) -> list[dict]:
        return await db.fetch(
            """SELECT * FROM message WHERE inbox_id = $1
               AND ($2::bigint IS NULL OR conversation_id = $2) ORDER BY id""",
            self.inbox_id,
            conversation_id,
        )


@pytest_asyncio.fixture
async def shop(workspace, make_inbox, smtp_server, dovecot):  # noqa: F811 - fixtures
    user = dovecot.new_user()
    settings = dovecot.settings(user, smtp_port=smtp_server.port)
    inbox_id = await make_inbox("email", name="Support", **settings)
    shop = Shop(
        workspace, inbox_id, await inbox_identity(inbox_id), smtp_server.handler_object
    )
    shop.imap_user = user
    return shop
