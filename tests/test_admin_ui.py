"""Admin pages: inboxes with their channel settings and members, and agents."""

from __future__ import annotations

import re

import pytest

from patra import db
from patra.hookspecs import hookimpl
from patra.testing import TEST_PASSWORD, csrf_token


def form_headers(client) -> dict[str, str]:
    return {"x-csrftoken": csrf_token(client)}


class SetupHintPlugin:
    """A plugin that shows a snippet on test channel inboxes and a menu link."""

    @staticmethod
    @hookimpl
    def inbox_setup_hints(inbox, public_url):
        if inbox["channel_type"] != "testchannel":
            return None
        return f'<pre class="snippet">&lt;script src="{public_url}/t.js"&gt;</pre>'

    @staticmethod
    @hookimpl
    def menu_links(user):
        return [{"href": "/reports", "label": "Reports"}]


@pytest.fixture
def hint_plugin(patra_runtime):
    plugin = SetupHintPlugin()
    patra_runtime.plugins.register(plugin, name="test-hints")
    yield plugin
    patra_runtime.plugins.unregister(plugin)


async def test_admin_creates_an_inbox_from_the_channels_fields(
    client, workspace, login, test_channel, hint_plugin
):
    await login(client, workspace.admin)
    listing = await client.get("/admin/inboxes")
    assert "No inboxes yet" in listing.text
    assert 'href="/reports"' in listing.text  # the plugin's menu link

    form = await client.get("/admin/inboxes/new?channel_type=testchannel")
    assert form.status_code == 200
    assert 'name="setting_token" type="password"' in form.text
    fields = await client.get(
        "/admin/inboxes/new?channel_type=testchannel", headers={"hx-request": "true"}
    )
    assert fields.text.lstrip().startswith('<div id="channel-fields"')

    response = await client.post(
        "/admin/inboxes",
        data={
            "name": "Support",
            "channel_type": "testchannel",
            "setting_token": "s3cret-token-value",
        },
        headers=form_headers(client),
    )
    assert response.status_code in (302, 303)
    inbox = await db.fetchrow("SELECT * FROM inbox")
    assert response.headers["location"] == f"/admin/inboxes/{inbox['id']}"
    assert inbox["name"] == "Support" and inbox["channel_type"] == "testchannel"
    assert b"s3cret" not in bytes(inbox["secrets"])

    page = await client.get(f"/admin/inboxes/{inbox['id']}")
    assert page.status_code == 200
    assert "s3cret-token-value" not in page.text
    assert "Saved — leave empty to keep it" in page.text
    assert '&lt;script src="http://testserver.local/t.js"&gt;' in page.text

    # Saving without retyping the secret keeps it.
    response = await client.post(
        f"/admin/inboxes/{inbox['id']}",
        data={"name": "Support desk", "setting_token": "", "connected": "on"},
        headers=form_headers(client),
    )
    assert response.status_code in (302, 303)
    from patra import runtime

    row = await db.fetchrow("SELECT name, secrets FROM inbox")
    assert row["name"] == "Support desk"
    assert runtime.current().secrets.open(row["secrets"]) == {
        "token": "s3cret-token-value"
    }


async def test_inbox_form_errors_are_explained_and_nothing_is_created(
    client, workspace, login, test_channel
):
    await login(client, workspace.admin)
    response = await client.post(
        "/admin/inboxes",
        data={"name": "", "channel_type": "testchannel"},
        headers=form_headers(client),
    )
    assert response.status_code == 400
    assert "Give the inbox a name." in response.text
    response = await client.post(
        "/admin/inboxes",
        data={"name": "X", "channel_type": "nope"},
        headers=form_headers(client),
    )
    assert response.status_code == 400
    assert "Choose a channel type." in response.text
    assert await db.fetchval("SELECT count(*) FROM inbox") == 0


