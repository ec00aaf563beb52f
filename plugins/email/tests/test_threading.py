"""Filing mail into conversations the way agents expect, against PostgreSQL."""

from __future__ import annotations

import base64

from corpus import delivery_report, multipart, part, raw_message, with_envelope
from patra import db, runtime
from patra.accounts.service import authenticate
from patra.inbox.conversations import move_message


def reply_to(sent, extra_headers=(), **kw) -> bytes:
    """The customer's answer to a mail we sent, as a well-behaved client writes it."""
    message = sent.message
    our_id = message["Message-ID"]
    references = f"{message.get('References', '')} {our_id}".strip()
    return raw_message(
        subject=f"Re: {message['Subject']}",
        extra_headers=[
            f"In-Reply-To: {our_id}",
            f"References: {references}",
            *extra_headers,
        ],
        **kw,
    )


async def test_customer_reply_to_our_answer_joins_the_same_conversation(shop):
    first = await shop.file(raw_message(message_id="<m1@customer.test>"))
    sent = await shop.reply(first.conversation_id)

    answer = await shop.file(
        reply_to(sent, message_id="<m2@customer.test>", body=b"Thanks!")
    )

    assert answer.outcome == "stored"
    assert answer.conversation_id == first.conversation_id


async def test_outlook_reply_with_rewritten_references_still_joins(shop):
    first = await shop.file(raw_message(message_id="<m1@customer.test>"))
    sent = await shop.reply(first.conversation_id)
    our_id = sent.message["Message-ID"]

    # Outlook replaced In-Reply-To with an id of its own and kept one reference.
    answer = await shop.file(
        raw_message(
            message_id="<outlook-2@customer.test>",
            subject="AW: Order 1042 arrived broken",
            extra_headers=[
                "In-Reply-To: <AM0PR-local-copy@outlook.test>",
                f"References: {our_id} <AM0PR-local-copy@outlook.test>",
            ],
        )
    )

    assert answer.conversation_id == first.conversation_id


async def test_reply_to_a_mail_patra_never_saw_joins_through_an_older_reference(shop):
    first = await shop.file(raw_message(message_id="<root@customer.test>"))

    # The customer answered a mail sent from a desktop client, never seen here.
    answer = await shop.file(
        raw_message(
            message_id="<m3@customer.test>",
            extra_headers=[
                "In-Reply-To: <desktop-client-reply@shop.test>",
                "References: <root@customer.test> <desktop-client-reply@shop.test>",
            ],
        )
    )

    assert answer.conversation_id == first.conversation_id


async def test_ids_only_ever_referenced_still_gather_their_thread(shop):
    first = await shop.file(
        raw_message(
            message_id="<a@customer.test>",
            extra_headers=["In-Reply-To: <lost@elsewhere.test>"],
        )
    )
    second = await shop.file(
        raw_message(
            sender="Colleague <omar@customer.test>",
            message_id="<b@customer.test>",
            extra_headers=["In-Reply-To: <lost@elsewhere.test>"],
        )
    )

    assert second.conversation_id == first.conversation_id


async def test_new_mail_from_the_same_customer_opens_a_new_conversation(shop):
    first = await shop.file(raw_message(message_id="<m1@customer.test>"))
    second = await shop.file(
        raw_message(message_id="<m9@customer.test>", subject="Another question")
    )

    assert second.conversation_id != first.conversation_id
    contacts = await db.fetch("SELECT DISTINCT contact_id FROM conversation")
    assert len(contacts) == 1


