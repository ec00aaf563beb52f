"""Replies leaving through a real SMTP server (aiosmtpd), with every header right."""

from __future__ import annotations

import pytest
from corpus import raw_message
from patra import db
from patra.channels import RetryableFailure
from patra.inbox import outbound
from servers import _free_port


async def agent_reply(shop, conversation_id, text="We will send a new vase.", **kw):
    return await outbound.create_agent_message(
        workspace_id=shop.workspace.id,
        conversation_id=conversation_id,
        user_id=shop.workspace.agent.id,
        text=text,
        **kw,
    )


async def test_reply_carries_threading_headers_alternatives_and_attachments(shop):
    first = await shop.file(
        raw_message(
            message_id="<m1@customer.test>",
            extra_headers=[
                "References: <root@customer.test>",
                "Cc: Boss <boss@customer.test>, support@shop.test",
            ],
        )
    )

    sent, copy = await shop.reply_copies(
        first.conversation_id,
        text="We will send a new vase.",
        uploads=[outbound.Upload("label.pdf", "application/pdf", b"%PDF-1.4 label")],
    )

    mail = sent.message
    assert mail["From"] == "Shop Support <support@shop.test>"
    assert mail["To"] == "dana@customer.test"
    assert mail["Cc"] == "boss@customer.test"  # our own address is not copied
    assert (sent.recipients, copy.recipients) == (
        ["dana@customer.test"],
        ["boss@customer.test"],
    )
    assert copy.message["Cc"] == "boss@customer.test"
    assert mail["Message-ID"].endswith("@shop.test>")
    assert copy.message["Message-ID"].endswith("@shop.test>")
    assert copy.message["Message-ID"] != mail["Message-ID"]
    assert mail["In-Reply-To"] == "<m1@customer.test>"
    assert mail["References"].split()[:2] == [
        "<root@customer.test>",
        "<m1@customer.test>",
    ]
    assert (
        mail["Subject"] == f"Re: Order 1042 arrived broken [#{first.conversation_id}]"
    )
    assert mail["Date"]
    assert "Auto-Submitted" not in mail
    assert mail.get_body(("plain",)).get_content().strip() == "We will send a new vase."
    assert "<p>We will send a new vase.</p>" in mail.get_body(("html",)).get_content()
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "label.pdf"
    assert attachment.get_content() == b"%PDF-1.4 label"

    stored = await db.fetchrow(
        "SELECT external_id, delivery_status, metadata FROM message "
        "WHERE direction = 'out'"
    )
    assert stored["delivery_status"] == "sent"
    assert f"<{stored['external_id']}>" == mail["Message-ID"]
    assert stored["metadata"]["email"]["accepted"] == [
        "dana@customer.test",
        "boss@customer.test",
    ]


async def test_signature_and_reply_to_settings_appear_in_the_mail(shop):
    await db.execute(
        """UPDATE inbox SET settings = settings || '{"signature": "Shop team",
           "reply_to": "help@shop.test"}' WHERE id = $1""",
        shop.inbox_id,
    )
    first = await shop.file(raw_message())

    mail = (await shop.reply(first.conversation_id, text="Done.")).message

    assert mail["Reply-To"] == "help@shop.test"
    plain = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain.rstrip() == "Done.\n\n-- \nShop team"


async def test_refused_recipient_fails_the_message_with_the_servers_answer(
    shop, smtp_server
):
    smtp_server.handler_object.refuse_recipients["dana@customer.test"] = (
        "550 5.1.1 No such user here"
    )
    first = await shop.file(raw_message())
    message_id = await agent_reply(shop, first.conversation_id)

    status = await outbound.deliver(message_id, 0, 3)

    row = await db.fetchrow(
        "SELECT delivery_status, error FROM message WHERE id = $1", message_id
    )
    assert status == "failed"
    assert row["delivery_status"] == "failed"
    assert "550 5.1.1 No such user here" in row["error"]
    assert "Check the addresses" in row["error"]


async def test_one_refused_copy_recipient_is_listed_and_the_rest_is_sent(
    shop, smtp_server
):
    smtp_server.handler_object.refuse_recipients["boss@customer.test"] = (
        "550 5.7.1 Relay denied"
    )
    first = await shop.file(raw_message(extra_headers=["Cc: boss@customer.test"]))
    message_id = await agent_reply(shop, first.conversation_id)

    status = await outbound.deliver(message_id, 0, 3)

    metadata = await db.fetchval(
        "SELECT metadata FROM message WHERE id = $1", message_id
    )
    assert status == "sent"
    assert metadata["email"]["accepted"] == ["dana@customer.test"]
    assert metadata["email"]["refused"] == {
        "boss@customer.test": "550 5.7.1 Relay denied"
    }


