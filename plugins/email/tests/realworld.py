"""A support mailbox as it looks after a few weeks of real mail.

Four customers write in four charsets (German in ISO-8859-1 that is really
Windows-1252, French in Windows-1252, Russian in KOI8-R, Japanese in
Shift_JIS and ISO-2022-JP), with attachments named in RFC 2047 and RFC 2231,
inline images, a newsletter, and one thread of 32 messages between a customer
and the support team's desktop mail program, whose replies sit in the same
mailbox. The customer's clients change over time: some send the whole
References chain, some only In-Reply-To, some rewrite References to the
parent alone, and some answer mail the archive never held.

:func:`first_archive` returns the messages with, per thread, the texts,
attachment names and ids the inbox must show; the later builders make the
mail that arrives after Patra answered.
"""

from __future__ import annotations

import base64
import email.utils
import quopri
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

CRLF = b"\r\n"
START = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
SUPPORT = "Shop Support <support@shop.test>"
ANNA = "=?iso-8859-1?Q?Anna_M=FCller?= <anna@kunde.test>"
THREAD_LENGTH = 32

# A 1x1 PNG and a tiny JPEG header: enough for a file that is an image.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGA"
    "hKmMIQAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def word(text: str, charset: str, codec: str | None = None) -> str:
    """An RFC 2047 encoded word (B encoding) in ``charset``."""
    data = text.encode(codec or charset)
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def date(minutes: int) -> str:
    return email.utils.format_datetime(START + timedelta(minutes=minutes))


def head(lines: list[str]) -> bytes:
    return CRLF.join(line.encode("ascii") for line in lines)


def text_part(text: str, charset: str, encoding: str, codec: str | None = None):
    """Content headers and body of a text/plain part in ``charset``."""
    data = text.replace("\n", "\r\n").encode(codec or charset)
    if encoding == "quoted-printable":
        body = quopri.encodestring(data)
    elif encoding == "base64":
        body = base64.encodebytes(data)
    else:
        body = data
    return [
        f"Content-Type: text/plain; charset={charset}",
        f"Content-Transfer-Encoding: {encoding}",
    ], body


def single(headers: list[str], content: tuple[list[str], bytes]) -> bytes:
    content_headers, body = content
    return head([*headers, "MIME-Version: 1.0", *content_headers]) + CRLF * 2 + body


def multipart(subtype: str, parts: list[bytes], boundary: str) -> tuple:
    out = b""
    for part in parts:
        out += f"--{boundary}".encode() + CRLF + part + CRLF
    out += f"--{boundary}--".encode() + CRLF
    return [f'Content-Type: multipart/{subtype}; boundary="{boundary}"'], out


def part(content: tuple[list[str], bytes]) -> bytes:
    headers, body = content
    return head(headers) + CRLF * 2 + body


def binary(headers: list[str], data: bytes) -> tuple[list[str], bytes]:
    return [*headers, "Content-Transfer-Encoding: base64"], base64.encodebytes(data)


@dataclass
class Thread:
    """What one thread must become: one conversation with these texts."""

    name: str
    customer_ids: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # Message-ID -> text
    attachments: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Mailbox:
    messages: list[bytes] = field(default_factory=list)
    threads: dict[str, Thread] = field(default_factory=dict)
    own_count: int = 0

    def customer(self, thread: str, message_id: str, raw: bytes, text: str = ""):
        entry = self.threads.setdefault(thread, Thread(thread))
        entry.customer_ids.append(message_id)
        if text:
            entry.texts[message_id] = text
        self.messages.append(raw)

    def own(self, raw: bytes) -> None:
        self.own_count += 1
        self.messages.append(raw)


# --- Thread A: 32 messages with a customer whose clients change ---------------

ANNA_TEXT = (
    "Guten Tag,\n\nGröße M passt leider nicht, der Preis von 49 € ist aber in "
    "Ordnung. Nachricht Nr. {number}.\n\nGrüße\nAnna Müller"
)
# How the customer's mail program writes the body, in turn: Outlook labelling
# Windows-1252 as ISO-8859-1, Windows-1252 as such, and UTF-8 in base64.
ANNA_ENCODINGS = [
    ("iso-8859-1", "quoted-printable", "cp1252"),
    ("windows-1252", "8bit", "cp1252"),
    ("utf-8", "base64", "utf-8"),
]


