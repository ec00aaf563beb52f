"""Acceptance: a real-world mailbox imported with ``patra mail import``.

The command runs as an operator runs it, in its own process against the test
database; the test then looks at what agents would see.
"""

from __future__ import annotations

import mailbox
import random
import subprocess
import sys

import pytest
from patra import db, runtime
from realworld import (
    EXPECTED_CONTACT_NAMES,
    EXPECTED_SUBJECTS,
    THREAD_LENGTH,
    bounce,
    first_archive,
    out_of_office,
    zoe_answers,
)

# What text looks like when a charset was guessed wrong.
MOJIBAKE = ("Ã", "Â", "â€", "Ð", "Ñ\x81", "\ufffd", "\x80", "\x92", "ã\x81")


@pytest.fixture
def import_command(patra_config, tmp_path):
    """Runs ``patra mail import`` in a subprocess on the test database."""
    config_file = tmp_path / "patra.toml"
    config_file.write_text(
        f"""[server]
secret_key = "{patra_config.server.secret_key}"
data_dir = "{patra_config.server.data_dir}"

[database]
url = "{patra_config.database.url}"

[plugins]
enabled = ["email"]
"""
    )

    def run(*paths) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "patra.cli", "--config", str(config_file)]
        command += ["mail", "import", "--inbox", "Support", *map(str, paths)]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    return run


def write_mbox(path, messages: list[bytes], seed: int) -> None:
    """An mbox in no particular order, as exports often are."""
    shuffled = list(messages)
    random.Random(seed).shuffle(shuffled)
    box = mailbox.mbox(path)
    for raw in shuffled:
        box.add(raw)
    box.flush()
    box.close()


async def conversation_of(message_id: str) -> int:
    return await db.fetchval(
        "SELECT conversation_id FROM message WHERE external_id = $1", message_id
    )


