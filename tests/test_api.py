"""The JSON API v1 as an integration sees it: tokens, conversations, messages."""

from __future__ import annotations

import asyncio
import base64
import secrets
import sys
from datetime import UTC, datetime, timedelta

from patra import db
from patra.accounts.service import create_api_token, revoke_api_tokens, set_active
from patra.channels import InboundMessage
from patra.inbox.ingest import ingest_message
from patra.testing import TEST_PASSWORD


async def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {await create_api_token(user.id)}"}


async def start_conversation(
    inbox_id: int, visitor: str = "visitor-1", text: str = "Hello there", **contact
) -> int:
    result = await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id=visitor,
            external_id=f"{visitor}-{secrets.token_hex(4)}",
            text=text,
            contact_name=contact.get("name", "Visiting Person"),
            contact_email=contact.get("email"),
        )
    )
    return result.conversation_id


async def run_cli(config_file, *args: str, stdin: str = "") -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "patra.cli",
        "--config",
        str(config_file),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode())
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_token_printed_by_cli_opens_the_api_until_revoked(
    client, workspace, patra_config, tmp_path
):
    config_file = tmp_path / "patra.toml"
    enabled = ", ".join(f'"{name}"' for name in patra_config.plugins.enabled)
    config_file.write_text(f"""[server]
secret_key = "{patra_config.server.secret_key}"
data_dir = "{patra_config.server.data_dir}"

[database]
url = "{patra_config.database.url}"

[plugins]
enabled = [{enabled}]
""")
    await run_cli(
        config_file,
        "users",
        "create",
        "--email",
        "cli@example.test",
        "--name",
        "Command Line",
        "--role",
        "admin",
        stdin=TEST_PASSWORD + "\n",
    )
    printed = await run_cli(
        config_file, "tokens", "create", "--email", "cli@example.test"
    )
    token = printed.strip().splitlines()[-1]

    response = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["email"] == "cli@example.test"
    assert response.json()["role"] == "admin"

    revoked = await run_cli(
        config_file, "tokens", "revoke", "--email", "cli@example.test"
    )
    after_revoke = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert "Revoked 1 API token" in revoked
    assert after_revoke.status_code == 401


async def test_session_cookie_alone_does_not_open_the_api(client, workspace, login):
    await login(client, workspace.owner)

    refused = await client.get("/api/v1/me")
    allowed = await client.get("/api/v1/me", headers=await bearer(workspace.owner))

    assert refused.status_code == 401
    assert refused.json()["status"] == 401
    assert "patra tokens create" in refused.json()["error"]
    assert allowed.status_code == 200


async def test_forged_revoked_and_deactivated_tokens_are_refused(client, workspace):
    revoked = await bearer(workspace.admin)
    deactivated = await bearer(workspace.agent)
    for headers in (revoked, deactivated):
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    await revoke_api_tokens(workspace.admin.id)
    await set_active(workspace.id, workspace.agent.id, False, workspace.owner.id)
    forged = {"Authorization": "Bearer patra_" + secrets.token_urlsafe(32)}

    for headers in (forged, revoked, deactivated):
        response = await client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "not valid, was revoked" in response.json()["error"]
    other_scheme = await client.get(
        "/api/v1/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}
    )
    assert other_scheme.status_code == 401
    assert "needs an API token" in other_scheme.json()["error"]


