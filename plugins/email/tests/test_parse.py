"""Reading real-world mail: charsets, encodings, structure, quotes, reports."""

from __future__ import annotations

import base64

import pytest
from corpus import delivery_report, multipart, part, raw_message, tnef, with_envelope

from patra_email.automatic import automatic_reason, customer_address
from patra_email.charsets import decode_bytes
from patra_email.parse import UnreadableEmail, parse_email


def test_hebrew_labelled_iso_8859_8_i_is_readable():
    raw = raw_message(
        body="שלום, ההזמנה הגיעה".encode("iso-8859-8"),
        content_type="text/plain; charset=iso-8859-8-i",
    )

    assert parse_email(raw).text == "שלום, ההזמנה הגיעה"


def test_unknown_8bit_body_is_read_as_windows_1252_when_not_utf8():
    raw = raw_message(
        body="Caf\u00e9 cr\u00e8me \u20ac5".encode("cp1252"),
        content_type="text/plain; charset=unknown-8bit",
    )

    assert parse_email(raw).text == "Café crème €5"


def test_utf8_body_mislabelled_as_us_ascii_is_still_readable():
    raw = raw_message(
        body="Grüße aus Köln".encode(), content_type="text/plain; charset=us-ascii"
    )

    assert parse_email(raw).text == "Grüße aus Köln"


def test_x_mac_roman_and_unlabelled_bodies_decode():
    mac = raw_message(
        body="Ça va".encode("mac_roman"), content_type="text/plain; charset=x-mac-roman"
    )
    unlabelled = raw_message(body="naïve".encode("cp1252"), content_type="text/plain")

    assert parse_email(mac).text == "Ça va"
    assert parse_email(unlabelled).text == "naïve"


def test_invalid_bytes_and_nul_characters_never_reach_the_database():
    raw = raw_message(body=b"Order\x00 number \xff\xfe 12", content_type="text/plain")
    text = parse_email(raw).text

    assert "\x00" not in text
    assert text.startswith("Order")
    assert text.endswith("12")
    text.encode("utf-8")  # PostgreSQL accepts only valid UTF-8


def test_charset_labels_that_name_no_text_encoding_fall_back():
    assert decode_bytes(b"plain", "base64") == "plain"
    assert decode_bytes("é".encode(), "no-such-charset") == "é"


def test_encoded_words_splitting_one_multibyte_character_are_joined():
    euro = "€".encode()
    first = base64.b64encode(euro[:2]).decode()
    second = base64.b64encode(euro[2:]).decode()
    raw = raw_message(subject=f"=?utf-8?B?{first}?= =?utf-8?B?{second}?= 20 off")

    assert parse_email(raw).subject == "€ 20 off"


def test_raw_8bit_headers_are_decoded():
    latin = raw_message(
        subject="Bestellung f\udcfcr M\udcfcller",
        sender="J\udcfcrgen <juergen@customer.test>",
    )

    parsed = parse_email(latin)

    assert parsed.subject == "Bestellung für Müller"
    assert parsed.sender.name == "Jürgen"


def test_encoded_word_with_unknown_charset_label_in_sender_name():
    raw = raw_message(sender="=?iso-8859-8-i?B?+ezl7Q==?= <shalom@customer.test>")

    parsed = parse_email(raw)

    assert parsed.sender.name == "שלום"
    assert parsed.sender.email == "shalom@customer.test"


