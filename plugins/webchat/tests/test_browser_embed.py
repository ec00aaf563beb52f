"""The widget embedded on someone else's site, in a real browser.

The host page comes from a small HTTP server of its own at http://localhost:N
with a strict Content-Security-Policy; the widget talks to a real ``patra
serve`` at http://127.0.0.1:M, another origin. That exercises CORS, the
CSP-safe styling and the live stream. (Both are loopback addresses because
Chromium does not let a page from a public address reach a loopback server.)
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from patra import db
from patra.inbox.outbound import create_agent_message

pytestmark = pytest.mark.browser


@pytest.fixture
def shop_site():
    """Start a one-page shop at http://localhost:N embedding a given widget."""
    servers = []

    def start(server_url: str, inbox_id: int) -> str:
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Shop</title></head><body><h1>Shop</h1>"
            f'<script src="{server_url}/widget/{inbox_id}.js" async></script>'
            "</body></html>"
        ).encode()
        csp = (
            f"default-src 'self'; script-src 'self' {server_url}; "
            f"connect-src 'self' {server_url}; style-src 'self'; img-src 'self'"
        )

        class ShopPage(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                self.send_response(200 if self.path == "/" else 204)  # favicon
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-security-policy", csp)
                self.end_headers()
                self.wfile.write(page if self.path == "/" else b"")

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), ShopPage)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://localhost:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def _open_shop(context, shop_url: str, problems: list):
    page = await context.new_page()
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(message.text),
    )
    await page.goto(shop_url)
    return page


async def test_widget_on_a_strict_csp_site_of_another_origin_chats_live(
    workspace, make_inbox, live_server_factory, browser, shop_site
):
    from playwright.async_api import expect

    inbox_id = await make_inbox(
        "webchat", members=[workspace.agent], color="#0f766e", greeting="Welcome!"
    )
    server = live_server_factory()
    context = await browser.new_context()
    problems: list[str] = []
    try:
        page = await _open_shop(context, shop_site(server.url, inbox_id), problems)
        launcher = page.get_by_role("button", name="Open chat")

        # Styled by the inbox colour although the page allows no inline styles.
        await expect(launcher).to_have_css("background-color", "rgb(15, 118, 110)")
        await launcher.click()
        await expect(page.get_by_text("Welcome!")).to_be_visible()
        await expect(page.get_by_label("Your message")).to_be_focused()
        await page.get_by_label("Your message").fill("Do you deliver on Saturdays?")
        await page.keyboard.press("Enter")
        await expect(page.locator("li.msg.visitor:not(.pending)")).to_have_count(1)
        await page.keyboard.press("Escape")
        await expect(launcher).to_be_focused()

        conversation_id = await db.fetchval(
            "SELECT conversation_id FROM message WHERE text = $1",
            "Do you deliver on Saturdays?",
        )
        await create_agent_message(
            workspace_id=workspace.id,
            conversation_id=conversation_id,
            user_id=workspace.agent.id,
            text="Yes, until noon.",
        )

        # The reply arrives while the chat is closed: the launcher counts it.
        await expect(
            page.get_by_role("button", name="Open chat (1 new messages)")
        ).to_be_visible(timeout=15_000)
        await page.get_by_role("button", name="Open chat (1 new messages)").click()
        await expect(page.locator("li.msg.agent")).to_contain_text("Yes, until noon.")
        assert problems == []
    finally:
        await context.close()


async def test_widget_retry_after_a_lost_response_stores_the_message_once(
    workspace, make_inbox, live_server_factory, browser, shop_site
):
    from playwright.async_api import expect

    inbox_id = await make_inbox("webchat")
    server = live_server_factory()
    context = await browser.new_context()
    lost_responses = 0

    async def lose_first_response(route):
        # The server receives and stores the message; the browser never hears.
        nonlocal lost_responses
        if route.request.method == "POST" and lost_responses == 0:
            lost_responses += 1
            await route.fetch()
            await route.abort("connectionreset")
        else:
            await route.fallback()

    try:
        page = await _open_shop(context, shop_site(server.url, inbox_id), [])
        await page.route(
            f"{server.url}/widget/{inbox_id}/messages", lose_first_response
        )
        await page.get_by_role("button", name="Open chat").click()
        await page.get_by_label("Your message").fill("Only once, please")
        await page.get_by_role("button", name="Send").click()

        await expect(page.locator("li.msg.visitor:not(.pending)")).to_have_text(
            "Only once, please", timeout=15_000
        )
        await asyncio.sleep(0.5)
        assert lost_responses == 1
        stored = await db.fetchval(
            "SELECT count(*) FROM message WHERE text = 'Only once, please'"
        )
        assert stored == 1
        await expect(page.locator("li.msg.visitor")).to_have_count(1)
    finally:
        await context.close()


async def test_refused_upload_shows_the_reason_and_offers_no_retry(
    workspace, make_inbox, live_server_factory, browser, shop_site
):
    from playwright.async_api import expect

    inbox_id = await make_inbox("webchat")
    server = live_server_factory()
    context = await browser.new_context()
    try:
        page = await _open_shop(context, shop_site(server.url, inbox_id), [])
        await page.get_by_role("button", name="Open chat").click()
        await page.get_by_label("Attach a file").set_input_files(
            files=[{"name": "setup.exe", "mimeType": "x/y", "buffer": b"MZ\x90"}]
        )

        failed = page.locator("li.msg.visitor.failed")
        await expect(failed).to_contain_text(
            "exe files are not accepted", timeout=15_000
        )
        await expect(failed.get_by_role("button", name="Retry")).to_have_count(0)
        assert await db.fetchval("SELECT count(*) FROM attachment") == 0
    finally:
        await context.close()


async def test_upload_failing_on_the_server_side_keeps_a_retry_button(
    workspace, make_inbox, live_server_factory, browser, shop_site
):
    from playwright.async_api import expect

    inbox_id = await make_inbox("webchat")
    server = live_server_factory()
    context = await browser.new_context()
    failures = 0

    async def fail_uploads(route):
        nonlocal failures
        if route.request.method != "POST":
            return await route.fallback()
        failures += 1
        await route.fulfill(
            status=503,
            headers={
                "access-control-allow-origin": "*",
                "access-control-expose-headers": "Retry-After",
                "retry-after": "0.01",
                "content-type": "application/json",
            },
            body='{"error": "The server is busy; try again."}',
        )

    try:
        page = await _open_shop(context, shop_site(server.url, inbox_id), [])
        await page.route(f"{server.url}/widget/{inbox_id}/uploads", fail_uploads)
        await page.get_by_role("button", name="Open chat").click()
        await page.get_by_label("Attach a file").set_input_files(
            files=[{"name": "a.pdf", "mimeType": "application/pdf", "buffer": b"%PDF"}]
        )

        retry = page.locator("li.msg.visitor.failed").get_by_role("button")
        await expect(retry).to_have_text("Retry", timeout=15_000)
        assert failures == 5
        await page.unroute(f"{server.url}/widget/{inbox_id}/uploads")
        await retry.click()
        await expect(page.locator("li.msg.visitor:not(.pending)")).to_contain_text(
            "a.pdf", timeout=15_000
        )
        assert await db.fetchval("SELECT count(*) FROM attachment") == 1
    finally:
        await context.close()