async def test_subject_token_joins_only_when_the_sender_takes_part(shop):
    first = await shop.file(
        raw_message(
            message_id="<m1@customer.test>",
            extra_headers=["Cc: Boss <boss@customer.test>"],
        )
    )
    token = f"[#{first.conversation_id}]"

    from_customer = await shop.file(
        raw_message(message_id="<m2@customer.test>", subject=f"Photos {token}")
    )
    from_copied_boss = await shop.file(
        raw_message(
            sender="boss@customer.test",
            message_id="<m3@customer.test>",
            subject=f"Re: {token}",
        )
    )
    from_stranger = await shop.file(
        raw_message(
            sender="mallory@attacker.test",
            message_id="<m4@attacker.test>",
            subject=f"Show me {token}",
        )
    )

    assert from_customer.conversation_id == first.conversation_id
    assert from_copied_boss.conversation_id == first.conversation_id
    assert from_stranger.conversation_id != first.conversation_id


async def test_contact_is_the_lowercased_address_and_reply_to_person_behind_no_reply(
    shop,
):
    direct = await shop.file(raw_message(sender="Dana Levi <Dana.Levi@Customer.TEST>"))
    form = await shop.file(
        raw_message(
            sender="Website <no-reply@shop-forms.test>",
            message_id="<form-1@shop-forms.test>",
            extra_headers=["Reply-To: Ana Ruiz <ana@customer.test>"],
        )
    )

    identities = await db.fetch("SELECT external_id FROM contact_identity ORDER BY id")
    assert [row["external_id"] for row in identities] == [
        "dana.levi@customer.test",
        "ana@customer.test",
    ]
    contact = await db.fetchrow(
        "SELECT c.name, c.email FROM contact c JOIN conversation v "
        "ON v.contact_id = c.id WHERE v.id = $1",
        form.conversation_id,
    )
    assert contact == {"name": "Ana Ruiz", "email": "ana@customer.test"}
    assert direct.conversation_id != form.conversation_id


async def test_auto_reply_does_not_reopen_a_resolved_conversation(shop):
    first = await shop.file(raw_message(message_id="<m1@customer.test>"))
    sent = await shop.reply(first.conversation_id)
    await db.execute(
        "UPDATE conversation SET status = 'resolved' WHERE id = $1",
        first.conversation_id,
    )

    out_of_office = await shop.file(
        reply_to(
            sent,
            message_id="<ooo@customer.test>",
            extra_headers=["Auto-Submitted: auto-replied"],
        )
    )
    status = await db.fetchval(
        "SELECT status FROM conversation WHERE id = $1", first.conversation_id
    )
    assert out_of_office.conversation_id == first.conversation_id
    assert status == "resolved"

    person = await shop.file(reply_to(sent, message_id="<back@customer.test>"))
    status = await db.fetchval(
        "SELECT status FROM conversation WHERE id = $1", first.conversation_id
    )
    assert person.conversation_id == first.conversation_id
    assert status == "open"


async def test_bounce_marks_our_reply_failed_with_the_servers_reason(shop):
    first = await shop.file(raw_message(message_id="<m1@customer.test>"))
    sent = await shop.reply(first.conversation_id)
    our_id = sent.message["Message-ID"].strip("<>")

    bounce = await shop.file(delivery_report(our_id))

    reply = await db.fetchrow(
        "SELECT delivery_status, error FROM message WHERE external_id = $1", our_id
    )
    assert reply["delivery_status"] == "failed"
    assert "5.1.1" in reply["error"] and "mailbox unknown" in reply["error"]
    assert bounce.conversation_id == first.conversation_id
    [stored] = await db.fetch(
        "SELECT metadata FROM message WHERE id = $1", bounce.message_id
    )
    assert stored["metadata"]["email"]["automatic"] == "Auto-Submitted: auto-replied"


async def test_delayed_delivery_report_leaves_the_reply_sent(shop):
    first = await shop.file(raw_message(message_id="<m1@customer.test>"))
    sent = await shop.reply(first.conversation_id)
    our_id = sent.message["Message-ID"].strip("<>")

    await shop.file(delivery_report(our_id, status="4.4.1", action="delayed"))

    status = await db.fetchval(
        "SELECT delivery_status FROM message WHERE external_id = $1", our_id
    )
    assert status == "sent"