def test_attachment_names_in_rfc2231_and_encoded_words_are_decoded():
    pdf = b"%PDF-1.4 fake"
    body = multipart(
        "mixed",
        [
            part(["Content-Type: text/plain; charset=utf-8"], b"See attached."),
            part(
                [
                    "Content-Type: application/pdf",
                    "Content-Disposition: attachment;",
                    " filename*0*=utf-8''Rechnung%20M%C3%BC; filename*1*=ller.pdf",
                ],
                pdf,
            ),
            part(
                [
                    "Content-Type: application/pdf;",
                    ' name="=?utf-8?Q?r=C3=A9sum=C3=A9.pdf?="',
                    "Content-Disposition: attachment",
                ],
                pdf,
            ),
            part(
                [
                    "Content-Type: application/octet-stream",
                    'Content-Disposition: attachment; filename="../../evil.bat"',
                ],
                b"x",
            ),
        ],
    )
    raw = with_envelope(["From: a@customer.test", "Subject: files"], body)

    names = [item.filename for item in parse_email(raw).attachments]

    assert names == ["Rechnung Müller.pdf", "résumé.pdf", "evil.bat"]


def test_html_only_mail_is_sanitized_and_gets_a_text_version():
    html = (
        b"<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
        b"<body><p onclick='steal()'>Hello <b>team</b>,</p><p>The box is "
        b"<a href='javascript:alert(1)'>damaged</a>.</p>"
        b"<ul><li>vase</li><li>plate</li></ul></body></html>"
    )
    raw = raw_message(body=html, content_type="text/html; charset=utf-8")

    parsed = parse_email(raw)

    assert "script" not in parsed.html and "onclick" not in parsed.html
    assert "javascript" not in parsed.html
    assert "<b>team</b>" in parsed.html
    assert parsed.text == "Hello team,\n\nThe box is damaged.\n\n- vase\n- plate"


def test_text_and_html_alternatives_are_both_kept():
    body = multipart(
        "alternative",
        [
            part(["Content-Type: text/plain; charset=utf-8"], b"Plain version"),
            part(["Content-Type: text/html; charset=utf-8"], b"<p>HTML version</p>"),
        ],
    )
    parsed = parse_email(with_envelope(["From: a@customer.test"], body))

    assert parsed.text == "Plain version"
    assert parsed.html == "<p>HTML version</p>"
    assert parsed.attachments == []


def test_inline_image_without_content_disposition_keeps_its_content_id():
    png = b"\x89PNG\r\n\x1a\nfake image"
    related = multipart(
        "related",
        [
            part(
                ["Content-Type: text/html; charset=utf-8"],
                b'<p>Photo of the damage:</p><img src="cid:photo1@customer.test">',
            ),
            part(
                [
                    "Content-Type: image/png",
                    "Content-Transfer-Encoding: base64",
                    "Content-ID: <photo1@customer.test>",
                ],
                base64.encodebytes(png),
            ),
        ],
    )
    parsed = parse_email(with_envelope(["From: a@customer.test"], related))

    [image] = parsed.attachments
    assert image.content_id == "photo1@customer.test"
    assert image.data == png
    assert image.content_type == "image/png"
    assert image.filename == "image.png"
    assert 'src="cid:photo1@customer.test"' in parsed.html


def test_apple_mail_text_split_around_an_image_keeps_both_halves():
    body = multipart(
        "mixed",
        [
            part(["Content-Type: text/plain; charset=utf-8"], b"Before the photo."),
            part(
                [
                    "Content-Type: image/jpeg; name=photo.jpg",
                    "Content-Disposition: inline; filename=photo.jpg",
                ],
                b"\xff\xd8jpeg",
            ),
            part(["Content-Type: text/plain; charset=utf-8"], b"After the photo."),
        ],
    )
    parsed = parse_email(with_envelope(["From: a@customer.test"], body))

    assert "Before the photo." in parsed.text and "After the photo." in parsed.text
    assert [item.filename for item in parsed.attachments] == ["photo.jpg"]


def test_apple_mail_html_split_around_an_image_is_complete_and_not_repeated():
    html_side = multipart(
        "mixed",
        [
            part(["Content-Type: text/html; charset=utf-8"], b"<p>Before.</p>"),
            part(
                [
                    "Content-Type: image/png; name=a.png",
                    "Content-Disposition: inline; filename=a.png",
                ],
                b"png",
            ),
            part(["Content-Type: text/html; charset=utf-8"], b"<p>After.</p>"),
        ],
    )
    body = multipart(
        "alternative",
        [
            part(["Content-Type: text/plain; charset=utf-8"], b"Before.\n\nAfter."),
            html_side,
        ],
    )
    parsed = parse_email(with_envelope(["From: a@customer.test"], body))

    assert parsed.text == "Before.\n\nAfter."
    assert "<p>Before.</p>" in parsed.html and "<p>After.</p>" in parsed.html


