"""The agent inbox in HTML: lists, conversations, replies, actions and search."""

from __future__ import annotations

import re

import pytest

from patra import db
from patra.channels import InboundAttachment, InboundMessage
from patra.inbox.ingest import ingest_message
from patra.testing import csrf_token

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00"
    b"\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05"
    b"\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


async def inbound(inbox_id: int, visitor: str, text: str, **extra):
    return await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id=visitor,
            external_id=extra.pop("external_id", f"{visitor}-{text[:20]}"),
            text=text,
            contact_name=extra.pop("contact_name", visitor.capitalize()),
            **extra,
        )
    )


def htmx(client) -> dict[str, str]:
    return {"hx-request": "true", "x-csrftoken": csrf_token(client)}


def conversation_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'id="conversation-(\d+)"', html)]


async def counts() -> dict[str, int]:
    names = ("message", "attachment", "procrastinate_jobs")
    return {name: await db.fetchval(f"SELECT count(*) FROM {name}") for name in names}


@pytest.fixture
async def shop(workspace, make_inbox, test_channel):
    """Two inboxes: the agent is a member of ``support`` only."""
    support = await make_inbox("testchannel", "Support", members=[workspace.agent])
    sales = await make_inbox("testchannel", "Sales")
    return {"support": support, "sales": sales}


async def test_tabs_and_status_filter(client, workspace, login, shop):
    mine = await inbound(shop["support"], "ana", "Where is my order?")
    free = await inbound(shop["support"], "bo", "Do you ship to Spain?")
    done = await inbound(shop["support"], "cy", "Thanks, all good")
    await db.execute(
        "UPDATE conversation SET assignee_id = $1 WHERE id = $2",
        workspace.agent.id,
        mine.conversation_id,
    )
    await db.execute(
        "UPDATE conversation SET status = 'resolved' WHERE id = $1",
        done.conversation_id,
    )
    await login(client, workspace.agent)

    page = await client.get("/inbox")
    assert page.status_code == 200
    assert set(conversation_ids(page.text)) == {
        mine.conversation_id,
        free.conversation_id,
    }
    assert 'data-count="mine">1<' in page.text
    assert 'data-count="unassigned">1<' in page.text
    assert 'data-count="all">2<' in page.text

    page = await client.get("/inbox?tab=mine")
    assert conversation_ids(page.text) == [mine.conversation_id]
    page = await client.get("/inbox?tab=unassigned")
    assert conversation_ids(page.text) == [free.conversation_id]
    page = await client.get("/inbox?status=resolved")
    assert conversation_ids(page.text) == [done.conversation_id]
    # htmx asks for the list pane alone.
    pane = await client.get("/inbox/list?tab=mine", headers={"hx-request": "true"})
    assert pane.text.lstrip().startswith("<aside")
    assert conversation_ids(pane.text) == [mine.conversation_id]


async def test_newest_activity_first_with_keyset_pages(client, workspace, login, shop):
    created = [
        (await inbound(shop["support"], f"visitor{n}", f"Question {n}")).conversation_id
        for n in range(30)
    ]
    await login(client, workspace.agent)

    first = await client.get("/inbox")
    ids = conversation_ids(first.text)
    assert ids == list(reversed(created))[:25]
    cursor_link = re.search(r'hx-get="(/inbox/list\?[^"]*cursor=[^"]+)"', first.text)
    assert cursor_link, "no load-more link on a full first page"

    more = await client.get(
        cursor_link.group(1).replace("&amp;", "&"), headers={"hx-request": "true"}
    )
    assert more.status_code == 200
    assert conversation_ids(more.text) == list(reversed(created))[25:]
    assert "cursor=" not in more.text

    # A new message moves its conversation to the top.
    await inbound(shop["support"], "visitor0", "Anyone there?")
    again = await client.get("/inbox")
    assert conversation_ids(again.text)[0] == created[0]