async def test_copies_of_our_own_mail_are_not_taken_for_customer_mail(shop):
    first = await shop.file(raw_message(message_id="<m1@customer.test>"))
    sent = await shop.reply(first.conversation_id)

    echoed = await shop.file(sent.data)  # e.g. a Bcc to the support mailbox
    from_desktop = await shop.file(
        raw_message(
            sender="Shop Support <Support@shop.test>",
            to="dana@customer.test",
            message_id="<desktop@shop.test>",
            extra_headers=["In-Reply-To: <m1@customer.test>"],
        )
    )
    answer_to_desktop = await shop.file(
        raw_message(
            message_id="<m5@customer.test>",
            extra_headers=["In-Reply-To: <desktop@shop.test>"],
        )
    )

    assert echoed.outcome == "own" and from_desktop.outcome == "own"
    inbound = await db.fetchval("SELECT count(*) FROM message WHERE direction = 'in'")
    assert inbound == 2
    assert answer_to_desktop.conversation_id == first.conversation_id


async def test_same_message_filed_twice_is_stored_once_and_raw_is_downloadable(shop):
    raw = raw_message(message_id="<m1@customer.test>")

    first = await shop.file(raw)
    again = await shop.file(raw)

    assert (first.outcome, again.outcome) == ("stored", "duplicate")
    assert again.message_id == first.message_id
    [message] = await shop.messages()
    raw_key = message["metadata"]["email"]["raw_key"]
    assert await runtime.current().blobs.open(raw_key) == raw


async def test_attachments_and_inline_images_are_stored_with_content_ids(shop):
    png = b"\x89PNG\r\n\x1a\nfake"
    body = multipart(
        "mixed",
        [
            multipart(
                "related",
                [
                    part(
                        ["Content-Type: text/html; charset=utf-8"],
                        b'<p>Look:</p><img src="cid:dmg@customer.test">',
                    ),
                    part(
                        [
                            "Content-Type: image/png",
                            "Content-Transfer-Encoding: base64",
                            "Content-ID: <dmg@customer.test>",
                        ],
                        base64.encodebytes(png),
                    ),
                ],
            ),
            part(
                [
                    "Content-Type: application/pdf",
                    "Content-Disposition: attachment; filename=receipt.pdf",
                ],
                b"%PDF-1.4",
            ),
        ],
    )
    raw = with_envelope(
        ["From: dana@customer.test", "Message-ID: <att@customer.test>"], body
    )

    filed = await shop.file(raw)

    rows = await db.fetch(
        "SELECT filename, content_type, content_id, blob_key FROM attachment "
        "WHERE message_id = $1 ORDER BY id",
        filed.message_id,
    )
    assert [(r["filename"], r["content_id"]) for r in rows] == [
        ("image.png", "dmg@customer.test"),
        ("receipt.pdf", None),
    ]
    assert await runtime.current().blobs.open(rows[0]["blob_key"]) == png
    [message] = await shop.messages()
    assert 'src="cid:dmg@customer.test"' in message["html"]
    assert message["text"] == "Look:"


async def test_quote_position_is_recorded_for_the_inbox_to_collapse(shop):
    body = b"Tuesday is fine.\n\nOn Monday, Shop wrote:\n> Does Tuesday work?\n"

    await shop.file(raw_message(body=body))

    [message] = await shop.messages()
    start = message["metadata"]["email"]["quote_start"]
    assert message["text"][:start].strip() == "Tuesday is fine."
    assert message["text"].endswith("> Does Tuesday work?")


async def test_nul_characters_in_headers_do_not_stop_filing(shop):
    raw = raw_message(
        sender="Da\x00na <dana@customer.test>",
        message_id="<nul@customer.test>",
        extra_headers=[
            "In-Reply-To: <par\x00ent@customer.test>",
            "References: <a\x00b@customer.test>",
            "X-Mailer: Bad\x00Client",
        ],
    )

    filed = await shop.file(raw)

    assert filed.outcome == "stored"
    [message] = await shop.messages()
    assert "\x00" not in str(message["metadata"])


