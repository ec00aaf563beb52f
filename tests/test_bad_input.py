"""Bad input to the JSON API: a clear 4xx in JSON, and nothing half-written."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from patra import db
from patra.accounts.service import create_api_token
from patra.channels import InboundMessage
from patra.inbox.ingest import ingest_message


async def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {await create_api_token(user.id)}"}


async def start_conversation(inbox_id: int, visitor: str = "visitor-1") -> int:
    result = await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id=visitor,
            external_id=f"{visitor}-{secrets.token_hex(4)}",
            text="Hello there",
            contact_name="Visiting Person",
        )
    )
    return result.conversation_id


async def table_counts() -> dict[str, int]:
    names = (
        "message",
        "attachment",
        "conversation_label",
        "label",
        "procrastinate_jobs",
    )
    return {name: await db.fetchval(f"SELECT count(*) FROM {name}") for name in names}


def assert_explained(response, status: int) -> None:
    """A JSON error body with the status and a sentence a person can act on."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert body["error"].endswith(".") and len(body["error"].split()) >= 5


@pytest.fixture
async def conversation(workspace, make_inbox, test_channel):
    inbox_id = await make_inbox("testchannel", members=[workspace.agent])
    return await start_conversation(inbox_id)


@pytest.fixture
async def owner_headers(workspace):
    return await bearer(workspace.owner)


async def test_malformed_json_is_refused_and_nothing_is_stored(
    client, conversation, owner_headers
):
    before = await table_counts()

    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages",
        headers={**owner_headers, "Content-Type": "application/json"},
        content=b'{"text": "unfinished',
    )

    assert_explained(response, 400)
    assert "not valid JSON" in response.json()["error"]
    assert await table_counts() == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"text": "Hi", "colour": "red"}, "colour"),
        ({"text": "Hi", "kind": "event"}, "kind"),
        ({"text": 42}, "text"),
        ({"text": "Hi", "idempotency_key": ""}, "idempotency_key"),
        ({"text": "Hi", "attachments": [{"filename": "a.txt", "data": "@@@"}]}, "data"),
        (["not", "an", "object"], "data"),
    ],
)
async def test_invalid_message_fields_are_named_in_the_refusal(
    client, conversation, owner_headers, body, field
):
    before = await table_counts()

    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages",
        headers=owner_headers,
        json=body,
    )

    assert_explained(response, 400)
    assert field in response.json()["error"]
    assert await table_counts() == before


async def test_empty_reply_is_refused_with_what_to_do(
    client, conversation, owner_headers
):
    before = await table_counts()

    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages",
        headers=owner_headers,
        json={"text": "   "},
    )

    assert_explained(response, 422)
    assert "Write a message" in response.json()["error"]
    assert await table_counts() == before


async def test_oversize_body_is_refused_with_413(
    client, conversation, owner_headers, patra_config
):
    before = await table_counts()
    limit = patra_config.server.max_body_mb * 1024 * 1024

    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages",
        headers={**owner_headers, "Content-Type": "application/json"},
        content=b'{"text": "' + b"a" * limit + b'"}',
    )

    assert_explained(response, 413)
    assert f"{patra_config.server.max_body_mb} MB" in response.json()["error"]
    assert await table_counts() == before


async def test_oversize_attachment_is_refused_with_413(
    client, conversation, owner_headers, patra_config, monkeypatch
):
    monkeypatch.setattr(patra_config.storage, "max_upload_mb", 1)
    before = await table_counts()
    too_big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()

    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages",
        headers=owner_headers,
        json={
            "text": "Here",
            "attachments": [{"filename": "big.bin", "data": too_big}],
        },
    )

    assert_explained(response, 413)
    assert "at most 1 MB" in response.json()["error"]
    assert await table_counts() == before


async def test_forbidden_attachment_type_is_refused(
    client, conversation, owner_headers, patra_config
):
    extension = patra_config.storage.forbidden_extensions[0]
    before = await table_counts()

    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages",
        headers=owner_headers,
        json={
            "text": "Run this",
            "attachments": [
                {
                    "filename": f"setup{extension}",
                    "data": base64.b64encode(b"MZ").decode(),
                }
            ],
        },
    )

    assert_explained(response, 422)
    assert extension in response.json()["error"]
    assert await table_counts() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/conversations/999999",
        "/api/v1/conversations/999999/messages",
        "/api/v1/contacts/999999",
        "/api/v1/attachments/999999",
        "/api/v1/conversations?inbox_id=999999",
    ],
)
async def test_unknown_ids_are_404_in_json(client, owner_headers, workspace, path):
    response = await client.get(path, headers=owner_headers)

    assert_explained(response, 404)


