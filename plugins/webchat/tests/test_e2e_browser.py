"""The main job end to end: a visitor writes on the demo site, an agent answers.

Real ``patra serve`` (demo mode) on PostgreSQL, two Chromium pages side by side.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

VISITOR_TEXT = "Hello! Is the Sencha Morning tea in stock?"
REPLY_TEXT = "Yes, we have plenty; it ships tomorrow."


async def test_visitor_and_agent_talk_live_through_the_widget(
    workspace, make_inbox, live_server_factory, browser
):
    from playwright.async_api import expect

    await make_inbox(
        "webchat",
        name="Website chat",
        members=[workspace.agent],
        greeting="Hi! Ask us anything.",
    )
    server = live_server_factory()
    visitor_context = await browser.new_context()
    agent_context = await browser.new_context()
    problems: list[str] = []
    try:
        agent = await agent_context.new_page()
        await agent.goto(f"{server.url}/login")
        await agent.get_by_label("Email").fill(workspace.agent.email)
        await agent.get_by_label("Password").fill(workspace.agent.password)
        await agent.get_by_role("button", name="Log in").click()
        await agent.wait_for_url(f"{server.url}/inbox**")
        await agent.evaluate("window.__stayedOnPage = true")

        visitor = await visitor_context.new_page()
        visitor.on("pageerror", lambda error: problems.append(str(error)))
        visitor.on(
            "response",
            lambda response: (
                response.status >= 400
                and problems.append(f"{response.status} {response.url}")
            ),
        )
        await visitor.goto(f"{server.url}/demo/site")
        await visitor.get_by_role("button", name="Open chat").click()
        await expect(visitor.get_by_text("Hi! Ask us anything.")).to_be_visible()
        await visitor.get_by_label("Your message").fill(VISITOR_TEXT)
        await visitor.get_by_role("button", name="Send").click()
        await expect(visitor.locator("li.msg.visitor:not(.pending)")).to_have_text(
            VISITOR_TEXT
        )

        # The agent's open inbox shows the new conversation without a reload.
        item = agent.locator(".conversation-item", has_text=VISITOR_TEXT)
        await expect(item).to_be_visible(timeout=15_000)
        assert await agent.evaluate("window.__stayedOnPage === true")
        await item.locator("a").click()
        await expect(agent.locator("#messages")).to_contain_text(VISITOR_TEXT)
        await agent.locator("#composer-text").fill(REPLY_TEXT)
        await agent.locator("#composer button[type=submit]").click()
        await expect(agent.locator("#messages")).to_contain_text(REPLY_TEXT)

        # The visitor's open widget receives the reply live, with the agent's name.
        reply = visitor.locator("li.msg.agent")
        await expect(reply).to_contain_text(REPLY_TEXT, timeout=15_000)
        await expect(reply).to_contain_text(workspace.agent.name)
        assert await reply.locator("p[dir=auto]").count() == 1

        # The conversation survives a reload of the visitor's page.
        await visitor.reload()
        await visitor.get_by_role("button", name="Open chat").click()
        await expect(visitor.locator("li.msg")).to_have_count(3)
        await expect(visitor.locator("li.msg.agent")).to_contain_text(REPLY_TEXT)
        assert problems == []
    finally:
        await visitor_context.close()
        await agent_context.close()
