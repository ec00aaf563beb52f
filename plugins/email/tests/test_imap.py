"""Receiving from a real Dovecot: IDLE, polling, cursors, reconnects, round trip."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from corpus import raw_message
from patra import db
from patra.inbox import outbound

from patra_email import imap
from patra_email.settings import read_settings


@contextlib.asynccontextmanager
async def running_receiver(shop):
    channel = await outbound.channel_for_inbox(shop.inbox_id)
    stop = asyncio.Event()
    task = asyncio.create_task(channel.run_receiver(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def wait_for_rows(sql: str, *args, count: int = 1, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        rows = await db.fetch(sql, *args)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


INBOUND = "SELECT * FROM message WHERE direction = 'in' ORDER BY id"


async def test_round_trip_from_imap_to_smtp_and_back_into_the_same_conversation(
    shop, dovecot, run_jobs
):
    async with running_receiver(shop):
        dovecot.deliver(shop.imap_user, raw_message(message_id="<m1@customer.test>"))
        [first] = await wait_for_rows(INBOUND)
        assert first["text"] == "Hello, the vase arrived broken."

        # The agent answers; the delivery job sends it through the SMTP server.
        await outbound.create_agent_message(
            workspace_id=shop.workspace.id,
            conversation_id=first["conversation_id"],
            user_id=shop.workspace.agent.id,
            text="Sorry! A new one ships.",
        )
        await run_jobs(["outbound"])
        [sent] = await shop.smtp.wait_for(1)
        mail = sent.message
        reply = await db.fetchrow("SELECT * FROM message WHERE direction = 'out'")
        assert reply["delivery_status"] == "sent"
        assert f"<{reply['external_id']}>" == mail["Message-ID"]
        assert mail["In-Reply-To"] == "<m1@customer.test>"
        assert "<m1@customer.test>" in mail["References"]
        assert sent.recipients == ["dana@customer.test"]

        # The receiver is in IDLE now: the answer must arrive without polling.
        dovecot.deliver(
            shop.imap_user,
            raw_message(
                message_id="<m2@customer.test>",
                subject=f"Re: {mail['Subject']}",
                body=b"Thank you!",
                extra_headers=[
                    f"In-Reply-To: {mail['Message-ID']}",
                    f"References: {mail['References']} {mail['Message-ID']}",
                ],
            ),
        )
        rows = await wait_for_rows(INBOUND, count=2, timeout=10)

    assert [row["text"] for row in rows] == [
        "Hello, the vase arrived broken.",
        "Thank you!",
    ]
    channel = await outbound.channel_for_inbox(shop.inbox_id)
    assert (await channel.health()).ok
    assert rows[1]["conversation_id"] == first["conversation_id"]


async def test_mail_that_arrived_while_down_is_read_without_touching_flags(
    shop, dovecot
):
    for number in range(3):
        dovecot.deliver(
            shop.imap_user, raw_message(message_id=f"<down{number}@customer.test>")
        )

    async with running_receiver(shop):
        rows = await wait_for_rows(INBOUND, count=3)

    assert len(rows) == 3
    assert all(b"\\Seen" not in line for line in dovecot.flags(shop.imap_user))
    cursor = await db.fetchrow("SELECT * FROM email_imap_cursor")
    assert (cursor["mailbox"], cursor["last_uid"]) == ("INBOX", 3)


async def test_unreadable_mail_is_quarantined_and_the_next_one_still_arrives(
    shop, dovecot
):
    dovecot.deliver(shop.imap_user, b"Subject: nobody\r\n\r\nno sender")
    dovecot.deliver(shop.imap_user, raw_message(message_id="<after@customer.test>"))

    async with running_receiver(shop):
        rows = await wait_for_rows(INBOUND)

    assert len(rows) == 1
    reason = await db.fetchval("SELECT reason FROM quarantine_item")
    assert "no sender address" in reason


async def test_new_uidvalidity_reads_the_folder_again_without_duplicates(shop, dovecot):
    with dovecot.imap(shop.imap_user) as client:
        client.create("Support")
    for number in range(2):
        dovecot.deliver(
            shop.imap_user,
            raw_message(message_id=f"<s{number}@customer.test>"),
            "Support",
        )
    settings = read_settings(dovecot.settings(shop.imap_user, imap_folders="Support"))
    receiver = imap.ImapReceiver(settings, shop.identity)
    client = await imap.connect(settings)
    try:
        assert await receiver.sync_folder(client, "Support") == 2
        first_validity = await db.fetchval("SELECT uidvalidity FROM email_imap_cursor")
    finally:
        await imap.close(client)

    # The folder is recreated (as after a server migration): new UIDVALIDITY.
    with dovecot.imap(shop.imap_user) as client:
        client.delete("Support")
        client.create("Support")
    for number in range(3):
        dovecot.deliver(
            shop.imap_user,
            raw_message(message_id=f"<s{number}@customer.test>"),
            "Support",
        )
    client = await imap.connect(settings)
    try:
        assert await receiver.sync_folder(client, "Support") == 3
    finally:
        await imap.close(client)

    cursor = await db.fetchrow("SELECT uidvalidity, last_uid FROM email_imap_cursor")
    assert cursor["uidvalidity"] != first_validity
    assert cursor["last_uid"] == 3
    assert len(await db.fetch(INBOUND)) == 3


async def test_several_folders_are_polled(shop, dovecot):
    with dovecot.imap(shop.imap_user) as client:
        client.create("Sales")
    await db.execute(
        """UPDATE inbox SET settings = settings ||
           '{"imap_folders": "INBOX, Sales", "poll_interval_seconds": 10}'
           WHERE id = $1""",
        shop.inbox_id,
    )
    dovecot.deliver(shop.imap_user, raw_message(message_id="<i1@customer.test>"))
    dovecot.deliver(
        shop.imap_user, raw_message(message_id="<s1@customer.test>"), "Sales"
    )

    async with running_receiver(shop):
        rows = await wait_for_rows(INBOUND, count=2)

    assert sorted(row["external_id"] for row in rows) == [
        "i1@customer.test",
        "s1@customer.test",
    ]


async def test_receiver_reconnects_after_the_server_goes_away(shop, dovecot):
    async with running_receiver(shop) as task:
        dovecot.deliver(shop.imap_user, raw_message(message_id="<r1@customer.test>"))
        await wait_for_rows(INBOUND)

        dovecot.stop()
        await asyncio.sleep(0.5)
        dovecot.start()
        dovecot.deliver(shop.imap_user, raw_message(message_id="<r2@customer.test>"))
        rows = await wait_for_rows(INBOUND, count=2, timeout=20)
        assert not task.done()

    assert [row["external_id"] for row in rows] == [
        "r1@customer.test",
        "r2@customer.test",
    ]


async def test_idle_is_renewed_before_the_server_would_drop_it(shop, dovecot):
    settings = read_settings(dovecot.settings(shop.imap_user))
    receiver = imap.ImapReceiver(settings, shop.identity)
    client = await imap.connect(settings)
    stop = asyncio.Event()
    try:
        await receiver.sync_folder(client, "INBOX")
        # A renewal time of a fraction of a second stands in for 25 minutes.
        object.__setattr__(settings, "idle_renew_minutes", 0.01)
        started = time.monotonic()
        await asyncio.wait_for(receiver._idle(client, stop), 10)
        assert time.monotonic() - started < 5
        # The connection is still usable after IDLE ended.
        assert await receiver.sync_folder(client, "INBOX") == 0
    finally:
        await imap.close(client)


async def test_wrong_password_is_shown_as_health_and_retried(shop, dovecot):
    channel = await outbound.channel_for_inbox(shop.inbox_id)
    assert (await channel.health()).detail == "The receiver has not connected yet."
    await db.execute(
        "UPDATE inbox SET secrets = NULL, settings = settings || "
        """'{"imap_password": ""}' WHERE id = $1""",
        shop.inbox_id,
    )

    async with running_receiver(shop) as task:
        # Dovecot answers a failed login only after a deliberate delay.
        await wait_for_rows(
            "SELECT * FROM email_receiver_status WHERE NOT ok", timeout=10
        )
        assert not task.done()
        health = await channel.health()

    assert health.ok is False
    assert "refused the login" in health.detail
    assert "Trying again in" in health.detail


@pytest.mark.parametrize("folder", ["Does Not Exist"])
async def test_missing_folder_is_reported_in_a_sentence(shop, dovecot, folder):
    settings = read_settings(dovecot.settings(shop.imap_user, imap_folders=folder))
    client = await imap.connect(settings)
    try:
        with pytest.raises(
            imap.ImapError, match="could not be opened.*Check the folder"
        ):
            await imap.select(client, folder)
    finally:
        await imap.close(client)


async def test_older_mail_can_be_left_alone_on_first_connection(shop, dovecot):
    await db.execute(
        """UPDATE inbox SET settings = settings || '{"read_existing_mail": false}'
           WHERE id = $1""",
        shop.inbox_id,
    )
    dovecot.deliver(shop.imap_user, raw_message(message_id="<old@customer.test>"))

    async with running_receiver(shop):
        await wait_for_rows(
            "SELECT * FROM email_imap_cursor WHERE last_uid = 1", timeout=10
        )
        dovecot.deliver(shop.imap_user, raw_message(message_id="<new@customer.test>"))
        rows = await wait_for_rows(INBOUND, timeout=10)

    assert [row["external_id"] for row in rows] == ["new@customer.test"]


async def test_a_server_that_never_answers_is_dropped_and_tried_again(
    shop, monkeypatch, caplog
):
    connections = []

    async def silent(reader, writer):
        connections.append(writer)  # accept, then say nothing at all

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await db.execute(
        "UPDATE inbox SET settings = settings"
        " || jsonb_build_object('imap_port', $2::int) WHERE id = $1",
        shop.inbox_id,
        port,
    )
    monkeypatch.setattr(imap, "COMMAND_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(imap, "RECONNECT_DELAYS_SECONDS", (0.1,))

    try:
        async with running_receiver(shop) as task:
            await asyncio.sleep(2)
            assert not task.done()
    finally:
        server.close()
        for writer in connections:
            writer.close()

    assert len(connections) >= 2
    assert "reconnecting" in caplog.text
