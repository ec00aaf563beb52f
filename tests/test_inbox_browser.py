"""The agent inbox in a real browser against ``patra serve``: live and responsive."""

from __future__ import annotations

import os

import pytest

from patra.accounts.service import CurrentUser
from patra.channels import InboundMessage
from patra.inbox import conversations
from patra.inbox.ingest import ingest_message

pytestmark = pytest.mark.browser

SCREENSHOTS = os.environ.get("PATRA_SCREENSHOTS", "/tmp")


async def inbound(inbox_id: int, visitor: str, external_id: str, text: str, name: str):
    return await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id=visitor,
            external_id=external_id,
            text=text,
            contact_name=name,
        )
    )


async def log_in(page, server, user) -> None:
    await page.goto(f"{server.url}/login")
    await page.fill("#email", user.email)
    await page.fill("#password", user.password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server.url}/inbox")


async def horizontal_overflow(page) -> int:
    return await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


async def test_new_messages_appear_live_and_layout_fits(
    browser, live_server, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox(
        "testchannel", "Website chat", members=[workspace.agent]
    )
    first = await inbound(
        inbox_id, "ana", "ana-1", "Hi! Do you ship to Portugal?", "Ana"
    )
    await inbound(
        inbox_id, "omar", "omar-1", "مرحبا، هل يمكنني تغيير عنوان التوصيل؟", "Omar"
    )

    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(message.text),
    )
    try:
        await log_in(page, live_server, workspace.agent)
        await page.click(f"#conversation-{first.conversation_id} a")
        await page.wait_for_selector("#messages [data-message-id]")
        await page.evaluate("window.patraNotReloaded = true")
        # Give the event stream a moment to subscribe.
        await page.wait_for_function(
            "() => document.querySelector('[data-live]') !== null"
        )
        await page.wait_for_timeout(700)

        # A customer writes in the open conversation, another starts a new one.
        await inbound(inbox_id, "ana", "ana-2", "Also, can I pay by invoice?", "Ana")
        await page.locator("#messages").get_by_text("can I pay by invoice").wait_for()
        newcomer = await inbound(inbox_id, "li", "li-1", "The code SPRING fails", "Li")
        await page.locator(f"#conversation-{newcomer.conversation_id}").wait_for()
        list_text = await page.locator("#list-pane").inner_text()
        assert "The code SPRING fails" in list_text
        assert await page.evaluate("window.patraNotReloaded === true")

        # The agent answers; the reply shows at once, then its delivery outcome
        # arrives live (this server process has no testchannel plugin, so the
        # delivery fails and the reason is shown; any outcome will do here).
        await page.fill("#composer-text", "Yes, we ship to Portugal.")
        await page.click("#composer button[type=submit]")
        reply = page.locator(".message-out", has_text="we ship to Portugal")
        await reply.wait_for()
        assert await page.input_value("#composer-text") == ""
        outcome = ", ".join(
            f"[data-delivery={status}]" for status in ("sent", "delivered", "failed")
        )
        await reply.locator(outcome).wait_for(timeout=20000)
        # The answered conversation moves to the top of the list.
        await page.wait_for_function(
            """() => {
                const first = document.querySelector('#conversation-items li');
                return first && first.textContent.includes('we ship to Portugal');
            }""",
            timeout=5000,
        )
        assert await page.evaluate("window.patraNotReloaded === true")

        # Another agent acts: the header, the activity line and the labels follow.
        admin = CurrentUser(
            workspace.admin.id,
            workspace.id,
            workspace.admin.email,
            workspace.admin.name,
            "admin",
        )
        await conversations.assign(admin, first.conversation_id, workspace.agent.id)
        await conversations.set_labels(admin, first.conversation_id, ["vip"])
        assigned = f"'{workspace.agent.id}'"
        await page.wait_for_function(
            f"() => document.querySelector('#assignee').value === {assigned}"
        )
        await page.locator("#contact-panel .label-chip", has_text="vip").wait_for()
        await page.locator(".event-line", has_text="set labels: vip").wait_for()
        assert await page.evaluate("window.patraNotReloaded === true")

        # Three columns at 1280x800, nothing wider than the window.
        for selector in ("#list-pane", ".pane-conversation", "#contact-panel"):
            assert await page.locator(selector).is_visible(), selector
        assert await horizontal_overflow(page) <= 0
        await page.screenshot(path=f"{SCREENSHOTS}/patra-inbox-1280x800.png")

        # A phone: one column at a time, no sideways scrolling.
        phone = await browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        phone_page = await phone.new_page()
        await log_in(phone_page, live_server, workspace.agent)
        assert await horizontal_overflow(phone_page) <= 0
        await phone_page.screenshot(path=f"{SCREENSHOTS}/patra-list-390x844.png")
        await phone_page.click(f"#conversation-{first.conversation_id} a")
        await phone_page.wait_for_selector("#composer")
        assert not await phone_page.locator("#list-pane").is_visible()
        assert await phone_page.locator(".back-link").is_visible()
        assert await horizontal_overflow(phone_page) <= 0
        await phone_page.screenshot(
            path=f"{SCREENSHOTS}/patra-inbox-390x844.png", full_page=True
        )
        await phone.close()
        assert not problems, problems
    finally:
        await context.close()
