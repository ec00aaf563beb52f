"""``patra mail import`` on a generated mbox: plain mails, HTML mails, threads
with quoted replies, and attachments from a few kB to a few hundred kB.
"""

from __future__ import annotations

import mailbox
import random
import subprocess
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from bench.textgen import TextGenerator

ATTACHMENT_TYPES = [
    ("invoice.pdf", "application", "pdf"),
    ("photo.jpg", "image", "jpeg"),
    ("screenshot.png", "image", "png"),
    (
        "report.xlsx",
        "application",
        "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
]


def _body(text: TextGenerator, index: int, paragraphs: int) -> str:
    return "\n\n".join(text.message(index * 7 + n) for n in range(paragraphs))


def write_mbox(path: Path, count: int, to_address: str, seed: int = 5) -> dict:
    """An mbox of ``count`` messages; returns its size and mix."""
    rng = random.Random(seed)
    text = TextGenerator(seed, stream_words=200_000)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    box = mailbox.mbox(path, create=True)
    threads: list[tuple[str, str, str]] = []  # (message id, subject, sender)
    mix = {"plain": 0, "html": 0, "attachments": 0, "replies": 0}
    box.lock()
    try:
        for index in range(count):
            message = EmailMessage()
            sender_number = rng.randrange(count // 4 + 1)
            sender = f"customer{sender_number}@mail.example"
            when = start + timedelta(minutes=7 * index)
            body = _body(text, index, rng.choice((1, 1, 2, 3, 6)))
            if threads and rng.random() < 0.3:
                parent_id, subject, sender = rng.choice(threads[-200:])
                message["Subject"] = f"Re: {subject}"
                message["In-Reply-To"] = parent_id
                message["References"] = parent_id
                body += "\n\nOn Monday you wrote:\n> " + text.message(index).replace(
                    "\n", "\n> "
                )
                mix["replies"] += 1
            else:
                subject = text.subject()
                message["Subject"] = subject
            message_id = make_msgid(domain="mail.example")
            message["Message-ID"] = message_id
            message["From"] = f"Customer {sender_number} <{sender}>"
            message["To"] = f"Support <{to_address}>"
            message["Date"] = format_datetime(when)
            message.set_content(body)
            roll = rng.random()
            if roll < 0.25:
                paragraphs = "".join(f"<p>{line}</p>" for line in body.split("\n\n"))
                message.add_alternative(
                    f"<html><body>{paragraphs}<p><b>Thanks</b></p></body></html>",
                    subtype="html",
                )
                mix["html"] += 1
            else:
                mix["plain"] += 1
            if roll > 0.92:
                filename, main, sub = rng.choice(ATTACHMENT_TYPES)
                size = int(rng.choice((4, 20, 80, 300)) * 1024 * rng.uniform(0.5, 1.5))
                message.add_attachment(
                    rng.randbytes(size), maintype=main, subtype=sub, filename=filename
                )
                mix["attachments"] += 1
            threads.append((message_id, subject.removeprefix("Re: "), sender))
            box.add(message)
        box.flush()
    finally:
        box.unlock()
        box.close()
    return {"messages": count, "mbox_mb": round(path.stat().st_size / 2**20, 1), **mix}


def run_import(command: list[str], inbox_name: str, mbox: Path, log: Path) -> dict:
    """Time ``patra mail import`` from launch to exit."""
    began = time.perf_counter()
    with log.open("wb") as output:
        finished = subprocess.run(
            [*command, "mail", "import", "--inbox", inbox_name, str(mbox)],
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    elapsed = time.perf_counter() - began
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    return {
        "exit_code": finished.returncode,
        "seconds": round(elapsed, 2),
        "summary": " ".join(line.strip() for line in tail if "stored" in line),
        "log_tail": tail,
    }