async def test_agent_cannot_reach_a_conversation_outside_their_inboxes(
    client, workspace, login, shop
):
    theirs = await inbound(
        shop["sales"],
        "dana",
        "Price list please",
        attachments=[InboundAttachment("a.png", "image/png", PNG)],
    )
    attachment_id = await db.fetchval("SELECT id FROM attachment")
    await login(client, workspace.agent)

    listing = await client.get("/inbox")
    assert theirs.conversation_id not in conversation_ids(listing.text)
    for path in (
        f"/inbox/conversations/{theirs.conversation_id}",
        f"/inbox/conversations/{theirs.conversation_id}/messages",
        f"/inbox/conversations/{theirs.conversation_id}/header",
        f"/inbox/conversations/{theirs.conversation_id}/details",
        f"/inbox/messages/{theirs.message_id}",
        f"/inbox/attachments/{attachment_id}",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "Price list" not in response.text
    response = await client.post(
        f"/inbox/conversations/{theirs.conversation_id}/messages",
        data={"text": "sneaky"},
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code == 404
    response = await client.post(
        f"/inbox/conversations/{theirs.conversation_id}/status",
        data={"status": "resolved"},
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code == 404
    assert await db.fetchval("SELECT count(*) FROM message") == 1
    # A 404 is a page with the site's headers, not a bare error.
    assert "Not found" in response.text or response.status_code == 404
    # An admin sees every inbox.
    client.cookies.clear()
    await login(client, workspace.admin)
    page = await client.get(f"/inbox/conversations/{theirs.conversation_id}")
    assert page.status_code == 200 and "Price list please" in page.text


async def test_conversation_view_shows_messages_files_and_delivery(
    client, workspace, login, shop
):
    first = await inbound(
        shop["support"],
        "ana",
        "مرحبا، هل يمكنني تغيير العنوان؟",
        attachments=[
            InboundAttachment("photo.png", "image/png", PNG),
            InboundAttachment("page.html", "text/html", b"<script>x</script>"),
        ],
    )
    await db.execute(
        """INSERT INTO message (workspace_id, inbox_id, conversation_id, direction,
               kind, sender_user_id, text, delivery_status, error)
           VALUES ($1, $2, $3, 'out', 'message', $4, 'Sure, which address?',
                   'failed',
                   'The provider refused it: recipient blocked (code 403).')""",
        workspace.id,
        shop["support"],
        first.conversation_id,
        workspace.agent.id,
    )
    await login(client, workspace.agent)

    page = await client.get(f"/inbox/conversations/{first.conversation_id}")
    assert page.status_code == 200
    html = page.text
    assert "recipient blocked (code 403)" in html
    assert "Not delivered" in html
    assert "photo.png" in html and "page.html" in html
    # Every message and its text carry dir="auto".
    messages = re.findall(r'<article class="bubble"[^>]*>', html)
    assert len(messages) == 2
    assert all('dir="auto"' in tag for tag in messages)
    texts = re.findall(r'<div class="message-text"[^>]*>', html)
    assert texts and all('dir="auto"' in tag for tag in texts)
    # The image is previewed inline, the HTML file only offered as a download.
    image_id, html_id = [
        row["id"] for row in await db.fetch("SELECT id FROM attachment ORDER BY id")
    ]
    assert f'src="/inbox/attachments/{image_id}?inline=1"' in html
    assert f'src="/inbox/attachments/{html_id}?inline=1"' not in html

    image = await client.get(f"/inbox/attachments/{image_id}?inline=1")
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline")
    assert image.headers["x-content-type-options"] == "nosniff"
    download = await client.get(f"/inbox/attachments/{image_id}")
    assert download.headers["content-disposition"].startswith("attachment")
    risky = await client.get(f"/inbox/attachments/{html_id}?inline=1")
    assert risky.headers["content-disposition"].startswith("attachment")
    assert risky.headers["content-type"].startswith("application/octet-stream")
    assert "sandbox" in risky.headers["content-security-policy"]


async def test_reply_note_and_files_are_stored(client, workspace, login, shop):
    start = await inbound(shop["support"], "ana", "Can I send you the invoice?")
    await login(client, workspace.agent)
    url = f"/inbox/conversations/{start.conversation_id}/messages"

    reply = await client.post(
        url,
        data={
            "text": "Yes, attach it here.",
            "kind": "message",
            "idempotency_key": "k-1",
        },
        files=[
            ("files", ("terms.pdf", b"%PDF-1.4 terms", "application/pdf")),
            ("files", ("logo.png", PNG, "image/png")),
        ],
        headers=htmx(client),
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["hx-trigger"] == "patra:messages"
    assert 'id="composer"' in reply.text

    note = await client.post(
        url,
        data={"text": "Customer is a VIP", "kind": "note"},
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert note.status_code in (302, 303)

    rows = await db.fetch(
        "SELECT kind, direction, delivery_status, sender_user_id, text FROM message "
        "WHERE direction = 'out' ORDER BY id"
    )
    assert [(r["kind"], r["delivery_status"]) for r in rows] == [
        ("message", "queued"),
        ("note", "received"),
    ]
    assert all(r["sender_user_id"] == workspace.agent.id for r in rows)
    files = await db.fetch(
        "SELECT filename, content_type, size FROM attachment ORDER BY id"
    )
    assert [f["filename"] for f in files] == ["terms.pdf", "logo.png"]
    # Only the reply is queued for delivery, once.
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 1
    # Sending the same form twice (a double click) stores it once.
    await client.post(
        url,
        data={"text": "Yes, attach it here.", "idempotency_key": "k-1"},
        headers=htmx(client),
    )
    assert (
        await db.fetchval("SELECT count(*) FROM message WHERE direction = 'out'") == 2
    )

    page = await client.get(f"/inbox/conversations/{start.conversation_id}")
    assert "message-note" in page.text and "Private note" in page.text
    assert "Sending…" in page.text
    fresh = await client.get(
        f"{url}?after={start.message_id}", headers={"hx-request": "true"}
    )
    assert fresh.text.count("data-message-id=") == 2


@pytest.mark.parametrize(
    ("filename", "size", "expected"),
    [
        ("setup.exe", 10, ".exe files are not accepted"),
        ("video.mp4", 2 * 1024 * 1024, "files may be at most 1 MB"),
    ],
)
async def test_refused_upload_explains_and_writes_nothing(
    client, workspace, login, shop, patra_runtime, monkeypatch, filename, size, expected
):
    monkeypatch.setattr(patra_runtime.config.storage, "max_upload_mb", 1)
    start = await inbound(shop["support"], "ana", "Hi")
    await login(client, workspace.agent)
    before = await counts()
    files_before = sorted(
        p for p in patra_runtime.config.storage_path.rglob("*") if p.is_file()
    )

    for headers in (htmx(client), {"x-csrftoken": csrf_token(client)}):
        response = await client.post(
            f"/inbox/conversations/{start.conversation_id}/messages",
            data={"text": "here you go", "kind": "message"},
            files=[("files", (filename, b"x" * size, "application/octet-stream"))],
            headers=headers,
        )
        assert response.status_code == 400
        assert expected in response.text
        assert "here you go" in response.text  # the draft is kept
    assert await counts() == before
    files_after = sorted(
        p for p in patra_runtime.config.storage_path.rglob("*") if p.is_file()
    )
    assert files_after == files_before


async def test_empty_reply_is_refused(client, workspace, login, shop):
    start = await inbound(shop["support"], "ana", "Hi")
    await login(client, workspace.agent)
    response = await client.post(
        f"/inbox/conversations/{start.conversation_id}/messages",
        data={"text": "   "},
        headers=htmx(client),
    )
    assert response.status_code == 400
    assert "Write a message or attach a file" in response.text


async def test_assign_status_snooze_and_labels(client, workspace, login, shop):
    start = await inbound(shop["support"], "ana", "Hi")
    conversation = f"/inbox/conversations/{start.conversation_id}"
    await login(client, workspace.agent)

    response = await client.post(
        f"{conversation}/assign",
        data={"assignee_id": str(workspace.agent.id)},
        headers=htmx(client),
    )
    assert response.status_code == 200
    assert response.headers["hx-trigger"] == "patra:conversation"
    response = await client.post(
        f"{conversation}/labels", data={"labels": "VIP, billing"}, headers=htmx(client)
    )
    assert response.status_code == 200
    response = await client.post(
        f"{conversation}/status",
        data={
            "status": "snoozed",
            "snoozed_until": "2099-01-02T09:30",
            "tz_offset": "-60",
        },
        headers=htmx(client),
    )
    assert response.status_code == 200
    row = await db.fetchrow(
        "SELECT * FROM conversation WHERE id = $1", start.conversation_id
    )
    assert row["assignee_id"] == workspace.agent.id
    assert row["status"] == "snoozed"
    # 09:30 in a zone one hour ahead of UTC is 08:30 UTC.
    assert (row["snoozed_until"].hour, row["snoozed_until"].minute) == (8, 30)

    header = await client.get(f"{conversation}/header", headers={"hx-request": "true"})
    assert "Snoozed" in header.text and "08:30" in header.text
    details = await client.get(
        f"{conversation}/details", headers={"hx-request": "true"}
    )
    assert "billing" in details.text and "vip" in details.text
    page = await client.get(conversation)
    assert page.text.count('class="event-line"') == 3

    # Not an agent of this inbox: refused with an explanation in the flash area.
    response = await client.post(
        f"{conversation}/assign", data={"assignee_id": "999999"}, headers=htmx(client)
    )
    assert response.status_code == 400
    assert response.headers["hx-retarget"] == "#flash"
    assert "cannot be assigned" in response.text
    response = await client.post(
        f"{conversation}/status",
        data={"status": "snoozed", "snoozed_until": "2001-01-01T00:00"},
        headers=htmx(client),
    )
    assert response.status_code == 400 and "future" in response.text

    # Without htmx the same form redirects back to the conversation.
    response = await client.post(
        f"{conversation}/status",
        data={"status": "resolved"},
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code in (302, 303)
    assert response.headers["location"] == conversation
    assert (
        await db.fetchval(
            "SELECT status FROM conversation WHERE id = $1", start.conversation_id
        )
        == "resolved"
    )


async def test_nothing_changes_on_get(client, workspace, login, shop):
    start = await inbound(shop["support"], "ana", "Hi")
    conversation = f"/inbox/conversations/{start.conversation_id}"
    await login(client, workspace.agent)
    before = await db.fetchrow("SELECT status, assignee_id FROM conversation")
    messages_before = await db.fetchval("SELECT count(*) FROM message")
    for path in (
        f"{conversation}/status?status=resolved",
        f"{conversation}/assign?assignee_id={workspace.agent.id}",
        f"{conversation}/labels?labels=x",
        f"{conversation}/messages?text=hi&kind=message",
        "/logout",
    ):
        response = await client.get(path)
        assert response.status_code in (200, 405), path
    assert await db.fetchrow("SELECT status, assignee_id FROM conversation") == before
    assert await db.fetchval("SELECT count(*) FROM message") == messages_before
    assert await db.fetchval("SELECT count(*) FROM label") == 0
    assert await db.fetchval("SELECT count(*) FROM session") == 1


async def test_search_finds_messages_and_contacts_safely(
    client, workspace, login, shop
):
    await inbound(
        shop["support"],
        "ana",
        "The discount code SPRING does not work",
        contact_name="Ana Lima",
        contact_email="ana@example.test",
    )
    await inbound(
        shop["support"],
        "eve",
        "<script>alert(1)</script> a <b>discount</b>",
        contact_name="Eve <b>Bold</b>",
    )
    await inbound(shop["sales"], "zed", "Secret discount for sales only")
    await login(client, workspace.agent)

    page = await client.get("/search?q=discount")
    assert page.status_code == 200
    assert "<mark>discount</mark>" in page.text
    assert "<script>alert" not in page.text
    assert "<b>" not in page.text
    assert "Eve &lt;b&gt;Bold&lt;/b&gt;" in page.text
    assert "sales only" not in page.text  # not one of the agent's inboxes

    contacts = await client.get("/search?q=ana@example.test")
    assert "Ana Lima" in contacts.text
    partial = await client.get("/search?q=lima", headers={"hx-request": "true"})
    assert partial.text.lstrip().startswith('<div id="search-results"')
    assert "Ana Lima" in partial.text


async def test_every_page_has_a_content_security_policy(client, workspace, login, shop):
    start = await inbound(shop["support"], "ana", "Hi")
    pages = ["/login", "/does-not-exist"]
    for path in pages:
        response = await client.get(path)
        assert "script-src 'self'" in response.headers["content-security-policy"], path
    await login(client, workspace.admin)
    for path in (
        "/inbox",
        f"/inbox/conversations/{start.conversation_id}",
        "/search?q=hi",
        "/account",
        "/admin/inboxes",
        f"/admin/inboxes/{shop['support']}",
        "/admin/inboxes/new",
        "/admin/agents",
        "/inbox/conversations/999999",
    ):
        response = await client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy, path
        # No inline script and no inline event handler in any page.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text), path
        assert not re.search(r"\son[a-z]+=", response.text), path


async def test_missing_conversation_is_a_404_page(client, workspace, login, shop):
    await login(client, workspace.agent)
    response = await client.get("/inbox/conversations/424242")
    assert response.status_code == 404
    assert "<!doctype html>" in response.text.lower()
    assert "does not exist" in response.text


def test_highlight_escapes_everything_but_mark():
    from patra.web.pages import highlight

    assert str(highlight('<img src=x onerror="a()"> <mark>cat</mark>')) == (
        "&lt;img src=x onerror=&#34;a()&#34;&gt; <mark>cat</mark>"
    )
    assert str(highlight(None)) == ""


async def test_email_html_is_served_sandboxed_with_inline_images(
    client, workspace, login, shop
):
    start = await inbound(
        shop["support"],
        "ana",
        "See the picture",
        html='<p>See <img src="cid:logo@x"> and <img src="https://tracker.example/p.gif">'
        "</p>",
        attachments=[
            InboundAttachment("logo.png", "image/png", PNG, content_id="<logo@x>")
        ],
    )
    attachment_id = await db.fetchval("SELECT id FROM attachment")
    await login(client, workspace.agent)

    page = await client.get(f"/inbox/conversations/{start.conversation_id}")
    assert (
        f'<iframe src="/inbox/messages/{start.message_id}/html" sandbox=' in page.text
    )
    frame = await client.get(f"/inbox/messages/{start.message_id}/html")
    assert frame.status_code == 200
    policy = frame.headers["content-security-policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy
    assert "script-src" not in policy  # falls back to default-src 'none'
    assert "img-src 'self' data:;" in policy  # remote images (trackers) blocked
    assert f'src="/inbox/attachments/{attachment_id}?inline=1"' in frame.text
    plain = await inbound(shop["support"], "bo", "No html here")
    assert (
        await client.get(f"/inbox/messages/{plain.message_id}/html")
    ).status_code == 404


async def test_body_over_the_server_limit_is_a_clear_413(
    client, workspace, login, shop, patra_runtime
):
    start = await inbound(shop["support"], "ana", "Hi")
    await login(client, workspace.agent)
    before = await counts()
    too_big = b"x" * (patra_runtime.config.server.max_body_mb * 1024 * 1024 + 1024)
    url = f"/inbox/conversations/{start.conversation_id}/messages"

    page = await client.post(
        url,
        files=[("files", ("huge.bin", too_big, "application/octet-stream"))],
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert page.status_code == 413
    assert "<!doctype html>" in page.text.lower() and "Too large" in page.text
    fragment = await client.post(
        url,
        files=[("files", ("huge.bin", too_big, "application/octet-stream"))],
        headers=htmx(client),
    )
    assert fragment.status_code == 413
    assert fragment.headers["hx-retarget"] == "#flash"
    assert 'role="alert"' in fragment.text
    assert await counts() == before


async def test_unexpected_error_is_a_page_without_details(
    client, workspace, login, shop, monkeypatch
):
    from patra.inbox import conversations

    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    await login(client, workspace.agent)
    monkeypatch.setattr(conversations, "list_conversations", broken)
    response = await client.get("/inbox")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "secret internals" not in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
