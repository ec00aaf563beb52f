"""Errors read as sentences that say what to do, in pages and in JSON."""

import pytest

from patra.testing import csrf_token


@pytest.mark.parametrize(
    "path",
    [
        "/inbox/conversations/99999999999999999999",
        "/admin/inboxes/99999999999999999999",
        "/api/v1/conversations/99999999999999999999",
    ],
)
async def test_an_id_too_large_for_any_row_is_not_found(client, workspace, login, path):
    await login(client, workspace.owner)
    from patra.accounts.service import create_api_token

    token = await create_api_token(workspace.owner.id)
    response = await client.get(path, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 404


async def test_unknown_api_path_answers_a_sentence(client):
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"].startswith("Nothing exists at this address")


async def test_expired_form_explains_itself(client, workspace):
    await client.get("/login")
    response = await client.post(
        "/login", data={"email": workspace.owner.email, "password": "x"}
    )
    assert response.status_code == 403
    assert "reload the page and try again" in response.text
    assert csrf_token(client)  # a fresh token came with the page


async def test_someone_elses_attachment_looks_exactly_like_a_missing_one(
    client, workspace, make_inbox, test_channel
):
    from patra import db
    from patra.accounts.service import create_api_token
    from patra.channels import InboundAttachment, InboundMessage
    from patra.inbox.ingest import ingest_message

    inbox_id = await make_inbox("testchannel")  # the agent is not a member
    await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id="v",
            external_id="e",
            attachments=[InboundAttachment("a.txt", "text/plain", b"hi")],
        )
    )
    attachment_id = await db.fetchval("SELECT id FROM attachment")
    headers = {"authorization": f"Bearer {await create_api_token(workspace.agent.id)}"}

    hidden = await client.get(f"/api/v1/attachments/{attachment_id}", headers=headers)
    missing = await client.get("/api/v1/attachments/999999", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert "onversation" not in hidden.json()["error"]
    assert hidden.json()["error"].replace(str(attachment_id), "N") == (
        missing.json()["error"].replace("999999", "N")
    )