async def test_members_decide_which_agents_see_an_inbox(
    client, workspace, login, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel", "Sales")
    await login(client, workspace.admin)
    page = await client.get(f"/admin/inboxes/{inbox_id}")
    assert f'name="user_id" value="{workspace.agent.id}"' in page.text
    response = await client.post(
        f"/admin/inboxes/{inbox_id}/members",
        data={"user_id": [str(workspace.agent.id)]},
        headers=form_headers(client),
    )
    assert response.status_code in (302, 303)
    members = await db.fetch(
        "SELECT user_id FROM inbox_member WHERE inbox_id = $1", inbox_id
    )
    assert [row["user_id"] for row in members] == [workspace.agent.id]


async def test_admin_adds_and_deactivates_an_agent(
    client, workspace, login, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel", "Support")
    await login(client, workspace.admin)
    page = await client.get("/admin/agents")
    assert workspace.agent.email in page.text
    # An admin cannot create an owner.
    assert 'value="owner"' not in page.text

    response = await client.post(
        "/admin/agents",
        data={
            "name": "Nadia",
            "email": "nadia@example.test",
            "password": TEST_PASSWORD,
            "role": "agent",
            "inbox_id": [str(inbox_id)],
        },
        headers=form_headers(client),
    )
    assert response.status_code in (302, 303)
    nadia = await db.fetchval(
        "SELECT id FROM app_user WHERE email = 'nadia@example.test'"
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM inbox_member WHERE user_id = $1 AND inbox_id = $2",
            nadia,
            inbox_id,
        )
        == 1
    )

    duplicate = await client.post(
        "/admin/agents",
        data={
            "name": "Nadia",
            "email": "NADIA@example.test",
            "password": TEST_PASSWORD,
            "role": "agent",
        },
        headers=form_headers(client),
    )
    assert duplicate.status_code == 400 and "already exists" in duplicate.text
    owner = await client.post(
        "/admin/agents",
        data={
            "name": "Boss",
            "email": "boss@example.test",
            "password": TEST_PASSWORD,
            "role": "owner",
        },
        headers=form_headers(client),
    )
    assert owner.status_code == 400
    assert await db.fetchval("SELECT count(*) FROM app_user") == 4

    response = await client.post(
        f"/admin/agents/{nadia}/deactivate", headers=form_headers(client)
    )
    assert response.status_code in (302, 303)
    assert (
        await db.fetchval("SELECT is_active FROM app_user WHERE id = $1", nadia)
        is False
    )
    page = await client.get("/admin/agents")
    assert re.search(r"Nadia\s*<span class=\"chip\">Deactivated", page.text)

    yourself = await client.post(
        f"/admin/agents/{workspace.admin.id}/deactivate", headers=form_headers(client)
    )
    assert yourself.status_code == 400
    assert "your own account" in yourself.text
    owner = await client.post(
        f"/admin/agents/{workspace.owner.id}/deactivate", headers=form_headers(client)
    )
    assert owner.status_code == 400
    assert (
        await db.fetchval(
            "SELECT bool_and(is_active) FROM app_user WHERE id <> $1", nadia
        )
        is True
    )


async def test_agents_cannot_use_admin_actions(
    client, workspace, login, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel", "Support")
    await login(client, workspace.agent)
    for path, data in (
        ("/admin/inboxes", {"name": "X", "channel_type": "testchannel"}),
        (f"/admin/inboxes/{inbox_id}/members", {"user_id": str(workspace.agent.id)}),
        (
            "/admin/agents",
            {
                "name": "Y",
                "email": "y@example.test",
                "password": TEST_PASSWORD,
                "role": "admin",
            },
        ),
        (f"/admin/agents/{workspace.admin.id}/deactivate", {}),
    ):
        response = await client.post(path, data=data, headers=form_headers(client))
        assert response.status_code == 403, path
    assert await db.fetchval("SELECT count(*) FROM inbox") == 1
    assert await db.fetchval("SELECT count(*) FROM inbox_member") == 0
    assert await db.fetchval("SELECT bool_and(is_active) FROM app_user") is True


async def test_unticking_a_checkbox_that_defaults_on_turns_it_off(
    client, workspace, login, test_channel
):
    await login(client, workspace.admin)
    await client.post(
        "/admin/inboxes",
        data={"name": "Support", "channel_type": "testchannel", "setting_notify": "on"},
        headers=form_headers(client),
    )
    inbox = await db.fetchrow("SELECT id, settings FROM inbox")
    assert inbox["settings"]["notify"] is True

    # The browser sends nothing for the unticked box.
    await client.post(
        f"/admin/inboxes/{inbox['id']}",
        data={"name": "Support", "setting_token": "", "connected": "on"},
        headers=form_headers(client),
    )
    settings = await db.fetchval("SELECT settings FROM inbox")
    assert settings["notify"] is False


async def test_test_connection_shows_each_servers_answer(
    client, workspace, login, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel", name="Support")
    await login(client, workspace.admin)
    page = await client.get(f"/admin/inboxes/{inbox_id}")
    assert "Test connection" in page.text and "Working" in page.text

    response = await client.post(
        f"/admin/inboxes/{inbox_id}/test", headers=form_headers(client)
    )
    assert response.status_code == 200
    assert "test.example" in response.text
    assert "220 test.example ready" in response.text


async def test_admins_see_quarantined_payloads_with_their_reason(
    client, workspace, login, make_inbox, test_channel
):
    from patra.inbox.ingest import quarantine

    inbox_id = await make_inbox("testchannel", name="Support mail")
    item_id = await quarantine(
        inbox_id, "testchannel", "The body is not valid MIME.", b"\x00garbled"
    )
    await login(client, workspace.agent)
    assert (await client.get("/admin/quarantine")).status_code == 403

    await login(client, workspace.admin)
    page = await client.get("/admin/quarantine")
    assert "The body is not valid MIME." in page.text and "Support mail" in page.text
    payload = await client.get(f"/admin/quarantine/{item_id}/payload")
    assert payload.content == b"\x00garbled"

    await client.post(
        f"/admin/quarantine/{item_id}/resolve", headers=form_headers(client)
    )
    assert "Nothing in quarantine" in (await client.get("/admin/quarantine")).text