def _anna_threading(number: int, chain: list[str]) -> list[str]:
    """Threading headers as the client of the day writes them."""
    parent = chain[-1]
    style = (number // 2) % 4
    if style == 0:  # Thunderbird: everything
        return [f"In-Reply-To: <{parent}>", "References: " + _refs(chain)]
    if style == 1:  # a webmailer: In-Reply-To only
        return [f"In-Reply-To: <{parent}>"]
    if style == 2:  # a client that rewrites References to the parent alone
        return [f"References: <{parent}>"]
    # An answer to mail sent from a colleague's desktop, never in this archive.
    unseen = f"desktop-{number}@mail.shop.test"
    return [f"In-Reply-To: <{unseen}>", f"References: <{chain[0]}> <{unseen}>"]


def _refs(ids: list[str]) -> str:
    return " ".join(f"<{item}>" for item in ids)


def thread_a(box: Mailbox) -> None:
    chain: list[str] = []
    subject = "=?iso-8859-1?Q?Bestellung_1001:_Gr=F6=DFe_falsch?="
    for number in range(THREAD_LENGTH):
        minutes = number * 90
        if number % 2 == 1:
            own_id = f"a{number}.reply@mail.shop.test"
            box.own(
                single(
                    [
                        f"From: {SUPPORT}",
                        "To: anna@kunde.test",
                        f"Subject: Re: {subject}",
                        f"Date: {date(minutes)}",
                        f"Message-ID: <{own_id}>",
                        f"In-Reply-To: <{chain[-1]}>",
                        f"References: {_refs(chain)}",
                    ],
                    text_part(f"Antwort {number} vom Support.", "utf-8", "8bit"),
                )
            )
            chain.append(own_id)
            continue

        own_id = f"a{number}.anna@kunde.test"
        text = ANNA_TEXT.format(number=number)
        charset, encoding, codec = ANNA_ENCODINGS[(number // 2) % 3]
        threading = _anna_threading(number, chain) if chain else []
        headers = [
            f"From: {ANNA}",
            "To: Shop Support <support@shop.test>",
            f"Subject: {'AW: ' if chain else ''}{subject}",
            f"Date: {date(minutes)}",
            f"Message-ID: <{own_id}>",
            *threading,
        ]
        if number == 6:
            # An HTML mail with the photo of the jacket shown inline.
            html = (
                "<p>Hier ein Foto der Jacke – Größe M.</p>"
                '<p><img src="cid:foto-jacke@kunde.test"></p>'
            )
            related = multipart(
                "related",
                [
                    part(
                        (
                            [
                                "Content-Type: text/html; charset=utf-8",
                                "Content-Transfer-Encoding: 8bit",
                            ],
                            html.encode(),
                        )
                    ),
                    part(
                        binary(
                            [
                                "Content-Type: image/jpeg",
                                "Content-ID: <foto-jacke@kunde.test>",
                                'Content-Disposition: inline; filename="jacke.jpg"',
                            ],
                            JPEG,
                        )
                    ),
                ],
                "a6-related",
            )
            box.customer("A", own_id, single(headers, related))
            box.threads["A"].texts[own_id] = "Hier ein Foto der Jacke – Größe M."
            box.threads["A"].attachments[own_id] = ["jacke.jpg"]
        else:
            raw = single(headers, text_part(text, charset, encoding, codec))
            box.customer("A", own_id, raw, text)
        chain.append(own_id)


# --- Thread B: French in Windows-1252, inline logo and accented file names ----


def thread_b(box: Mailbox) -> None:
    sender = "=?windows-1252?Q?Zo=E9_Dupont?= <zoe@client.test>"
    subject = "=?windows-1252?Q?Facture_d=92=E9t=E9?="
    text = "Bonjour,\n\nvoici la facture – merci ! Coût : 25 €.\n\nZoé"
    html = (
        "<p>Bonjour,</p><p>voici la facture – merci ! Coût : 25 €.</p>"
        '<p><img src="cid:logo.zoe@client.test"></p><p>Zoé</p>'
    )
    alternative = multipart(
        "alternative",
        [
            part(text_part(text, "windows-1252", "quoted-printable", "cp1252")),
            part(
                (
                    [
                        "Content-Type: text/html; charset=windows-1252",
                        "Content-Transfer-Encoding: 8bit",
                    ],
                    html.encode("cp1252"),
                )
            ),
        ],
        "b1-alternative",
    )
    # The logo has a Content-ID but no Content-Disposition, as Apple Mail sends.
    related = multipart(
        "related",
        [
            part(alternative),
            part(
                binary(
                    [
                        'Content-Type: image/png; name="logo.png"',
                        "Content-ID: <logo.zoe@client.test>",
                    ],
                    PNG,
                )
            ),
        ],
        "b1-related",
    )
    mixed = multipart(
        "mixed",
        [
            part(related),
            part(
                binary(
                    [
                        "Content-Type: application/pdf",
                        "Content-Disposition: attachment; "
                        "filename*=utf-8''facture_%C3%A9t%C3%A9.pdf",
                    ],
                    PDF,
                )
            ),
        ],
        "b1-mixed",
    )
    headers = [
        f"From: {sender}",
        "To: support@shop.test",
        f"Subject: {subject}",
        f"Date: {date(45)}",
        "Message-ID: <b1.zoe@client.test>",
    ]
    box.customer("B", "b1.zoe@client.test", single(headers, mixed), text)
    box.threads["B"].attachments["b1.zoe@client.test"] = [
        "logo.png",
        "facture_été.pdf",
    ]

    box.own(
        single(
            [
                f"From: {SUPPORT}",
                "To: zoe@client.test",
                "Subject: Re: Facture",
                f"Date: {date(120)}",
                "Message-ID: <b2.reply@mail.shop.test>",
                "In-Reply-To: <b1.zoe@client.test>",
                "References: <b1.zoe@client.test>",
            ],
            text_part("Merci, nous regardons.", "utf-8", "8bit"),
        )
    )

    receipt = multipart(
        "mixed",
        [
            part(text_part("Et le reçu, ci-joint.", "windows-1252", "8bit", "cp1252")),
            part(
                binary(
                    [
                        # An encoded word inside name=, against the rules but common.
                        'Content-Type: application/pdf; name="'
                        + word("reçu.pdf", "windows-1252", "cp1252")
                        + '"',
                        "Content-Disposition: attachment",
                    ],
                    PDF,
                )
            ),
        ],
        "b3-mixed",
    )
    headers = [
        f"From: {sender}",
        "To: support@shop.test",
        f"Subject: RE: {subject}",
        f"Date: {date(200)}",
        "Message-ID: <b3.zoe@client.test>",
        "In-Reply-To: <b2.reply@mail.shop.test>",
        "References: <b1.zoe@client.test> <b2.reply@mail.shop.test>",
    ]
    box.customer("B", "b3.zoe@client.test", single(headers, receipt))
    box.threads["B"].texts["b3.zoe@client.test"] = "Et le reçu, ci-joint."
    box.threads["B"].attachments["b3.zoe@client.test"] = ["reçu.pdf"]


# --- Thread C: Russian in KOI8-R ---------------------------------------------


def thread_c(box: Mailbox) -> None:
    sender = f"{word('Иван Петров', 'koi8-r')} <ivan@primer.test>"
    subject = word("Вопрос о доставке", "koi8-r")
    text = "Здравствуйте!\n\nКогда придёт мой заказ? Скан квитанции во вложении."
    scan_name = "".join(f"%{byte:02X}" for byte in "скан".encode("koi8-r"))
    mixed = multipart(
        "mixed",
        [
            part(text_part(text, "koi8-r", "8bit")),
            part(
                binary(
                    [
                        "Content-Type: image/jpeg",
                        f"Content-Disposition: attachment; filename*=koi8-r''"
                        f"{scan_name}.jpg",
                    ],
                    JPEG,
                )
            ),
        ],
        "c1-mixed",
    )
    headers = [
        f"From: {sender}",
        "To: support@shop.test",
        f"Subject: {subject}",
        f"Date: {date(300)}",
        "Message-ID: <c1.ivan@primer.test>",
    ]
    box.customer("C", "c1.ivan@primer.test", single(headers, mixed), text)
    box.threads["C"].attachments["c1.ivan@primer.test"] = ["скан.jpg"]

    box.own(
        single(
            [
                f"From: {SUPPORT}",
                "To: ivan@primer.test",
                f"Subject: Re: {subject}",
                f"Date: {date(360)}",
                "Message-ID: <c2.reply@mail.shop.test>",
                "In-Reply-To: <c1.ivan@primer.test>",
                "References: <c1.ivan@primer.test>",
            ],
            text_part("Заказ отправлен вчера.", "utf-8", "8bit"),
        )
    )
    text = "Спасибо, жду."
    headers = [
        f"From: {sender}",
        "To: support@shop.test",
        f"Subject: Re: {subject}",
        f"Date: {date(420)}",
        "Message-ID: <c3.ivan@primer.test>",
        "In-Reply-To: <c2.reply@mail.shop.test>",
    ]
    raw = single(headers, text_part(text, "koi8-r", "quoted-printable"))
    box.customer("C", "c3.ivan@primer.test", raw, text)


# --- Thread D: Japanese in Shift_JIS, answered in ISO-2022-JP ------------------


def thread_d(box: Mailbox) -> None:
    sender = f"{word('田中太郎', 'shift_jis', 'cp932')} <tanaka@rei.test>"
    subject = word("注文について", "shift_jis", "cp932")
    text = "お世話になっております。\n注文番号１００４の配送状況を教えてください。"
    headers = [
        f"From: {sender}",
        "To: support@shop.test",
        f"Subject: {subject}",
        f"Date: {date(500)}",
        "Message-ID: <d1.tanaka@rei.test>",
    ]
    raw = single(headers, text_part(text, "shift_jis", "base64", "cp932"))
    box.customer("D", "d1.tanaka@rei.test", raw, text)

    text = "ありがとうございます。請求書を添付します。"
    invoice_name = word("請求書.pdf", "ISO-2022-JP", "iso2022_jp")
    mixed = multipart(
        "mixed",
        [
            part(text_part(text, "ISO-2022-JP", "7bit", "iso2022_jp")),
            part(
                binary(
                    [
                        f'Content-Type: application/pdf; name="{invoice_name}"',
                        f'Content-Disposition: attachment; filename="{invoice_name}"',
                    ],
                    PDF,
                )
            ),
        ],
        "d2-mixed",
    )
    headers = [
        f"From: {sender}",
        "To: support@shop.test",
        f"Subject: Re: {word('注文について', 'ISO-2022-JP', 'iso2022_jp')}",
        f"Date: {date(560)}",
        "Message-ID: <d2.tanaka@rei.test>",
        "In-Reply-To: <d1.tanaka@rei.test>",
        "References: <d1.tanaka@rei.test>",
    ]
    box.customer("D", "d2.tanaka@rei.test", single(headers, mixed), text)
    box.threads["D"].attachments["d2.tanaka@rei.test"] = ["請求書.pdf"]


# --- A newsletter and a new question -----------------------------------------


def others(box: Mailbox) -> None:
    text = "Neu im Dezember: Winterjacken. Abbestellen: https://vendor.test/u"
    headers = [
        "From: Vendor News <news@vendor.test>",
        "To: support@shop.test",
        "Subject: Vendor News Dezember",
        f"Date: {date(700)}",
        "Message-ID: <news-12@vendor.test>",
        "List-Id: Vendor News <news.vendor.test>",
        "List-Unsubscribe: <https://vendor.test/u>",
        "Precedence: bulk",
    ]
    raw = single(headers, text_part(text, "utf-8", "quoted-printable"))
    box.customer("E", "news-12@vendor.test", raw, text)

    text = "Hallo, kann ich einen Gutschein für meine nächste Bestellung nutzen?"
    headers = [
        f"From: {ANNA}",
        "To: support@shop.test",
        "Subject: =?utf-8?Q?Gutschein_f=C3=BCr_n=C3=A4chste_Bestellung?=",
        f"Date: {date(THREAD_LENGTH * 90 + 30)}",
        "Message-ID: <f1.anna@kunde.test>",
    ]
    raw = single(headers, text_part(text, "utf-8", "8bit"))
    box.customer("F", "f1.anna@kunde.test", raw, text)


def first_archive() -> Mailbox:
    """The mailbox before Patra: customers' mail and the team's desktop replies."""
    box = Mailbox()
    thread_a(box)
    thread_b(box)
    thread_c(box)
    thread_d(box)
    others(box)
    return box


# --- After Patra: an out-of-office, a bounce and a customer's answer ----------


def out_of_office(patra_reply: str) -> bytes:
    text = "Ich bin bis zum 14. Dezember nicht im Büro und lese keine E-Mails."
    headers = [
        f"From: {ANNA}",
        "To: support@shop.test",
        "Subject: =?iso-8859-1?Q?Abwesenheitsnotiz:_Bestellung_1001?=",
        f"Date: {date(5000)}",
        "Message-ID: <ooo.anna@kunde.test>",
        f"In-Reply-To: <{patra_reply}>",
        "Auto-Submitted: auto-replied",
        "X-Autoreply: yes",
    ]
    return single(headers, text_part(text, "iso-8859-1", "quoted-printable"))


def bounce(patra_reply: str, recipient: str) -> bytes:
    """A Postfix delivery status notification for one of Patra's replies."""
    human = part(
        text_part(
            "This is the mail system at host mx.primer.test.\n\n"
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients.",
            "us-ascii",
            "7bit",
        )
    )
    status = (
        "Reporting-MTA: dns; mx.primer.test\r\n"
        f"Arrival-Date: {date(5010)}\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Remote-MTA: dns; mx.primer.test\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address "
        "rejected: User unknown in local recipient table\r\n"
    ).encode()
    machine = part((["Content-Type: message/delivery-status"], status))
    original = part(
        (
            ["Content-Type: text/rfc822-headers"],
            (
                f"From: Shop Support <support@shop.test>\r\nTo: {recipient}\r\n"
                f"Message-ID: <{patra_reply}>\r\nSubject: Re: delivery\r\n"
            ).encode(),
        )
    )
    _, report_body = multipart("report", [human, machine, original], "dsn-boundary")
    report_headers = [
        "Content-Type: multipart/report; report-type=delivery-status; "
        'boundary="dsn-boundary"'
    ]
    headers = [
        "From: MAILER-DAEMON@mx.primer.test (Mail Delivery System)",
        "To: support@shop.test",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {date(5010)}",
        "Message-ID: <20261206.dsn@mx.primer.test>",
        "Auto-Submitted: auto-replied",
        "Return-Path: <>",
    ]
    return single(headers, (report_headers, report_body))


def zoe_answers(patra_reply: str) -> bytes:
    text = "C’est parfait, merci beaucoup !"
    headers = [
        "From: =?windows-1252?Q?Zo=E9_Dupont?= <zoe@client.test>",
        "To: support@shop.test",
        "Subject: RE: Facture",
        f"Date: {date(5020)}",
        "Message-ID: <b9.zoe@client.test>",
        f"In-Reply-To: <{patra_reply}>",
        f"References: <b1.zoe@client.test> <{patra_reply}>",
    ]
    return single(headers, text_part(text, "windows-1252", "8bit", "cp1252"))


EXPECTED_CONTACT_NAMES = {
    "anna@kunde.test": "Anna Müller",
    "zoe@client.test": "Zoé Dupont",
    "ivan@primer.test": "Иван Петров",
    "tanaka@rei.test": "田中太郎",
}
EXPECTED_SUBJECTS = {
    "A": "Bestellung 1001: Größe falsch",
    "B": "Facture d’été",
    "C": "Вопрос о доставке",
    "D": "注文について",
    "E": "Vendor News Dezember",
    "F": "Gutschein für nächste Bestellung",
}
