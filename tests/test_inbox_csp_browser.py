"""The agent's everyday actions run under the strict CSP without a single violation."""

from __future__ import annotations

import pytest

from patra.channels import InboundMessage
from patra.inbox.ingest import ingest_message

pytestmark = pytest.mark.browser


async def log_in(page, server, user) -> None:
    await page.goto(f"{server.url}/login")
    await page.fill("#email", user.email)
    await page.fill("#password", user.password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server.url}/inbox")


async def resize_by_hand(page, selector: str, extra_height: int) -> None:
    """Drag the field's resize handle, as an agent making room to write does."""
    box = await page.locator(selector).bounding_box()
    corner_x, corner_y = box["x"] + box["width"] - 3, box["y"] + box["height"] - 3
    await page.mouse.move(corner_x, corner_y)
    await page.mouse.down()
    await page.mouse.move(corner_x, corner_y + extra_height, steps=5)
    await page.mouse.up()


async def settle(page) -> None:
    """Let the refreshes an action triggered finish before the next action."""
    await page.wait_for_timeout(250)
    await page.wait_for_function("!document.querySelector('.htmx-request')")


async def test_reply_note_assign_label_snooze_resolve_cause_no_csp_violation(
    browser, live_server, workspace, make_inbox, test_channel
):
    from playwright.async_api import expect

    inbox_id = await make_inbox(
        "testchannel", "Website chat", members=[workspace.agent]
    )
    first = await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id="ana",
            external_id="ana-1",
            text="Hi! Do you ship to Portugal?",
            contact_name="Ana",
        )
    )
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    console: list[str] = []
    missing: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on(
        "response",
        lambda response: response.status == 404 and missing.append(response.url),
    )
    try:
        await log_in(page, live_server, workspace.agent)
        await page.click(f"#conversation-{first.conversation_id} a")
        await page.wait_for_selector("#messages [data-message-id]")

        # The browser records a hand-resized field as an inline style.
        await resize_by_hand(page, "#composer-text", 80)
        assert await page.get_attribute("#composer-text", "style")
        await page.fill("#composer-text", "Yes, we ship to Portugal.")
        await page.keyboard.press("Control+Enter")
        await page.locator(".message-out", has_text="we ship to Portugal").wait_for()
        await settle(page)

        await resize_by_hand(page, "#composer-text", 40)
        await page.get_by_label("Private note").check()
        await page.fill("#composer-text", "Check the customs rules.")
        await page.click("#composer button[type=submit]")
        await page.locator("#messages", has_text="Check the customs rules").wait_for()
        await settle(page)

        await page.select_option("#assignee", str(workspace.agent.id))
        await page.locator(".event-line", has_text="assigned").wait_for()
        await settle(page)

        await page.fill("#labels-input", "vip, shipping")
        await page.click(".labels-form button[type=submit]")
        await page.locator("#contact-panel .label-chip", has_text="shipping").wait_for()
        await settle(page)

        await page.click(".popover summary")
        await page.fill("#snooze-until", "2030-01-01T09:00")
        await page.click(".popover-body button[type=submit]")
        pill = page.locator("#conversation-header .status-pill")
        await expect(pill).to_contain_text("Snoozed")
        await settle(page)

        await page.click(".status-form button[value=resolved]")
        await expect(pill).to_contain_text("Resolved")
        await page.wait_for_timeout(500)

        violations = [
            text
            for text in console
            if "Content Security Policy" in text or "violates" in text
        ]
        assert violations == []
        assert missing == []
    finally:
        await context.close()