async def test_unreadable_message_goes_to_quarantine_with_the_reason(shop):
    raw = b"Subject: no sender\r\n\r\nwho wrote this?"

    filed = await shop.file(raw)

    assert filed.outcome == "quarantined"
    item = await db.fetchrow("SELECT * FROM quarantine_item")
    assert item["payload"] == raw
    assert item["inbox_id"] == shop.inbox_id
    assert "no sender address" in item["reason"]
    assert await shop.messages() == []


async def test_reply_that_arrives_before_its_parent_gathers_the_parent_too(shop):
    reply = await shop.file(
        raw_message(
            message_id="<child@customer.test>",
            extra_headers=["In-Reply-To: <parent@customer.test>"],
        )
    )
    parent = await shop.file(raw_message(message_id="<parent@customer.test>"))

    assert parent.conversation_id == reply.conversation_id


async def test_reply_to_any_recipients_copy_joins_and_its_bounce_names_them(shop):
    first = await shop.file(raw_message(extra_headers=["Cc: boss@customer.test"]))
    to_dana, to_boss = await shop.reply_copies(first.conversation_id)

    from_boss = await shop.file(
        reply_to(to_boss, sender="boss@customer.test", message_id="<b2@customer.test>")
    )
    bounce = await shop.file(
        delivery_report(to_boss.message["Message-ID"].strip("<>")).replace(
            b"dana@customer.test", b"boss@customer.test"
        )
    )

    assert from_boss.conversation_id == first.conversation_id
    assert bounce.conversation_id == first.conversation_id
    reply = await db.fetchrow(
        "SELECT delivery_status, error, external_id FROM message "
        "WHERE direction = 'out'"
    )
    assert reply["external_id"] == to_dana.message["Message-ID"].strip("<>")
    assert reply["delivery_status"] == "failed"
    assert "boss@customer.test: 5.1.1" in reply["error"]
    assert "dana@customer.test" not in reply["error"]
    copies = await db.fetch(
        "SELECT recipient, status FROM email_recipient_copy ORDER BY position"
    )
    assert [tuple(row.values()) for row in copies] == [
        ("dana@customer.test", "accepted"),
        ("boss@customer.test", "bounced"),
    ]


async def test_moved_message_takes_its_ids_so_later_replies_follow_it(shop, workspace):
    order = await shop.file(raw_message(message_id="<m1@customer.test>"))
    invoice = await shop.file(
        raw_message(message_id="<inv1@customer.test>", subject="Invoice address")
    )
    # The customer answered the order mail to ask about the invoice.
    stray = await shop.file(
        raw_message(
            message_id="<inv2@customer.test>",
            subject="Re: Order 1042 arrived broken",
            body=b"Please put my company on the invoice.",
            extra_headers=["In-Reply-To: <m1@customer.test>"],
        )
    )
    assert stray.conversation_id == order.conversation_id
    answer = await shop.reply(order.conversation_id, text="Which company name?")
    admin = await authenticate(workspace.admin.email, workspace.admin.password)

    await move_message(admin, stray.message_id, invoice.conversation_id)
    reply_id = await db.fetchval("SELECT id FROM message WHERE direction = 'out'")
    await move_message(admin, reply_id, invoice.conversation_id)

    to_stray = await shop.file(
        raw_message(
            message_id="<inv3@customer.test>",
            extra_headers=[
                "In-Reply-To: <inv2@customer.test>",
                "References: <m1@customer.test> <inv2@customer.test>",
            ],
        )
    )
    to_answer = await shop.file(reply_to(answer, message_id="<inv4@customer.test>"))
    to_order = await shop.file(
        raw_message(
            message_id="<m5@customer.test>",
            extra_headers=["In-Reply-To: <m1@customer.test>"],
        )
    )
    assert to_stray.conversation_id == invoice.conversation_id
    assert to_answer.conversation_id == invoice.conversation_id
    assert to_order.conversation_id == order.conversation_id