def test_attached_message_is_kept_as_an_eml_file():
    inner = raw_message(subject="Original: invoice 7", message_id="<inner@x.test>")
    body = multipart(
        "mixed",
        [
            part(["Content-Type: text/plain"], b"Forwarding the invoice mail."),
            part(["Content-Type: message/rfc822"], inner),
        ],
    )
    parsed = parse_email(with_envelope(["From: a@customer.test"], body))

    [attached] = parsed.attachments
    assert attached.content_type == "message/rfc822"
    assert attached.filename == "Original invoice 7.eml"
    assert b"Message-ID: <inner@x.test>" in attached.data
    assert parsed.text == "Forwarding the invoice mail."


def test_outlook_winmail_dat_is_unpacked_into_its_files_and_body():
    winmail = tnef(
        b"Please see the attached contract.\x00",
        [("contract.docx", b"PK\x03\x04docx"), ("notes.txt", b"some notes")],
    )
    body = multipart(
        "mixed",
        [
            part(
                [
                    "Content-Type: application/ms-tnef; name=winmail.dat",
                    "Content-Transfer-Encoding: base64",
                    "Content-Disposition: attachment; filename=winmail.dat",
                ],
                base64.encodebytes(winmail),
            )
        ],
    )
    parsed = parse_email(with_envelope(["From: a@customer.test"], body))

    assert [(a.filename, a.data) for a in parsed.attachments] == [
        ("contract.docx", b"PK\x03\x04docx"),
        ("notes.txt", b"some notes"),
    ]
    assert parsed.text == "Please see the attached contract."


def test_broken_winmail_dat_is_kept_as_it_came():
    body = multipart(
        "mixed",
        [
            part(["Content-Type: text/plain"], b"Hi"),
            part(
                ["Content-Type: application/ms-tnef; name=winmail.dat"],
                b"not tnef at all",
            ),
        ],
    )
    parsed = parse_email(with_envelope(["From: a@customer.test"], body))

    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]


@pytest.mark.parametrize(
    ("reply", "new_text"),
    [
        (
            "Yes, Tuesday works.\n\nOn Mon, 30 Nov 2026 at 09:12, Shop Support "
            "<support@shop.test> wrote:\n> Would Tuesday work?\n",
            "Yes, Tuesday works.",
        ),
        (
            "Danke!\n\nAm 30.11.2026 um 09:12 schrieb Support <support@shop.test>:\n"
            "> Passt Dienstag?\n",
            "Danke!",
        ),
        (
            "Thanks, received.\r\n\r\n________________________________\r\n"
            "From: Shop Support <support@shop.test>\r\nSent: Monday\r\n"
            "Subject: Your order\r\n\r\nWe shipped it.\r\n",
            "Thanks, received.",
        ),
        (
            "Fine by me.\n\n-----Original Message-----\nFrom: support@shop.test\n"
            "We shipped it.",
            "Fine by me.",
        ),
        ("Got it.\n\n> We shipped it.\n> Regards\n", "Got it."),
    ],
)
def test_quoted_earlier_mail_is_marked_but_kept(reply, new_text):
    parsed = parse_email(raw_message(body=reply.encode()))

    assert parsed.quote_start is not None
    assert parsed.text[: parsed.quote_start].strip() == new_text
    assert len(parsed.text) > parsed.quote_start  # the quote is still there


def test_interleaved_answers_are_not_collapsed():
    body = b"> Which colour?\nBlue.\n> Which size?\nLarge."
    assert parse_email(raw_message(body=body)).quote_start is None


