"""The outbound path: a queued reply goes out once, failures are retried or shown."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from patra import db
from patra.accounts.service import create_api_token
from patra.channels import (
    InboundMessage,
    InboundStatus,
    PermanentFailure,
    RetryableFailure,
)
from patra.inbox import outbound
from patra.inbox.ingest import ingest_message, record_status


@pytest.fixture
async def owner_headers(workspace):
    return {"Authorization": f"Bearer {await create_api_token(workspace.owner.id)}"}


@pytest.fixture
async def conversation(make_inbox, test_channel) -> int:
    inbox_id = await make_inbox("testchannel")
    result = await ingest_message(
        InboundMessage(
            inbox_id=inbox_id,
            contact_external_id="visitor-1",
            external_id=f"in-{secrets.token_hex(4)}",
            text="Where is my parcel?",
            contact_name="Visiting Person",
        )
    )
    return result.conversation_id


async def reply(
    client, headers, conversation_id: int, text: str = "On its way."
) -> int:
    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=headers,
        json={"text": text},
    )
    assert response.status_code == 201, response.text
    assert response.json()["delivery_status"] == "queued"
    return response.json()["id"]


async def stored(message_id: int) -> dict:
    return await db.fetchrow(
        "SELECT delivery_status, attempts, error, external_id FROM message "
        "WHERE id = $1",
        message_id,
    )


async def api_message(client, headers, conversation_id: int, message_id: int) -> dict:
    response = await client.get(
        f"/api/v1/conversations/{conversation_id}/messages", headers=headers
    )
    return next(item for item in response.json()["items"] if item["id"] == message_id)


async def skip_backoff() -> int:
    """Make retries scheduled for later due now, as if the backoff had passed."""
    status = await db.execute(
        "UPDATE procrastinate_jobs SET scheduled_at = now() "
        "WHERE status = 'todo' AND scheduled_at > now()"
    )
    return int(status.split()[-1])


async def test_retryable_failure_is_retried_after_backoff_then_sent(
    client, owner_headers, conversation, test_channel, run_jobs
):
    test_channel.outcomes.append(
        RetryableFailure("The provider is busy (code 503); retrying.", code="503")
    )
    message_id = await reply(client, owner_headers, conversation)

    await run_jobs()
    waiting = await stored(message_id)
    assert waiting["delivery_status"] == "queued"
    assert "provider is busy" in waiting["error"]
    assert test_channel.sent == []
    assert await skip_backoff() == 1  # the retry was scheduled for later

    await run_jobs()

    delivered = await stored(message_id)
    assert delivered == {
        "delivery_status": "sent",
        "attempts": 2,
        "error": None,
        "external_id": f"test-{message_id}",
    }
    assert [message.text for message in test_channel.sent] == ["On its way."]
    seen = await api_message(client, owner_headers, conversation, message_id)
    assert (seen["delivery_status"], seen["error"]) == ("sent", None)


async def test_permanent_failure_shows_the_providers_reason(
    client, owner_headers, conversation, test_channel, run_jobs
):
    reason = "The recipient blocked this number (code 131031); ask for another one."
    test_channel.outcomes.append(PermanentFailure(reason, code="131031"))
    message_id = await reply(client, owner_headers, conversation)

    await run_jobs()

    seen = await api_message(client, owner_headers, conversation, message_id)
    assert seen["delivery_status"] == "failed"
    assert seen["error"] == reason
    assert (await stored(message_id))["attempts"] == 1
    assert await skip_backoff() == 0  # no retry scheduled
    assert test_channel.sent == []


async def test_retries_give_up_after_the_configured_attempts(
    client, owner_headers, conversation, test_channel, run_jobs, patra_config
):
    attempts = patra_config.jobs.max_attempts
    test_channel.outcomes.extend(
        RetryableFailure("Timed out talking to the provider.") for _ in range(attempts)
    )
    message_id = await reply(client, owner_headers, conversation)

    await run_jobs()
    while await skip_backoff():
        await run_jobs()

    final = await stored(message_id)
    assert final["delivery_status"] == "failed"
    assert final["attempts"] == attempts
    assert final["error"].startswith(f"Gave up after {attempts} attempts")
    assert "Timed out" in final["error"]


async def test_message_is_never_sent_twice(
    client, owner_headers, conversation, test_channel, run_jobs
):
    message_id = await reply(client, owner_headers, conversation)
    await run_jobs()

    # A second job for the same message (the sweep re-deferring after a crash)
    # and a direct second call both find it no longer queued.
    async with db.transaction():
        await outbound.defer_delivery(message_id)
    await run_jobs()
    second_call = await outbound.deliver(message_id, 0, 3)

    assert second_call == "skipped"
    assert len(test_channel.sent) == 1
    assert (await stored(message_id))["attempts"] == 1


async def test_concurrent_deliveries_claim_the_message_once(
    client, owner_headers, conversation, test_channel
):
    message_id = await reply(client, owner_headers, conversation)

    results = await asyncio.gather(
        *(outbound.deliver(message_id, 0, 3) for _ in range(5))
    )

    assert sorted(results) == ["sent"] + ["skipped"] * 4
    assert len(test_channel.sent) == 1


async def test_channel_crash_marks_failed_instead_of_resending(
    client, owner_headers, conversation, test_channel, run_jobs
):
    test_channel.outcomes.append(RuntimeError("socket closed"))
    message_id = await reply(client, owner_headers, conversation)

    await run_jobs()

    final = await stored(message_id)
    assert final["delivery_status"] == "failed"
    assert "may or may not have sent" in final["error"]
    assert await skip_backoff() == 0


async def test_send_left_unfinished_by_a_crashed_worker_is_not_resent(
    client, owner_headers, conversation, test_channel, run_jobs
):
    message_id = await reply(client, owner_headers, conversation)
    await db.execute(
        "UPDATE message SET delivery_status = 'sending', "
        "updated_at = now() - interval '1 hour' WHERE id = $1",
        message_id,
    )

    marked = await outbound.resolve_stuck_sends()
    await run_jobs()

    assert marked == 1
    final = await stored(message_id)
    assert final["delivery_status"] == "failed"
    assert "Check with the customer" in final["error"]
    assert test_channel.sent == []


async def test_delivery_status_only_moves_forward(
    client, owner_headers, conversation, test_channel, run_jobs
):
    message_id = await reply(client, owner_headers, conversation)
    await run_jobs()
    inbox_id = await db.fetchval(
        "SELECT inbox_id FROM conversation WHERE id = $1", conversation
    )
    external_id = f"test-{message_id}"

    def receipt(status: str) -> InboundStatus:
        return InboundStatus(inbox_id=inbox_id, external_id=external_id, status=status)

    moved_to_read = await record_status(receipt("read"))
    moved_back_to_delivered = await record_status(receipt("delivered"))
    moved_back_to_sent = await record_status(receipt("sent"))

    assert moved_to_read is True
    assert moved_back_to_delivered is False
    assert moved_back_to_sent is False
    seen = await api_message(client, owner_headers, conversation, message_id)
    assert seen["delivery_status"] == "read"


async def test_sweep_requeues_a_queued_message_whose_job_vanished(
    workspace, make_inbox, test_channel, run_jobs
):
    from patra.jobs import redefer_orphaned_deliveries

    inbox_id = await make_inbox("testchannel")
    result = await ingest_message(
        InboundMessage(inbox_id=inbox_id, contact_external_id="v", external_id="x")
    )
    message_id = await outbound.create_agent_message(
        workspace_id=workspace.id,
        conversation_id=result.conversation_id,
        user_id=workspace.owner.id,
        text="lost job",
    )
    await db.execute("DELETE FROM procrastinate_jobs")
    await db.execute(
        "UPDATE message SET updated_at = now() - interval '5 minutes' WHERE id = $1",
        message_id,
    )

    assert await redefer_orphaned_deliveries() == 1
    assert await redefer_orphaned_deliveries() == 0
    await run_jobs(queues=["outbound"])
    assert (
        await db.fetchval(
            "SELECT delivery_status FROM message WHERE id = $1", message_id
        )
        == "sent"
    )
    assert [m.text for m in test_channel.sent] == ["lost job"]


async def test_a_reply_in_an_inbox_whose_channel_is_not_enabled_fails_clearly(
    workspace, make_inbox, test_channel
):
    inbox_id = await make_inbox("testchannel")
    result = await ingest_message(
        InboundMessage(inbox_id=inbox_id, contact_external_id="v", external_id="x")
    )
    message_id = await outbound.create_agent_message(
        workspace_id=workspace.id,
        conversation_id=result.conversation_id,
        user_id=workspace.owner.id,
        text="hello",
    )
    await db.execute(
        "UPDATE inbox SET channel_type = 'retired' WHERE id = $1", inbox_id
    )

    assert await outbound.deliver(message_id, attempt=0, max_attempts=3) == "failed"
    error = await db.fetchval("SELECT error FROM message WHERE id = $1", message_id)
    assert "'retired'" in error and "nothing was sent" in error
    assert test_channel.sent == []
