"""Inbox actions refuse input they cannot honour instead of quietly changing it,
and show dates so that a far-off one cannot be mistaken for this year's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from patra import db
from patra.channels import InboundMessage
from patra.inbox.ingest import ingest_message
from patra.testing import csrf_token
from patra.web.templates import daytime


def htmx(client) -> dict[str, str]:
    return {"hx-request": "true", "x-csrftoken": csrf_token(client)}


@pytest.fixture
async def conversation(workspace, make_inbox, test_channel, client, login):
    inbox_id = await make_inbox("testchannel", "Support", members=[workspace.agent])
    started = await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id="ana",
            external_id="ana-1",
            text="Hi",
            contact_name="Ana",
        )
    )
    await login(client, workspace.agent)
    return started.conversation_id


async def _written() -> dict[str, int]:
    return {
        "labels": await db.fetchval("SELECT count(*) FROM label"),
        "conversation_labels": await db.fetchval(
            "SELECT count(*) FROM conversation_label"
        ),
        "events": await db.fetchval("SELECT count(*) FROM message WHERE kind='event'"),
    }


async def test_overlong_label_is_refused_in_the_flash_area_and_nothing_is_saved(
    client, conversation
):
    before = await _written()

    response = await client.post(
        f"/inbox/conversations/{conversation}/labels",
        data={"labels": "vip, " + "x" * 300},
        headers=htmx(client),
    )

    assert response.status_code == 400
    assert response.headers["hx-retarget"] == "#flash"
    assert "at most 50 characters" in response.text
    assert "Shorten it and save again." in response.text
    assert await _written() == before


async def test_assigning_to_a_non_number_is_refused_and_keeps_the_assignee(
    client, conversation, workspace
):
    await db.execute(
        "UPDATE conversation SET assignee_id = $1 WHERE id = $2",
        workspace.agent.id,
        conversation,
    )
    before = await _written()

    for bad in ("abc", "99999999999999999999999"):
        response = await client.post(
            f"/inbox/conversations/{conversation}/assign",
            data={"assignee_id": bad},
            headers=htmx(client),
        )
        assert response.status_code == 400
        assert response.headers["hx-retarget"] == "#flash"
        assert "Choose an agent from the list" in response.text

    assignee = await db.fetchval(
        "SELECT assignee_id FROM conversation WHERE id = $1", conversation
    )
    assert assignee == workspace.agent.id
    assert await _written() == before


async def test_unassigning_with_the_empty_choice_still_works(
    client, conversation, workspace
):
    await db.execute(
        "UPDATE conversation SET assignee_id = $1 WHERE id = $2",
        workspace.agent.id,
        conversation,
    )

    response = await client.post(
        f"/inbox/conversations/{conversation}/assign",
        data={"assignee_id": ""},
        headers=htmx(client),
    )

    assert response.status_code == 200
    assert (
        await db.fetchval(
            "SELECT assignee_id FROM conversation WHERE id = $1", conversation
        )
        is None
    )


async def test_snooze_into_another_year_shows_that_year(client, conversation):
    response = await client.post(
        f"/inbox/conversations/{conversation}/status",
        data={
            "status": "snoozed",
            "snoozed_until": "2030-01-01T09:00",
            "tz_offset": "0",
        },
        headers=htmx(client),
    )
    assert response.status_code == 200

    header = await client.get(
        f"/inbox/conversations/{conversation}/header", headers={"hx-request": "true"}
    )
    listing = await client.get("/inbox?status=snoozed")

    assert "01 Jan 2030 09:00 UTC" in header.text
    assert "01 Jan 2030 09:00" in listing.text


def test_dates_this_year_leave_the_year_out():
    now = datetime.now(UTC).replace(hour=9, minute=0)
    next_year = datetime(now.year + 1, 6, 1, 9, 0, tzinfo=UTC)

    assert daytime(now) == now.strftime("%d %b 09:00")
    assert daytime(next_year) == next_year.strftime("%d %b %Y 09:00")
