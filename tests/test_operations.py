"""Health, readiness, logging and shutdown as an operator sees them."""

import logging
import signal

import httpx

from patra import db
from patra.channels import InboundMessage, PermanentFailure
from patra.inbox import outbound
from patra.inbox.ingest import ingest_message


async def test_readyz_reports_pending_migrations(client):
    assert (await client.get("/readyz")).status_code == 200
    await db.execute("DELETE FROM patra_migration WHERE name = '0001_core.sql'")
    try:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "core/0001_core.sql" in response.json()["pending"]
    finally:
        await db.execute(
            "INSERT INTO patra_migration (namespace, name) "
            "VALUES ('core', '0001_core.sql')"
        )


async def test_logs_never_contain_message_bodies_or_secrets(
    workspace, make_inbox, test_channel, caplog
):
    caplog.set_level(logging.DEBUG)
    inbox_id = await make_inbox("testchannel", token="tok-SECRET-123")
    result = await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id="v",
            external_id="e1",
            text="my card number is 4111 1111",
        )
    )
    message_id = await outbound.create_agent_message(
        workspace_id=workspace.id,
        conversation_id=result.conversation_id,
        user_id=workspace.owner.id,
        text="private reply body",
    )
    test_channel.outcomes.append(PermanentFailure("Blocked (code 403)."))
    await outbound.deliver(message_id, attempt=0, max_attempts=3)

    logged = caplog.text
    assert f"Message {message_id} failed permanently" in logged
    for secret in ("4111 1111", "private reply body", "tok-SECRET-123"):
        assert secret not in logged


async def test_sigterm_stops_cleanly_and_unregisters_the_job_worker(
    workspace, live_server
):
    workers = await db.fetchval("SELECT count(*) FROM procrastinate_workers")
    assert workers >= 1
    with httpx.stream("GET", f"{live_server.url}/healthz") as response:
        assert response.status_code == 200
    live_server.process.send_signal(signal.SIGTERM)
    # uvicorn finishes the shutdown, then exits by the signal it received.
    assert live_server.process.wait(30) in (0, -signal.SIGTERM)
    log = live_server.log.read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    assert (
        await db.fetchval("SELECT count(*) FROM procrastinate_workers") == workers - 1
    )