async def test_real_world_mailbox_imports_and_threads_like_live_mail(
    shop, import_command, tmp_path
):
    archive = first_archive()
    write_mbox(tmp_path / "archive.mbox", archive.messages, seed=7)

    first_run = import_command(tmp_path / "archive.mbox")

    assert first_run.returncode == 0, first_run.stderr
    stored = sum(len(thread.customer_ids) for thread in archive.threads.values())
    assert (
        f"{stored} stored, 0 already there, {archive.own_count} sent by this inbox "
        "(skipped), 0 quarantined." in first_run.stderr
    )

    # Every thread is one conversation of its own, the long one included.
    conversations = {}
    for name, thread in archive.threads.items():
        found = {await conversation_of(item) for item in thread.customer_ids}
        assert len(found) == 1, (name, found)
        conversations[name] = found.pop()
    assert len(set(conversations.values())) == len(archive.threads) == 6
    assert await db.fetchval("SELECT count(*) FROM conversation") == 6
    assert len(archive.threads["A"].customer_ids) == THREAD_LENGTH // 2

    # Subjects, names and texts read as written, whatever the charset.
    for name, subject in EXPECTED_SUBJECTS.items():
        assert await db.fetchval(
            "SELECT subject FROM conversation WHERE id = $1", conversations[name]
        ) == subject
    contacts = await db.fetch("SELECT email, name FROM contact")
    names = {row["email"]: row["name"] for row in contacts}
    assert names.items() >= EXPECTED_CONTACT_NAMES.items()
    for thread in archive.threads.values():
        for message_id, text in thread.texts.items():
            stored_text = await db.fetchval(
                "SELECT text FROM message WHERE external_id = $1", message_id
            )
            assert stored_text.replace("\r\n", "\n").strip() == text, message_id
    everything = await db.fetch(
        "SELECT text, coalesce(html, '') AS html FROM message "
        "UNION ALL SELECT subject, '' FROM conversation "
        "UNION ALL SELECT coalesce(name, ''), '' FROM contact "
        "UNION ALL SELECT filename, '' FROM attachment"
    )
    for row in everything:
        for bad in MOJIBAKE:
            assert bad not in row["text"] + row["html"], (bad, row["text"][:80])

    # Attachments keep their names; inline images keep their Content-ID.
    for thread in archive.threads.values():
        for message_id, names in thread.attachments.items():
            rows = await db.fetch(
                """SELECT a.filename, a.content_id, a.blob_key FROM attachment a
                   JOIN message m ON m.id = a.message_id
                   WHERE m.external_id = $1 ORDER BY a.id""",
                message_id,
            )
            assert [row["filename"] for row in rows] == names, message_id
            for row in rows:
                assert await runtime.current().blobs.open(row["blob_key"])
    inline = await db.fetch(
        "SELECT filename, content_id FROM attachment WHERE content_id IS NOT NULL "
        "ORDER BY filename"
    )
    assert [tuple(row.values()) for row in inline] == [
        ("jacke.jpg", "foto-jacke@kunde.test"),
        ("logo.png", "logo.zoe@client.test"),
    ]
    newsletter = await db.fetchval(
        "SELECT metadata -> 'email' ->> 'automatic' FROM message "
        "WHERE external_id = 'news-12@vendor.test'"
    )
    assert newsletter == "Precedence: bulk"

    # Importing the same archive again adds nothing.
    again = import_command(tmp_path / "archive.mbox")
    assert again.returncode == 0, again.stderr
    assert f"0 stored, {stored} already there" in again.stderr

    # Agents answer in Patra, then resolve everything.
    to_anna = await shop.reply(conversations["A"], text="Wir tauschen die Jacke um.")
    to_zoe = await shop.reply(conversations["B"], text="Merci, c’est noté.")
    to_ivan = await shop.reply(conversations["C"], text="Заказ в пути.")
    assert to_anna.message["In-Reply-To"] == f"<a{THREAD_LENGTH - 2}.anna@kunde.test>"
    await db.execute("UPDATE conversation SET status = 'resolved'")

    # Later mail: an out-of-office, a bounce of the reply to Ivan, Zoé's answer.
    def our_id(sent):
        return sent.message["Message-ID"].strip("<>")

    write_mbox(
        tmp_path / "later.mbox",
        [
            out_of_office(our_id(to_anna)),
            bounce(our_id(to_ivan), "ivan@primer.test"),
            zoe_answers(our_id(to_zoe)),
        ],
        seed=3,
    )
    later = import_command(tmp_path / "later.mbox")
    assert later.returncode == 0, later.stderr
    assert "3 stored, 0 already there" in later.stderr

    assert await conversation_of("ooo.anna@kunde.test") == conversations["A"]
    assert await conversation_of("20261206.dsn@mx.primer.test") == conversations["C"]
    assert await conversation_of("b9.zoe@client.test") == conversations["B"]
    statuses = {
        name: await db.fetchval(
            "SELECT status FROM conversation WHERE id = $1", conversation_id
        )
        for name, conversation_id in conversations.items()
    }
    assert statuses["A"] == "resolved"  # the out-of-office did not reopen it
    assert statuses["C"] == "resolved"  # nor did the bounce
    assert statuses["B"] == "open"  # Zoé herself did

    replies = await db.fetch(
        "SELECT conversation_id, delivery_status, error FROM message "
        "WHERE direction = 'out' ORDER BY id"
    )
    assert [row["delivery_status"] for row in replies] == ["sent", "sent", "failed"]
    failed = replies[2]
    assert failed["conversation_id"] == conversations["C"]
    assert "ivan@primer.test: 5.1.1" in failed["error"]
    assert "User unknown" in failed["error"]
    assert await db.fetchval("SELECT count(*) FROM conversation") == 6


async def test_import_command_explains_a_wrong_path_in_one_sentence(
    shop, import_command, tmp_path
):
    result = import_command(tmp_path / "missing.mbox")

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'missing.mbox'} does not exist; check the path."
    )