async def test_reply_to_unknown_conversation_is_404_and_stores_nothing(
    client, conversation, owner_headers
):
    before = await table_counts()

    response = await client.post(
        "/api/v1/conversations/999999/messages",
        headers=owner_headers,
        json={"text": "Anyone?"},
    )

    assert_explained(response, 404)
    assert await table_counts() == before


@pytest.mark.parametrize(
    "query",
    [
        {"status": "closed"},
        {"tab": "everything"},
        {"limit": "1000"},
        {"limit": "many"},
        {"inbox_id": "sales"},
    ],
)
async def test_invalid_list_parameters_are_400(client, owner_headers, workspace, query):
    response = await client.get(
        "/api/v1/conversations", params=query, headers=owner_headers
    )

    assert_explained(response, 400)
    assert next(iter(query)) in response.json()["error"]


async def test_tampered_cursor_asks_to_start_from_the_first_page(
    client, owner_headers, workspace
):
    response = await client.get(
        "/api/v1/conversations",
        params={"cursor": "bm90LWEtY3Vyc29y"},
        headers=owner_headers,
    )

    assert_explained(response, 422)
    assert "first page" in response.json()["error"]


async def test_contact_lookup_without_email_or_query_is_refused(
    client, owner_headers, workspace
):
    response = await client.get("/api/v1/contacts", headers=owner_headers)

    assert_explained(response, 422)


@pytest.mark.parametrize(
    "change, status",
    [
        ({}, 422),
        ({"status": "closed"}, 400),
        ({"priority": "high"}, 400),
        ({"assignee_id": "agent"}, 400),
        ({"labels": "vip"}, 400),
        ({"snoozed_until": "2031-01-01T09:00:00"}, 400),  # no time zone
        ({"snoozed_until": "2001-01-01T09:00:00Z"}, 422),  # in the past
        ({"status": "open", "snoozed_until": "2031-01-01T09:00:00Z"}, 422),
        ({"status": "snoozed"}, 422),  # until when?
    ],
)
async def test_invalid_conversation_changes_are_refused_and_change_nothing(
    client, conversation, owner_headers, change, status
):
    before = await db.fetchrow(
        "SELECT status, assignee_id, snoozed_until FROM conversation WHERE id = $1",
        conversation,
    )
    counts = await table_counts()

    response = await client.patch(
        f"/api/v1/conversations/{conversation}", headers=owner_headers, json=change
    )

    assert_explained(response, status)
    after = await db.fetchrow(
        "SELECT status, assignee_id, snoozed_until FROM conversation WHERE id = $1",
        conversation,
    )
    assert after == before
    assert await table_counts() == counts


async def test_refused_second_change_undoes_the_first(
    client, workspace, make_inbox, test_channel, owner_headers
):
    inbox_id = await make_inbox("testchannel", members=[workspace.agent])
    resolved = await start_conversation(inbox_id, "returning-visitor")
    await db.execute(
        "UPDATE conversation SET status = 'resolved' WHERE id = $1", resolved
    )
    await start_conversation(inbox_id, "returning-visitor")  # the open one now
    counts = await table_counts()

    response = await client.patch(
        f"/api/v1/conversations/{resolved}",
        headers=owner_headers,
        json={"assignee_id": workspace.agent.id, "status": "open", "labels": ["x"]},
    )

    assert_explained(response, 422)
    assert "already has an open conversation" in response.json()["error"]
    row = await db.fetchrow(
        "SELECT status, assignee_id FROM conversation WHERE id = $1", resolved
    )
    assert dict(row) == {"status": "resolved", "assignee_id": None}
    assert await table_counts() == counts


async def test_assigning_someone_outside_the_inbox_is_refused(
    client, workspace, make_inbox, test_channel, owner_headers
):
    inbox_id = await make_inbox("testchannel")  # the agent is not a member
    conversation_id = await start_conversation(inbox_id)

    response = await client.patch(
        f"/api/v1/conversations/{conversation_id}",
        headers=owner_headers,
        json={"assignee_id": workspace.agent.id},
    )

    assert_explained(response, 422)
    assert (
        await db.fetchval(
            "SELECT assignee_id FROM conversation WHERE id = $1", conversation_id
        )
        is None
    )