async def test_agent_sees_only_conversations_of_their_inboxes(
    client, workspace, make_inbox, test_channel
):
    own_inbox = await make_inbox("testchannel", "Sales", members=[workspace.agent])
    other_inbox = await make_inbox("testchannel", "Billing")
    visible = await start_conversation(own_inbox, "v1", email="seen@example.test")
    hidden = await start_conversation(other_inbox, "v2", email="hidden@example.test")
    hidden_contact = await db.fetchval(
        "SELECT contact_id FROM conversation WHERE id = $1", hidden
    )
    agent = await bearer(workspace.agent)

    listed = await client.get("/api/v1/conversations", headers=agent)
    by_inbox = await client.get(
        f"/api/v1/conversations?inbox_id={other_inbox}", headers=agent
    )
    direct = await client.get(f"/api/v1/conversations/{hidden}", headers=agent)
    missing = await client.get("/api/v1/conversations/999999", headers=agent)
    messages = await client.get(
        f"/api/v1/conversations/{hidden}/messages", headers=agent
    )
    reply = await client.post(
        f"/api/v1/conversations/{hidden}/messages", headers=agent, json={"text": "Hi"}
    )
    change = await client.patch(
        f"/api/v1/conversations/{hidden}", headers=agent, json={"status": "resolved"}
    )
    contact = await client.get(f"/api/v1/contacts/{hidden_contact}", headers=agent)
    lookup = await client.get(
        "/api/v1/contacts", params={"email": "hidden@example.test"}, headers=agent
    )
    me = await client.get("/api/v1/me", headers=agent)

    assert [item["id"] for item in listed.json()["items"]] == [visible]
    assert by_inbox.status_code == 404
    assert direct.status_code == missing.status_code == 404
    assert direct.json()["error"].replace(str(hidden), "N") == missing.json()[
        "error"
    ].replace("999999", "N")
    assert messages.status_code == reply.status_code == change.status_code == 404
    assert contact.status_code == 404
    assert lookup.json()["items"] == []
    assert [inbox["id"] for inbox in me.json()["inboxes"]] == [own_inbox]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM message WHERE conversation_id = $1", hidden
        )
        == 1
    )
    assert (
        await db.fetchval("SELECT status FROM conversation WHERE id = $1", hidden)
        == "open"
    )


async def test_reply_is_stored_queued_with_a_delivery_job(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel", members=[workspace.agent])
    conversation_id = await start_conversation(inbox_id)
    agent = await bearer(workspace.agent)

    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=agent,
        json={"text": "We are on it."},
    )

    assert response.status_code == 201, response.text
    message = response.json()
    assert message["delivery_status"] == "queued"
    assert message["kind"] == "message" and message["direction"] == "out"
    assert message["sender"] == {
        "type": "user",
        "id": workspace.agent.id,
        "name": workspace.agent.name,
    }
    job = await db.fetchrow(
        "SELECT task_name, args, status, queue_name FROM procrastinate_jobs"
    )
    assert job["task_name"] == "patra.deliver_message"
    assert job["args"] == {"message_id": message["id"]}
    assert job["status"] == "todo"
    listed = await client.get(
        f"/api/v1/conversations/{conversation_id}/messages", headers=agent
    )
    assert [item["text"] for item in listed.json()["items"]] == [
        "Hello there",
        "We are on it.",
    ]


