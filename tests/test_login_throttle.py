"""Password guessing on the login form is slowed down per account and per address."""

from __future__ import annotations

from patra import db
from patra.accounts import login_throttle
from patra.testing import TEST_PASSWORD, csrf_token


async def _log_in(client, email: str, password: str):
    return await client.post(
        "/login",
        data={"email": email, "password": password, "next": "/inbox"},
        headers={"x-csrftoken": csrf_token(client)},
    )


async def test_account_is_paused_after_ten_wrong_passwords_even_for_the_right_one(
    client, workspace
):
    await client.get("/login")
    email = workspace.agent.email

    wrong = [
        (await _log_in(client, email, f"guess-{attempt}")).status_code
        for attempt in range(login_throttle.FAILURES_PER_EMAIL)
    ]
    right = await _log_in(client, email.upper(), TEST_PASSWORD)

    assert wrong == [400] * login_throttle.FAILURES_PER_EMAIL
    assert right.status_code == 429
    assert "Please wait 15 minutes and try again." in right.text
    assert int(right.headers["retry-after"]) > 14 * 60
    assert "patra_session" not in client.cookies
    assert await db.fetchval("SELECT count(*) FROM session") == 0
    audit = await db.fetch(
        "SELECT workspace_id, target_id, details, ip FROM audit_event "
        "WHERE action = 'user.login_throttled'"
    )
    assert len(audit) == 1
    assert audit[0]["workspace_id"] == workspace.id
    assert audit[0]["target_id"] == str(workspace.agent.id)
    assert audit[0]["details"]["reason"] == "email"
    assert audit[0]["ip"] == "127.0.0.1"


async def test_pause_of_one_account_leaves_other_accounts_able_to_log_in(
    client, workspace
):
    await client.get("/login")
    for attempt in range(login_throttle.FAILURES_PER_EMAIL):
        await _log_in(client, workspace.agent.email, f"guess-{attempt}")

    other = await _log_in(client, workspace.admin.email, TEST_PASSWORD)

    assert other.status_code in (302, 303)


async def test_address_is_paused_after_fifty_failures_across_many_accounts(
    client, workspace
):
    await client.get("/login")
    statuses = [
        (await _log_in(client, f"nobody{n}@example.com", "guess")).status_code
        for n in range(login_throttle.FAILURES_PER_ADDRESS)
    ]

    right = await _log_in(client, workspace.owner.email, TEST_PASSWORD)

    assert statuses == [400] * login_throttle.FAILURES_PER_ADDRESS
    assert right.status_code == 429
    assert "try again" in right.text
    reasons = await db.fetch(
        "SELECT details->>'reason' AS reason FROM audit_event "
        "WHERE action = 'user.login_throttled' ORDER BY id"
    )
    assert [row["reason"] for row in reasons] == ["ip"]