async def test_bad_token_is_refused_before_the_body_is_read(client, conversation):
    before = await table_counts()

    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages",
        headers={"Authorization": "Bearer forged", "Content-Type": "application/json"},
        content=b"{broken",
    )

    assert_explained(response, 401)
    assert await table_counts() == before


async def test_idempotency_key_from_another_conversation_is_refused(
    client, workspace, make_inbox, test_channel, owner_headers
):
    inbox_id = await make_inbox("testchannel")
    first = await start_conversation(inbox_id, "first-visitor")
    second = await start_conversation(inbox_id, "second-visitor")
    body = {"text": "Thanks!", "idempotency_key": "shared-key"}
    await client.post(
        f"/api/v1/conversations/{first}/messages", headers=owner_headers, json=body
    )
    counts = await table_counts()

    response = await client.post(
        f"/api/v1/conversations/{second}/messages", headers=owner_headers, json=body
    )

    assert_explained(response, 422)
    assert "idempotency_key" in response.json()["error"]
    assert await table_counts() == counts
    assert (
        await db.fetchval(
            "SELECT count(*) FROM message WHERE conversation_id = $1", second
        )
        == 1
    )


async def test_snooze_in_the_future_is_accepted_after_refusals(
    client, conversation, owner_headers
):
    until = datetime.now(UTC) + timedelta(hours=2)

    response = await client.patch(
        f"/api/v1/conversations/{conversation}",
        headers=owner_headers,
        json={"status": "snoozed", "snoozed_until": until.isoformat()},
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "snoozed"


async def test_wrong_method_and_unknown_path_answer_json(client, owner_headers):
    wrong_method = await client.delete("/api/v1/me", headers=owner_headers)
    unknown_path = await client.get("/api/v1/tickets", headers=owner_headers)

    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405
    assert unknown_path.status_code == 404
    assert unknown_path.json()["status"] == 404


async def test_session_cookie_cannot_post_through_the_api(
    client, conversation, workspace, login
):
    await login(client, workspace.owner)
    before = await table_counts()

    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages", json={"text": "Sneaky"}
    )

    assert_explained(response, 401)
    assert await table_counts() == before


async def test_negative_after_id_is_400(client, conversation, owner_headers):
    response = await client.get(
        f"/api/v1/conversations/{conversation}/messages",
        params={"after_id": -1},
        headers=owner_headers,
    )

    assert_explained(response, 400)
    assert "after_id" in response.json()["error"]


async def test_server_fault_answers_json_without_internals(
    client, owner_headers, workspace, monkeypatch
):
    from patra.inbox import conversations

    async def broken(*args, **kwargs):
        raise RuntimeError("connection to the secret host 10.0.0.7 lost")

    monkeypatch.setattr(conversations, "get_contact", broken)

    response = await client.get("/api/v1/contacts/1", headers=owner_headers)

    assert_explained(response, 500)
    assert "10.0.0.7" not in response.text


@pytest.mark.parametrize("filename", ["setup.exe.", "setup.exe ", "SETUP.EXE. . "])
async def test_forbidden_type_cannot_hide_behind_trailing_dots_or_spaces(
    client, conversation, owner_headers, filename
):
    before = await table_counts()
    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages",
        headers=owner_headers,
        json={
            "text": "Run this",
            "attachments": [
                {"filename": filename, "data": base64.b64encode(b"MZ").decode()}
            ],
        },
    )
    assert_explained(response, 422)
    assert await table_counts() == before


async def test_overlong_reply_is_refused_and_nothing_is_stored(
    client, conversation, owner_headers
):
    before = await table_counts()
    response = await client.post(
        f"/api/v1/conversations/{conversation}/messages",
        headers=owner_headers,
        json={"text": "A" * 300_000, "kind": "note"},
    )
    assert_explained(response, 422)
    assert "20,000" in response.json()["error"]
    assert await table_counts() == before


async def test_composer_refuses_an_unknown_kind_instead_of_sending_it(
    client, conversation, workspace, login
):
    from patra.testing import csrf_token

    await login(client, workspace.owner)
    before = await table_counts()
    response = await client.post(
        f"/inbox/conversations/{conversation}/messages",
        data={"text": "hello", "kind": "system"},
        headers={"x-csrftoken": csrf_token(client), "hx-request": "true"},
    )
    assert response.status_code == 400
    assert "Unknown kind" in response.text
    assert await table_counts() == before