async def test_temporary_refusal_is_retried_and_final_attempt_gives_up(
    shop, smtp_server
):
    smtp_server.handler_object.data_answer = "451 4.3.0 Mail server busy, try later"
    first = await shop.file(raw_message())
    message_id = await agent_reply(shop, first.conversation_id)

    with pytest.raises(RetryableFailure, match="451"):
        await outbound.deliver(message_id, 0, 3)
    row = await db.fetchrow(
        "SELECT delivery_status, error FROM message WHERE id = $1", message_id
    )
    assert row["delivery_status"] == "queued"
    assert "451 4.3.0 Mail server busy" in row["error"]

    status = await outbound.deliver(message_id, 2, 3)
    error = await db.fetchval("SELECT error FROM message WHERE id = $1", message_id)
    assert status == "failed"
    assert error.startswith("Gave up after 3 attempts")


async def test_rejected_data_is_a_permanent_failure(shop, smtp_server):
    smtp_server.handler_object.data_answer = "554 5.7.1 Message rejected as spam"
    first = await shop.file(raw_message())
    message_id = await agent_reply(shop, first.conversation_id)

    assert await outbound.deliver(message_id, 0, 3) == "failed"
    error = await db.fetchval("SELECT error FROM message WHERE id = $1", message_id)
    assert "554 5.7.1 Message rejected as spam" in error


async def test_unreachable_smtp_server_is_retried(shop):
    await db.execute(
        "UPDATE inbox SET settings = settings"
        " || jsonb_build_object('smtp_port', $2::int)"
        " WHERE id = $1",
        shop.inbox_id,
        _free_port(),
    )
    first = await shop.file(raw_message())
    message_id = await agent_reply(shop, first.conversation_id)

    with pytest.raises(RetryableFailure, match="Could not reach the mail server"):
        await outbound.deliver(message_id, 0, 3)


async def test_each_recipient_gets_its_own_copy_and_message_id(shop):
    first = await shop.file(raw_message())

    copies = await shop.reply_copies(
        first.conversation_id,
        metadata={"cc": ["boss@customer.test", "omar@customer.test"]},
    )

    assert [copy.recipients for copy in copies] == [
        ["dana@customer.test"],
        ["boss@customer.test"],
        ["omar@customer.test"],
    ]
    ids = [copy.message["Message-ID"].strip("<>") for copy in copies]
    assert len(set(ids)) == 3 and all(item.endswith("@shop.test") for item in ids)
    for copy in copies:
        assert copy.message["To"] == "dana@customer.test"
        assert copy.message["Cc"] == "boss@customer.test, omar@customer.test"
    reply = await db.fetchrow("SELECT * FROM message WHERE direction = 'out'")
    assert reply["external_id"] == ids[0]
    assert reply["metadata"]["email"]["message_ids"] == {
        "dana@customer.test": ids[0],
        "boss@customer.test": ids[1],
        "omar@customer.test": ids[2],
    }
    recorded = await db.fetch(
        "SELECT message_id, conversation_id, patra_message_id FROM email_message_id "
        "WHERE origin = 'sent' ORDER BY message_id"
    )
    assert [dict(row) for row in recorded] == [
        {
            "message_id": item,
            "conversation_id": first.conversation_id,
            "patra_message_id": reply["id"],
        }
        for item in sorted(ids)
    ]


