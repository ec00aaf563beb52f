"""What the widget endpoints answer to broken, hostile or oversize requests.

Every refusal is a 4xx JSON body saying what to do, and nothing is written.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from patra import db, runtime


async def _nothing_written() -> bool:
    counts = await db.fetchrow(
        """SELECT (SELECT count(*) FROM message) AS messages,
                  (SELECT count(*) FROM contact) AS contacts,
                  (SELECT count(*) FROM conversation) AS conversations,
                  (SELECT count(*) FROM attachment) AS attachments"""
    )
    return counts == {
        "messages": 0,
        "contacts": 0,
        "conversations": 0,
        "attachments": 0,
    }


def _is_json_error(response, status: int) -> bool:
    return (
        response.status_code == status
        and response.headers["content-type"].startswith("application/json")
        and len(response.json()["error"]) > 10
    )


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2, 3]", b'"just a string"', b"\xff\xfe\x00"],
    ids=["malformed", "array", "string", "not-utf8"],
)
async def test_malformed_message_body_gets_400(new_visitor, body):
    visitor = await new_visitor()

    response = await visitor.client.post(
        f"/widget/{visitor.inbox_id}/messages",
        content=body,
        headers={**visitor.auth, "content-type": "application/json"},
    )

    assert _is_json_error(response, 400)
    assert await _nothing_written()


@pytest.mark.parametrize(
    "payload",
    [
        {"text": "hi"},
        {"text": "hi", "idempotency_key": "short"},
        {"text": "hi", "idempotency_key": "has spaces in it"},
        {"text": "hi", "idempotency_key": 12345678},
        {"text": "   ", "idempotency_key": "abcdefgh-1"},
        {"text": ["a list"], "idempotency_key": "abcdefgh-1"},
        {"idempotency_key": "abcdefgh-1"},
    ],
    ids=["no-key", "short-key", "spaces", "number-key", "blank", "list", "no-text"],
)
async def test_invalid_message_fields_get_400(new_visitor, payload):
    visitor = await new_visitor()

    response = await visitor.client.post(
        f"/widget/{visitor.inbox_id}/messages", json=payload, headers=visitor.auth
    )

    assert _is_json_error(response, 400)
    assert await _nothing_written()


async def test_overlong_text_gets_413_naming_the_limit(new_visitor):
    visitor = await new_visitor()

    response = await visitor.send("x" * 5001)

    assert _is_json_error(response, 413)
    assert "5000" in response.json()["error"]
    assert await _nothing_written()


async def test_oversize_body_gets_413(new_visitor):
    visitor = await new_visitor()

    response = await visitor.client.post(
        f"/widget/{visitor.inbox_id}/messages",
        content=b'{"text": "' + b"x" * 200_000 + b'"}',
        headers={**visitor.auth, "content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert await _nothing_written()


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/widget/999999.js"),
        ("GET", "/widget/999999/config"),
        ("POST", "/widget/999999/session"),
        ("GET", "/widget/999999/messages"),
        ("POST", "/widget/999999/messages"),
        ("GET", "/widget/999999/stream"),
        ("GET", "/widget/99999999999999999999/config"),
        ("POST", "/widget/99999999999999999999/session"),
    ],
)
async def test_unknown_inbox_gets_404(client, chat_inbox, method, path):
    response = await client.request(method, path, json={})

    assert _is_json_error(response, 404)
    assert await _nothing_written()


async def test_inbox_of_another_channel_is_not_a_chat(client, make_inbox, test_channel):
    other_inbox = await make_inbox("testchannel")

    script = await client.get(f"/widget/{other_inbox}.js")
    session = await client.post(f"/widget/{other_inbox}/session", json={})

    assert _is_json_error(script, 404) and _is_json_error(session, 404)


async def test_switched_off_chat_inbox_refuses_visitors(client, chat_inbox):
    await db.execute("UPDATE inbox SET connected = false WHERE id = $1", chat_inbox)

    response = await client.post(f"/widget/{chat_inbox}/session", json={})

    assert _is_json_error(response, 404)


async def test_out_of_range_ids_are_not_found_rather_than_errors(new_visitor):
    visitor = await new_visitor()
    huge = "99999999999999999999"

    since = await visitor.client.get(
        f"/widget/{visitor.inbox_id}/messages?since={huge}", headers=visitor.auth
    )
    download = await visitor.client.get(
        f"/widget/{visitor.inbox_id}/attachments/{huge}", headers=visitor.auth
    )

    assert since.status_code == 200 and since.json()["messages"] == []
    assert _is_json_error(download, 404)


async def test_non_numeric_since_gets_400(new_visitor):
    visitor = await new_visitor()

    response = await visitor.client.get(
        f"/widget/{visitor.inbox_id}/messages?since=abc", headers=visitor.auth
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")


# --- uploads -----------------------------------------------------------------


async def _upload(
    visitor,
    filename: str,
    data: bytes,
    key: str = "upload-key-1",
    content_type: str = "application/pdf",
):
    return await visitor.client.post(
        f"/widget/{visitor.inbox_id}/uploads",
        files={"file": (filename, data, content_type)},
        data={"idempotency_key": key},
        headers=visitor.auth,
    )


async def test_uploaded_file_is_stored_once_and_readable_by_its_visitor_only(
    new_visitor,
):
    ana, omar = await new_visitor(), await new_visitor()

    first = await _upload(ana, "../../invoice.pdf", b"%PDF-1.4 invoice")
    retry = await _upload(ana, "../../invoice.pdf", b"%PDF-1.4 invoice")

    assert first.status_code == 201 and retry.status_code == 200
    attachment = first.json()["message"]["attachments"][0]
    assert attachment["filename"] == "invoice.pdf"
    assert await db.fetchval("SELECT count(*) FROM attachment") == 1
    own = await ana.client.get(attachment["url"], params={"token": ana.token})
    assert own.status_code == 200 and own.content == b"%PDF-1.4 invoice"
    assert own.headers["content-disposition"].startswith("attachment")
    other = await omar.client.get(attachment["url"], params={"token": omar.token})
    assert _is_json_error(other, 404)


@pytest.mark.parametrize("filename", ["ملف.txt", "ü.txt"])
async def test_visitor_downloads_file_with_non_latin_name_under_its_own_name(
    new_visitor, filename
):
    visitor = await new_visitor()
    upload = await _upload(visitor, filename, b"hello", "upload-1", "text/plain")
    attachment = upload.json()["message"]["attachments"][0]

    download = await visitor.client.get(
        attachment["url"], params={"token": visitor.token}
    )

    assert download.status_code == 200 and download.content == b"hello"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert f"filename*=UTF-8''{quote(filename)}" in disposition


async def test_forbidden_file_type_gets_415_and_nothing_is_stored(new_visitor):
    visitor = await new_visitor()

    response = await _upload(visitor, "setup.exe", b"MZ\x90\x00")

    assert _is_json_error(response, 415)
    assert ".exe" in response.json()["error"]
    assert await _nothing_written()


async def test_oversize_upload_gets_413_and_nothing_is_stored(new_visitor, monkeypatch):
    monkeypatch.setattr(runtime.current().config.storage, "max_upload_mb", 1)
    visitor = await new_visitor()

    response = await _upload(visitor, "scan.pdf", b"x" * (1024 * 1024 + 1))

    assert _is_json_error(response, 413)
    assert "1 MB" in response.json()["error"]
    assert await _nothing_written()


async def test_upload_without_a_file_gets_400(new_visitor):
    visitor = await new_visitor()

    missing = await visitor.client.post(
        f"/widget/{visitor.inbox_id}/uploads",
        data={"idempotency_key": "upload-key-1"},
        files={"other": ("a.txt", b"a")},
        headers=visitor.auth,
    )
    empty = await _upload(visitor, "empty.pdf", b"")
    not_multipart = await visitor.client.post(
        f"/widget/{visitor.inbox_id}/uploads", json={}, headers=visitor.auth
    )

    assert _is_json_error(missing, 400)
    assert _is_json_error(empty, 400)
    assert _is_json_error(not_multipart, 400)
    assert await _nothing_written()
