"""Reply suggestions, summaries and rewrites from the configured AI provider.

Providers come from plugins (``register_ai_providers``); ``[ai] provider``
chooses one and ``offline`` ships with the core. Turning ``[ai] suggestions``
off makes every call return nothing.
"""

from __future__ import annotations

from typing import Protocol

from patra import db, runtime
from patra.accounts.service import CurrentUser
from patra.inbox.conversations import get_conversation, list_messages


class AIProvider(Protocol):
    async def suggest_replies(
        self, conversation: dict, messages: list[dict], canned_responses: list[dict]
    ) -> list[str]: ...

    async def summarize(self, conversation: dict, messages: list[dict]) -> str: ...

    async def rewrite(self, text: str, instruction: str) -> str: ...


async def suggest_replies(user: CurrentUser, conversation_id: int) -> list[str]:
    """Up to three reply suggestions for the conversation, newest context last."""
    current = runtime.current()
    if not current.config.ai.suggestions:
        return []
    conversation = await get_conversation(user, conversation_id)
    messages = [
        m
        for m in await list_messages(conversation_id, limit=50)
        if m["kind"] == "message"
    ]
    canned = await db.fetch(
        "SELECT short_code, content FROM canned_response WHERE workspace_id = $1",
        user.workspace_id,
    )
    return await current.ai.suggest_replies(conversation, messages, canned)


async def summarize(user: CurrentUser, conversation_id: int) -> str:
    current = runtime.current()
    if not current.config.ai.suggestions:
        return ""
    conversation = await get_conversation(user, conversation_id)
    messages = [
        m
        for m in await list_messages(conversation_id, limit=200)
        if m["kind"] == "message"
    ]
    return await current.ai.summarize(conversation, messages)