async def test_private_note_is_not_queued_for_delivery(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    conversation_id = await start_conversation(inbox_id)

    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=await bearer(workspace.owner),
        json={"text": "Customer is a VIP.", "kind": "note"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "note"
    assert response.json()["delivery_status"] != "queued"
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 0


async def test_retried_post_with_same_idempotency_key_stores_one_reply(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    conversation_id = await start_conversation(inbox_id)
    owner = await bearer(workspace.owner)
    body = {"text": "Sent once.", "idempotency_key": "retry-42"}
    url = f"/api/v1/conversations/{conversation_id}/messages"

    first = await client.post(url, headers=owner, json=body)
    second = await client.post(url, headers=owner, json=body)

    assert first.json()["id"] == second.json()["id"]
    assert (
        await db.fetchval("SELECT count(*) FROM message WHERE text = 'Sent once.'") == 1
    )
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 1


async def test_status_assignee_and_labels_change_shows_in_next_read(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel", members=[workspace.agent])
    conversation_id = await start_conversation(inbox_id)
    owner = await bearer(workspace.owner)
    url = f"/api/v1/conversations/{conversation_id}"

    changed = await client.patch(
        url,
        headers=owner,
        json={
            "status": "pending",
            "assignee_id": workspace.agent.id,
            "labels": ["Billing", "vip"],
        },
    )
    after_change = await client.get(url, headers=owner)
    unassigned = await client.patch(url, headers=owner, json={"assignee_id": None})
    after_unassign = await client.get(url, headers=owner)

    assert changed.status_code == 200, changed.text
    assert after_change.json()["status"] == "pending"
    assert after_change.json()["assignee"] == {
        "id": workspace.agent.id,
        "name": workspace.agent.name,
    }
    assert after_change.json()["labels"] == ["billing", "vip"]
    assert unassigned.status_code == 200
    assert after_unassign.json()["assignee"] is None
    assert after_unassign.json()["status"] == "pending"
    mine = await client.get(
        "/api/v1/conversations",
        params={"status": "pending", "tab": "unassigned"},
        headers=owner,
    )
    assert [item["id"] for item in mine.json()["items"]] == [conversation_id]


async def test_snooze_until_a_time_through_the_api(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    conversation_id = await start_conversation(inbox_id)
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)

    response = await client.patch(
        f"/api/v1/conversations/{conversation_id}",
        headers=await bearer(workspace.owner),
        json={"snoozed_until": until.isoformat()},
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "snoozed"
    assert datetime.fromisoformat(response.json()["snoozed_until"]) == until


async def test_keyset_pagination_is_stable_when_new_activity_arrives(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    created = [await start_conversation(inbox_id, f"visitor-{n}") for n in range(7)]
    owner = await bearer(workspace.owner)

    first = (await client.get("/api/v1/conversations?limit=3", headers=owner)).json()
    await start_conversation(inbox_id, "late-visitor")  # newest activity, page 1
    await start_conversation(inbox_id, "visitor-6", text="and again")  # already seen
    second = (
        await client.get(
            "/api/v1/conversations",
            params={"limit": 3, "cursor": first["next_cursor"]},
            headers=owner,
        )
    ).json()
    third = (
        await client.get(
            "/api/v1/conversations",
            params={"limit": 3, "cursor": second["next_cursor"]},
            headers=owner,
        )
    ).json()

    walked = [item["id"] for page in (first, second, third) for item in page["items"]]
    assert walked == list(reversed(created))
    assert third["next_cursor"] is None


async def test_messages_after_an_id_return_only_newer_ones(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    conversation_id = await start_conversation(inbox_id, "v", text="first")
    await start_conversation(inbox_id, "v", text="second")
    await start_conversation(inbox_id, "v", text="third")
    owner = await bearer(workspace.owner)
    url = f"/api/v1/conversations/{conversation_id}/messages"
    everything = (await client.get(url, headers=owner)).json()["items"]

    newer = await client.get(
        url, params={"after_id": everything[0]["id"]}, headers=owner
    )

    assert [item["text"] for item in everything] == ["first", "second", "third"]
    assert [item["text"] for item in newer.json()["items"]] == ["second", "third"]
    assert newer.json()["items"][0]["sender"]["type"] == "contact"


async def test_contacts_found_by_email_and_by_search(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    conversation_id = await start_conversation(
        inbox_id, "ana", email="Ana.Lopez@example.test", name="Ana Lopez"
    )
    await start_conversation(inbox_id, "bo", email="bo@example.test", name="Bo Berg")
    owner = await bearer(workspace.owner)

    by_email = await client.get(
        "/api/v1/contacts", params={"email": "ana.lopez@example.test"}, headers=owner
    )
    by_query = await client.get("/api/v1/contacts", params={"q": "berg"}, headers=owner)
    [ana] = by_email.json()["items"]
    detail = await client.get(f"/api/v1/contacts/{ana['id']}", headers=owner)

    assert ana["name"] == "Ana Lopez"
    assert [item["name"] for item in by_query.json()["items"]] == ["Bo Berg"]
    assert detail.json()["email"] == "Ana.Lopez@example.test"
    assert [item["id"] for item in detail.json()["conversations"]] == [conversation_id]


async def test_reply_with_attachment_can_be_downloaded_again(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    conversation_id = await start_conversation(inbox_id)
    owner = await bearer(workspace.owner)
    content = b"%PDF-1.4 invoice 2031"

    posted = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=owner,
        json={
            "text": "Your invoice.",
            "attachments": [
                {
                    "filename": "invoice.pdf",
                    "content_type": "application/pdf",
                    "data": base64.b64encode(content).decode(),
                }
            ],
        },
    )
    [attachment] = posted.json()["attachments"]
    downloaded = await client.get(attachment["url"], headers=owner)
    without_token = await client.get(attachment["url"])

    assert attachment["filename"] == "invoice.pdf"
    assert attachment["size"] == len(content)
    assert downloaded.content == content
    assert downloaded.headers["content-disposition"].startswith("attachment;")
    assert without_token.status_code == 401


async def test_openapi_schema_is_served_and_lists_every_v1_path(client):
    response = await client.get("/api/schema/openapi.json")
    schema = response.json()
    app = client._transport.app
    v1_paths = {
        route.path_format for route in app.routes if route.path.startswith("/api/v1/")
    }

    assert response.status_code == 200
    assert v1_paths and v1_paths <= set(schema["paths"])
    scheme = schema["components"]["securitySchemes"]["BearerToken"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    reply = schema["paths"]["/api/v1/conversations/{conversation_id}/messages"]["post"]
    assert reply["security"] == [{"BearerToken": []}]
    assert "NewMessage" in str(reply["requestBody"])
    kinds = schema["components"]["schemas"]["NewMessage"]["properties"]["kind"]
    assert set(kinds["enum"]) == {"message", "note"}


async def test_api_docs_describe_every_v1_endpoint(client):
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    app = client._transport.app
    endpoints = {
        (
            method,
            route.path_format.replace("{conversation_id}", "{id}")
            .replace("{contact_id}", "{id}")
            .replace("{attachment_id}", "{id}"),
        )
        for route in app.routes
        if route.path.startswith("/api/v1/")
        for method in route.methods - {"HEAD", "OPTIONS"}
    }

    undocumented = {
        f"{method} {path}"
        for method, path in endpoints
        if f"`{method} {path}" not in docs
    }
    assert endpoints and not undocumented


async def test_walking_messages_by_after_id_skips_none(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    texts = [f"message {n}" for n in range(7)]
    conversation_id = None
    for text in texts:
        conversation_id = await start_conversation(inbox_id, "v", text=text)
    owner = await bearer(workspace.owner)
    url = f"/api/v1/conversations/{conversation_id}/messages"

    walked, after_id, requests = [], 0, 0
    while True:
        page = (
            await client.get(
                url, params={"after_id": after_id, "limit": 3}, headers=owner
            )
        ).json()
        requests += 1
        walked += [item["text"] for item in page["items"]]
        if not page["has_more"]:
            break
        after_id = page["items"][-1]["id"]
    latest = (await client.get(url, params={"limit": 2}, headers=owner)).json()

    assert walked == texts
    assert requests == 3
    assert [item["text"] for item in latest["items"]] == texts[-2:]


async def test_concurrent_posts_with_one_idempotency_key_store_one_reply(
    client, workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    conversation_id = await start_conversation(inbox_id)
    owner = await bearer(workspace.owner)
    url = f"/api/v1/conversations/{conversation_id}/messages"
    body = {"text": "Only once, please.", "idempotency_key": "double-click"}

    responses = await asyncio.gather(
        *(client.post(url, headers=owner, json=body) for _ in range(6))
    )

    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["id"] for response in responses}) == 1
    assert (
        await db.fetchval(
            "SELECT count(*) FROM message WHERE idempotency_key = 'double-click'"
        )
        == 1
    )
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 1
