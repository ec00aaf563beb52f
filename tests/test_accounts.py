"""Accounts in the web UI: first-run setup, log in and out, sessions, CSRF."""

from __future__ import annotations

from patra import db
from patra.channels import InboundMessage
from patra.inbox.ingest import ingest_message
from patra.testing import TEST_PASSWORD, csrf_token


def assert_page_headers(response) -> None:
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def _session_cookie_header(response) -> str:
    cookies = [
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("patra_session=")
    ]
    assert cookies, "no session cookie was set"
    return cookies[0]


async def test_setup_page_shown_when_no_user_exists(client):
    response = await client.get("/", follow_redirects=True)
    assert response.status_code == 200
    assert str(response.url).endswith("/setup")
    assert "Create workspace" in response.text
    assert_page_headers(response)
    login = await client.get("/login")
    assert login.status_code in (302, 303) and login.headers["location"] == "/setup"


async def test_setup_creates_the_owner_and_logs_in(client):
    await client.get("/setup")
    response = await client.post(
        "/setup",
        data={
            "workspace": "Shop",
            "name": "Olga",
            "email": "olga@example.test",
            "password": TEST_PASSWORD,
        },
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code in (302, 303)
    assert "httponly" in _session_cookie_header(response).lower()
    role = await db.fetchval(
        "SELECT role FROM membership m JOIN app_user u ON u.id = m.user_id "
        "WHERE u.email = 'olga@example.test'"
    )
    assert role == "owner"
    page = await client.get("/admin/inboxes")
    assert page.status_code == 200
    # Setup is closed once someone exists.
    again = await client.get("/setup")
    assert again.status_code in (302, 303)


async def test_setup_with_a_short_password_explains_and_creates_nothing(client):
    await client.get("/setup")
    response = await client.post(
        "/setup",
        data={"name": "Olga", "email": "olga@example.test", "password": "short"},
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code == 400
    assert "at least 10 characters" in response.text
    assert await db.fetchval("SELECT count(*) FROM app_user") == 0


async def test_login_sets_a_strict_cookie_and_a_new_session_each_time(
    client, workspace
):
    await client.get("/login")
    tokens = []
    for _ in range(2):
        response = await client.post(
            "/login",
            data={
                "email": workspace.agent.email,
                "password": TEST_PASSWORD,
                "next": "/inbox",
            },
            headers={"x-csrftoken": csrf_token(client)},
        )
        assert response.status_code in (302, 303)
        assert response.headers["location"] == "/inbox"
        header = _session_cookie_header(response).lower()
        assert "httponly" in header
        assert "samesite=lax" in header
        tokens.append(client.cookies.get("patra_session"))
    assert tokens[0] != tokens[1]
    # Logging in again ended the earlier session.
    assert await db.fetchval("SELECT count(*) FROM session") == 1


async def test_session_cookie_is_secure_over_https(client, workspace):
    await client.get("/login")
    response = await client.post(
        "https://testserver.local/login",
        data={"email": workspace.agent.email, "password": TEST_PASSWORD},
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code in (302, 303)
    assert "secure" in _session_cookie_header(response).lower()


async def test_wrong_password_is_refused_with_a_page(client, workspace):
    await client.get("/login")
    response = await client.post(
        "/login",
        data={"email": workspace.agent.email, "password": "not the password"},
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code == 400
    assert "do not match" in response.text
    assert "patra_session" not in client.cookies


async def test_login_does_not_redirect_off_site(client, workspace):
    await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "email": workspace.agent.email,
            "password": TEST_PASSWORD,
            "next": "//evil.example/",
        },
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.headers["location"] == "/"


async def test_logout_ends_the_session(client, workspace, login):
    await login(client, workspace.agent)
    token = client.cookies.get("patra_session")
    assert (await client.get("/inbox")).status_code == 200
    response = await client.post("/logout", headers={"x-csrftoken": csrf_token(client)})
    assert response.status_code in (302, 303)
    assert await db.fetchval("SELECT count(*) FROM session") == 0
    # The old cookie no longer works even if someone kept it.
    client.cookies.set("patra_session", token)
    again = await client.get("/inbox")
    assert again.status_code in (302, 303)
    assert again.headers["location"].startswith("/login")


async def test_password_change_ends_every_session(client, workspace, login):
    await login(client, workspace.agent)
    page = await client.get("/account")
    assert page.status_code == 200 and "Change password" in page.text
    response = await client.post(
        "/account/password",
        data={"current": TEST_PASSWORD, "new": "a brand new passphrase"},
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code in (302, 303)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM session WHERE user_id = $1", workspace.agent.id
        )
        == 0
    )
    assert (await client.get("/inbox")).status_code in (302, 303)


async def test_password_change_with_wrong_current_password_is_refused(
    client, workspace, login
):
    await login(client, workspace.agent)
    response = await client.post(
        "/account/password",
        data={"current": "wrong", "new": "a brand new passphrase"},
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code == 400
    assert "current password is not correct" in response.text


async def test_deactivation_ends_the_agents_sessions(client, workspace, login):
    await login(client, workspace.agent)
    agent_cookie = client.cookies.get("patra_session")
    client.cookies.clear()
    await login(client, workspace.admin)
    response = await client.post(
        f"/admin/agents/{workspace.agent.id}/deactivate",
        headers={"x-csrftoken": csrf_token(client)},
    )
    assert response.status_code in (302, 303)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM session WHERE user_id = $1", workspace.agent.id
        )
        == 0
    )
    client.cookies.clear()
    client.cookies.set("patra_session", agent_cookie)
    assert (await client.get("/inbox")).status_code in (302, 303)


async def test_post_without_csrf_token_is_refused(client, workspace, login):
    await login(client, workspace.agent)
    response = await client.post("/logout")
    assert response.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM session") == 1


async def test_htmx_post_without_csrf_token_is_refused(
    client, workspace, login, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel", members=[workspace.agent])
    result = await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id="ana",
            external_id="m-1",
            text="Hello",
            contact_name="Ana",
        )
    )
    await login(client, workspace.agent)
    response = await client.post(
        f"/inbox/conversations/{result.conversation_id}/status",
        data={"status": "resolved"},
        headers={"hx-request": "true"},
    )
    assert response.status_code == 403
    assert response.headers.get("hx-retarget") == "#flash"
    status = await db.fetchval(
        "SELECT status FROM conversation WHERE id = $1", result.conversation_id
    )
    assert status == "open"


async def test_csrf_token_of_another_secret_is_refused(client, workspace, login):
    await login(client, workspace.agent)
    response = await client.post("/logout", headers={"x-csrftoken": "forged" * 12})
    assert response.status_code == 403


async def test_logout_is_not_possible_with_get(client, workspace, login):
    await login(client, workspace.agent)
    response = await client.get("/logout")
    assert response.status_code == 405
    assert await db.fetchval("SELECT count(*) FROM session") == 1


async def test_pages_need_a_login(client, workspace):
    for path in ("/inbox", "/search?q=x", "/account", "/admin/inboxes"):
        response = await client.get(path)
        assert response.status_code in (302, 303), path
        assert response.headers["location"].startswith("/login?next=")
    htmx = await client.get("/inbox/list", headers={"hx-request": "true"})
    assert htmx.headers.get("hx-redirect", "").startswith("/login")


async def test_agents_cannot_open_admin_pages(client, workspace, login):
    await login(client, workspace.agent)
    response = await client.get("/admin/inboxes")
    assert response.status_code == 403
    assert "Only admins" in response.text
    assert_page_headers(response)
