"""The widget file, the embed snippet and the demo shop page."""

from __future__ import annotations

import gzip
import re

from patra import runtime
from patra.plugins import call_async

from patra_webchat.web import WIDGET_JS

WIDGET_BUDGET_BYTES = 20 * 1024


def test_widget_is_under_20_kb_gzipped():
    compressed = gzip.compress(WIDGET_JS.read_bytes(), compresslevel=9)

    assert len(compressed) < WIDGET_BUDGET_BYTES


def test_widget_never_renders_text_as_markup():
    source = WIDGET_JS.read_text()

    assert "innerHTML" not in source and "insertAdjacentHTML" not in source
    assert "adoptedStyleSheets" in source


async def test_setup_hint_shows_the_escaped_one_line_snippet(clean_db, chat_inbox):
    hook = runtime.current().plugins.hook.inbox_setup_hints

    hints = await call_async(
        hook,
        inbox={"id": chat_inbox, "channel_type": "webchat"},
        public_url="https://help.example/",
    )
    other = await call_async(
        hook, inbox={"id": 3, "channel_type": "email"}, public_url="https://x"
    )

    assert len(hints) == 1
    expected = (
        f"&lt;script src=&#34;https://help.example/widget/{chat_inbox}.js&#34; "
        "async&gt;&lt;/script&gt;"
    )
    assert f'<pre><code class="webchat-snippet">{expected}</code></pre>' in hints[0]
    assert other == []


async def test_demo_site_is_not_found_outside_demo_mode(client, chat_inbox):
    response = await client.get("/demo/site")

    assert response.status_code == 404


async def test_demo_site_embeds_the_widget_without_inline_script(
    client, chat_inbox, monkeypatch
):
    monkeypatch.setattr(runtime.current().config.server, "demo", True)

    response = await client.get("/demo/site")

    assert response.status_code == 200
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.S)
    assert scripts == [(f' src="/widget/{chat_inbox}.js" async', "")]
    assert "style=" not in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    widget = await client.get(f"/widget/{chat_inbox}.js")
    assert widget.status_code == 200


async def test_demo_site_shows_the_patra_icon(client, chat_inbox, monkeypatch):
    monkeypatch.setattr(runtime.current().config.server, "demo", True)

    page = await client.get("/demo/site")

    icons = re.findall(r'<link rel="icon" href="([^"]+)"', page.text)
    assert icons == ["/static/favicon.svg"]
    icon = await client.get(icons[0])
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


async def test_demo_site_without_a_chat_inbox_says_how_to_make_one(
    client, workspace, monkeypatch
):
    monkeypatch.setattr(runtime.current().config.server, "demo", True)

    response = await client.get("/demo/site")

    assert response.status_code == 200
    assert "<script" not in response.text
    assert "no website chat inbox yet" in response.text


async def test_admin_creates_a_chat_inbox_and_gets_the_embed_snippet(
    client, workspace, login
):
    from patra.testing import csrf_token

    await login(client, workspace.admin)

    created = await client.post(
        "/admin/inboxes",
        data={
            "name": "Website chat",
            "channel_type": "webchat",
            "setting_greeting": "Welcome to the shop",
            "setting_color": "#0f766e",
        },
        headers={"x-csrftoken": csrf_token(client)},
    )
    page = await client.get(created.headers["location"])

    inbox_id = int(created.headers["location"].rstrip("/").split("/")[-1])
    assert page.status_code == 200
    assert (
        f"&lt;script src=&#34;http://testserver.local/widget/{inbox_id}.js&#34; "
        "async&gt;&lt;/script&gt;"
    ) in page.text
    config = (await client.get(f"/widget/{inbox_id}/config")).json()
    assert config["greeting"] == "Welcome to the shop"
