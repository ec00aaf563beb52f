"""Rate limits and cross-origin access of the widget endpoints."""

from __future__ import annotations

import pytest
from patra import db

from patra_webchat.settings import current_settings


@pytest.fixture
def limits(monkeypatch):
    """The webchat plugin settings, changeable for one test."""
    settings = current_settings()

    def set_limits(**values):
        for name, value in values.items():
            monkeypatch.setattr(settings, name, value)

    return set_limits


async def test_visitor_over_the_message_limit_gets_429_with_retry_after(
    new_visitor, limits
):
    limits(visitor_messages_per_minute=5)
    visitor = await new_visitor()

    statuses = [(await visitor.send(f"message {n}")).status_code for n in range(5)]
    refused = await visitor.send("one too many")

    assert statuses == [201] * 5
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "wait" in refused.json()["error"]
    assert await db.fetchval("SELECT count(*) FROM message") == 5


async def test_message_limit_counts_each_visitor_separately(new_visitor, limits):
    limits(visitor_messages_per_minute=2)
    ana, omar = await new_visitor(), await new_visitor()

    for _ in range(2):
        await ana.send("from Ana")

    assert (await ana.send("third from Ana")).status_code == 429
    assert (await omar.send("first from Omar")).status_code == 201


async def test_one_address_starting_many_chats_gets_429(client, chat_inbox, limits):
    limits(ip_sessions_per_hour=3)

    statuses = [
        (await client.post(f"/widget/{chat_inbox}/session", json={})).status_code
        for _ in range(4)
    ]

    assert statuses == [201, 201, 201, 429]


async def test_writes_from_one_address_are_limited_across_visitors(new_visitor, limits):
    limits(ip_writes_per_minute=4)
    ana, omar = await new_visitor(), await new_visitor()  # two writes

    assert (await ana.send("a")).status_code == 201
    assert (await omar.send("b")).status_code == 201
    assert (await omar.send("c")).status_code == 429


async def test_reads_from_one_address_are_limited(new_visitor, limits):
    limits(ip_reads_per_minute=3)
    visitor = await new_visitor()
    url = f"/widget/{visitor.inbox_id}/messages"

    statuses = [
        (await visitor.client.get(url, headers=visitor.auth)).status_code
        for _ in range(4)
    ]

    assert statuses == [200, 200, 200, 429]


# --- CORS --------------------------------------------------------------------


async def test_preflight_from_any_site_is_allowed_by_default(client, chat_inbox):
    response = await client.options(
        f"/widget/{chat_inbox}/messages",
        headers={
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"]


async def test_responses_and_errors_carry_cors_headers(new_visitor):
    visitor = await new_visitor()
    origin = {"origin": "https://shop.example"}

    ok = await visitor.client.get(
        f"/widget/{visitor.inbox_id}/messages", headers={**visitor.auth, **origin}
    )
    refused = await visitor.client.get(
        f"/widget/{visitor.inbox_id}/messages", headers=origin
    )

    assert ok.status_code == 200 and refused.status_code == 401
    for response in (ok, refused):
        assert response.headers["access-control-allow-origin"] == "https://shop.example"


async def test_inbox_with_allowed_origins_refuses_other_sites(client, make_inbox):
    inbox_id = await make_inbox(
        "webchat", allowed_origins="https://shop.example\nhttps://www.shop.example/"
    )

    allowed = await client.post(
        f"/widget/{inbox_id}/session",
        json={},
        headers={"origin": "https://www.shop.example"},
    )
    preflight = await client.options(
        f"/widget/{inbox_id}/session",
        headers={
            "origin": "https://evil.example",
            "access-control-request-method": "POST",
        },
    )
    refused = await client.post(
        f"/widget/{inbox_id}/session",
        json={},
        headers={"origin": "https://evil.example"},
    )

    assert allowed.status_code == 201
    assert allowed.headers["access-control-allow-origin"] == "https://www.shop.example"
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    assert refused.status_code == 403
    assert "allowed sites" in refused.json()["error"]