def test_html_blockquote_becomes_a_collapsible_quote_in_the_text():
    html = (
        b"<div>Sounds good.</div><div class='gmail_quote'>On Monday Shop wrote:"
        b"<blockquote>We can deliver on Tuesday.</blockquote></div>"
    )
    parsed = parse_email(raw_message(body=html, content_type="text/html"))

    assert parsed.text[: parsed.quote_start].strip() == "Sounds good."
    assert "> We can deliver on Tuesday." in parsed.text


def test_message_without_sender_address_cannot_be_filed():
    with pytest.raises(UnreadableEmail, match="no sender address"):
        parse_email(b"Subject: orphan\r\n\r\nno sender here")
    with pytest.raises(UnreadableEmail, match="empty"):
        parse_email(b"\r\n\r\n")


def test_message_without_message_id_gets_a_stable_identity():
    raw = raw_message(message_id=None)

    assert parse_email(raw).external_id == parse_email(raw).external_id
    assert parse_email(raw).external_id.startswith("sha256:")


def test_delivery_report_names_the_failed_recipient_and_our_message():
    parsed = parse_email(delivery_report("patra.7.abc@shop.test"))

    assert parsed.report.original_message_id == "patra.7.abc@shop.test"
    [recipient] = parsed.report.recipients
    assert recipient.recipient == "dana@customer.test"
    assert recipient.status == "5.1.1"
    assert "mailbox unknown" in recipient.diagnostic
    assert recipient.failed
    assert automatic_reason(parsed) is not None
    assert "could not be delivered" in parsed.text


def test_base64_encoded_delivery_status_is_read_too():
    parsed = parse_email(delivery_report("patra.8.x@shop.test", base64_status=True))

    [recipient] = parsed.report.recipients
    assert (recipient.recipient, recipient.status) == ("dana@customer.test", "5.1.1")


def test_delayed_delivery_report_is_not_a_failure():
    parsed = parse_email(
        delivery_report("x@shop.test", status="4.4.1", action="delayed")
    )

    assert not parsed.report.recipients[0].failed


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated; foo=bar",
        "Precedence: bulk",
        "Precedence: list",
        "List-Id: <news.customer.test>",
        "List-Unsubscribe: <mailto:leave@customer.test>",
        "Return-Path: <>",
        "X-Autoreply: yes",
    ],
)
def test_automatic_mail_is_recognised(header):
    parsed = parse_email(raw_message(extra_headers=[header]))

    assert automatic_reason(parsed) is not None


def test_mail_a_person_wrote_is_not_automatic():
    parsed = parse_email(
        raw_message(extra_headers=["Auto-Submitted: no", "Return-Path: <dana@x.test>"])
    )

    assert automatic_reason(parsed) is None


def test_no_reply_sender_with_a_personal_reply_to_makes_that_person_the_contact():
    parsed = parse_email(
        raw_message(
            sender="Contact form <no-reply@forms.test>",
            extra_headers=["Reply-To: Ana Ruiz <Ana.Ruiz@customer.test>"],
        )
    )

    assert customer_address(parsed).email == "ana.ruiz@customer.test"
    assert customer_address(parsed).name == "Ana Ruiz"
    assert automatic_reason(parsed) is None


def test_no_reply_sender_without_a_person_is_automatic():
    parsed = parse_email(raw_message(sender="noreply@service.test"))

    assert customer_address(parsed).email == "noreply@service.test"
    assert automatic_reason(parsed) == "sent from a no-reply address"


def test_references_and_in_reply_to_are_read_in_order():
    parsed = parse_email(
        raw_message(
            extra_headers=[
                "In-Reply-To: <b@shop.test> (Shop's message of Monday)",
                "References: <root@customer.test>\r\n <a@shop.test>  <b@shop.test>",
            ]
        )
    )

    assert parsed.in_reply_to == ["b@shop.test"]
    assert parsed.references == ["root@customer.test", "a@shop.test", "b@shop.test"]
