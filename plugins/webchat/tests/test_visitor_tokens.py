"""Visitor tokens: a visitor can only ever read and write their own chat."""

from __future__ import annotations

import base64
import json
import time

import pytest
from patra import runtime

from patra_webchat import tokens

KEY = "k" * 48


def _tamper(token: str, **changes) -> str:
    body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=")
    return f"{forged.decode()}.{signature}"


def test_token_round_trip_names_the_visitor():
    visitor = tokens.new_visitor(7, "Ana", "ana@example.test")

    again = tokens.verify(tokens.sign(visitor, KEY), 7, [KEY], 3600)

    assert again == visitor


@pytest.mark.parametrize(
    "make_token",
    [
        lambda token: _tamper(token, v="someone-else"),
        lambda token: _tamper(token, i=8),
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: token.split(".")[0],
        lambda token: "not-a-token",
        lambda token: "",
        lambda token: "a" * 5000 + "." + "b",
    ],
    ids=[
        "other-visitor",
        "other-inbox",
        "bad-signature",
        "unsigned",
        "garbage",
        "empty",
        "oversize",
    ],
)
def test_forged_or_broken_tokens_are_refused(make_token):
    token = tokens.sign(tokens.new_visitor(7), KEY)

    with pytest.raises(tokens.InvalidToken):
        tokens.verify(make_token(token), 7, [KEY], 3600)


def test_token_for_another_inbox_is_refused():
    token = tokens.sign(tokens.new_visitor(7), KEY)

    with pytest.raises(tokens.InvalidToken):
        tokens.verify(token, 8, [KEY], 3600)


def test_token_signed_with_another_server_key_is_refused():
    token = tokens.sign(tokens.new_visitor(7), "another-server-secret" * 3)

    with pytest.raises(tokens.InvalidToken):
        tokens.verify(token, 7, [KEY], 3600)


def test_token_survives_a_secret_key_rotation():
    token = tokens.sign(tokens.new_visitor(7), "previous-key" * 4)

    assert tokens.verify(token, 7, [KEY, "previous-key" * 4], 3600).inbox_id == 7


def test_expired_token_is_refused():
    visitor = tokens.Visitor(7, "v1", issued_at=int(time.time()) - 7200)

    with pytest.raises(tokens.InvalidToken):
        tokens.verify(tokens.sign(visitor, KEY), 7, [KEY], 3600)


async def test_forged_token_gets_401_and_reads_nothing(new_visitor, client):
    ana = await new_visitor()
    await ana.send("Ana's question")
    server_key = runtime.current().config.server.secret_key
    ana_visitor = tokens.verify(ana.token, ana.inbox_id, [server_key], 3600)
    forged = _tamper(ana.token, v="attacker")
    # Ana's own visitor id, but signed by someone without the server's key.
    stolen_id = tokens.sign(ana_visitor, "attacker-chosen-key" * 3)

    for token in (forged, stolen_id, "garbage"):
        read = await client.get(
            f"/widget/{ana.inbox_id}/messages",
            headers={"authorization": f"Bearer {token}"},
        )
        write = await client.post(
            f"/widget/{ana.inbox_id}/messages",
            json={"text": "hi", "idempotency_key": "abcdefgh1"},
            headers={"authorization": f"Bearer {token}"},
        )
        stream = await client.get(
            f"/widget/{ana.inbox_id}/stream", params={"token": token}
        )
        assert read.status_code == write.status_code == stream.status_code == 401
        assert "start a new chat" in read.json()["error"]
        assert "Ana's question" not in read.text


async def test_token_of_one_chat_inbox_does_not_open_another(
    new_visitor, make_inbox, client
):
    ana = await new_visitor()
    other_inbox = await make_inbox("webchat", name="Second site")

    response = await client.get(
        f"/widget/{other_inbox}/messages",
        headers={"authorization": ana.auth["authorization"]},
    )

    assert response.status_code == 401


async def test_missing_token_is_refused(client, chat_inbox):
    response = await client.get(f"/widget/{chat_inbox}/messages")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
