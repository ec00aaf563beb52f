"""The offline AI provider: suggestions from canned responses and simple rules.

It needs no network and no model. It suggests the canned responses whose words
best overlap the customer's last message, and summarises a conversation by its
first and latest customer messages.
"""

from __future__ import annotations

import re

from patra.hookspecs import hookimpl

WORD = re.compile(r"\w{3,}", re.UNICODE)


class OfflineProvider:
    name = "offline"

    async def suggest_replies(self, conversation, messages, canned_responses):
        last_inbound = next(
            (m["text"] for m in reversed(messages) if m["direction"] == "in"), ""
        )
        words = {word.lower() for word in WORD.findall(last_inbound)}
        scored = []
        for canned in canned_responses:
            candidate = {w.lower() for w in WORD.findall(canned["content"])}
            candidate |= {canned["short_code"].lower()}
            overlap = len(words & candidate)
            if overlap:
                scored.append((overlap, canned["content"]))
        scored.sort(key=lambda pair: -pair[0])
        return [content for _, content in scored[:3]]

    async def summarize(self, conversation, messages):
        inbound = [m["text"] for m in messages if m["direction"] == "in" and m["text"]]
        if not inbound:
            return ""
        if len(inbound) == 1:
            return inbound[0][:280]
        return f"{inbound[0][:200]} … {inbound[-1][:200]}"

    async def rewrite(self, text, instruction):
        text = re.sub(r"\s+", " ", text).strip()
        return text[:1].upper() + text[1:] if text else text


@hookimpl
def register_ai_providers(config):
    return {"offline": OfflineProvider()}