async def test_retry_after_a_temporary_refusal_sends_only_the_missing_copy(
    shop, smtp_server
):
    smtp_server.handler_object.refuse_recipients["boss@customer.test"] = (
        "450 4.2.1 Mailbox busy, try later"
    )
    first = await shop.file(raw_message())
    message_id = await agent_reply(
        shop,
        first.conversation_id,
        metadata={"cc": ["boss@customer.test", "omar@customer.test"]},
    )

    with pytest.raises(RetryableFailure, match="450 4.2.1 Mailbox busy"):
        await outbound.deliver(message_id, 0, 3)
    row = await db.fetchrow(
        "SELECT delivery_status, error FROM message WHERE id = $1", message_id
    )
    assert row["delivery_status"] == "queued"
    assert "boss@customer.test: 450 4.2.1" in row["error"]
    assert "dana@customer.test, omar@customer.test already got" in row["error"]

    del smtp_server.handler_object.refuse_recipients["boss@customer.test"]
    assert await outbound.deliver(message_id, 1, 3) == "sent"

    received = await shop.smtp.wait_for(3)
    assert sorted(mail.recipients[0] for mail in received) == [
        "boss@customer.test",
        "dana@customer.test",
        "omar@customer.test",
    ]
    metadata = await db.fetchval(
        "SELECT metadata FROM message WHERE id = $1", message_id
    )
    assert metadata["email"]["accepted"] == [
        "dana@customer.test",
        "boss@customer.test",
        "omar@customer.test",
    ]


async def test_copy_the_server_never_confirmed_is_sent_again_under_the_same_id(
    shop, smtp_server
):
    # The server stored the mail but the answer was a temporary error.
    smtp_server.handler_object.answer_after_storing = "451 4.3.0 Try again later"
    first = await shop.file(raw_message())
    message_id = await agent_reply(shop, first.conversation_id)

    with pytest.raises(RetryableFailure):
        await outbound.deliver(message_id, 0, 3)
    assert await outbound.deliver(message_id, 1, 3) == "sent"

    received = await shop.smtp.wait_for(2)
    assert received[0].message["Message-ID"] == received[1].message["Message-ID"]


async def test_reply_queued_again_after_the_server_accepted_it_is_not_sent_twice(
    shop,
):
    first = await shop.file(raw_message())
    message_id = await agent_reply(shop, first.conversation_id)
    assert await outbound.deliver(message_id, 0, 3) == "sent"
    await db.execute(
        "UPDATE message SET delivery_status = 'queued' WHERE id = $1", message_id
    )

    assert await outbound.deliver(message_id, 1, 3) == "sent"

    assert len(await shop.smtp.wait_for(2, timeout=1)) == 1


async def test_test_connection_shows_each_servers_answer(shop):
    channel = await outbound.channel_for_inbox(shop.inbox_id)

    [imap_line, smtp_line] = await channel.test_connection()

    assert imap_line[1] is True, imap_line
    assert "INBOX (0 messages)" in imap_line[2]
    assert "IDLE" in imap_line[2]
    assert smtp_line[1] is True and smtp_line[2].startswith("220")


async def test_test_connection_explains_a_wrong_password(shop):
    channel = await outbound.channel_for_inbox(shop.inbox_id)
    channel.inbox.settings["imap_password"] = "wrong"

    [imap_line, _] = await channel.test_connection()

    assert imap_line[1] is False
    assert "refused the login" in imap_line[2]
    assert "Check the IMAP user and password" in imap_line[2]


async def test_unencrypted_connection_to_another_host_is_refused(shop):
    channel = await outbound.channel_for_inbox(shop.inbox_id)
    channel.inbox.settings["smtp_host"] = "smtp.example.com"

    [(name, ok, answer)] = await channel.test_connection()

    assert (name, ok) == ("settings", False)
    assert "only allowed for a server on this machine" in answer


async def test_reply_answers_the_customers_mail_not_an_auto_reply_after_it(shop):
    first = await shop.file(raw_message(message_id="<m1@customer.test>"))
    sent = await shop.reply(first.conversation_id)
    await shop.file(
        raw_message(
            sender="dana@customer.test",
            to="support@shop.test, Robot <robot@customer.test>",
            message_id="<ooo@customer.test>",
            extra_headers=[
                "Auto-Submitted: auto-replied",
                f"In-Reply-To: {sent.message['Message-ID']}",
            ],
        )
    )

    mail = (await shop.reply(first.conversation_id, text="Second answer.")).message

    assert mail["In-Reply-To"] == "<m1@customer.test>"
    assert "Cc" not in mail
    assert sent.message["Message-ID"] in mail["References"]


async def test_automatic_messages_say_so_in_auto_submitted(shop):
    first = await shop.file(raw_message())
    message_id = await agent_reply(
        shop, first.conversation_id, text="We got it.", metadata={"automatic": True}
    )

    assert await outbound.deliver(message_id, 0, 3) == "sent"

    [sent] = await shop.smtp.wait_for(1)
    assert sent.message["Auto-Submitted"] == "auto-replied"
