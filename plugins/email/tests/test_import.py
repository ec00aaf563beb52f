"""``patra mail import``: .eml files, mbox files and Maildir folders."""

from __future__ import annotations

import argparse
import mailbox

import pytest
from corpus import raw_message
from patra import db
from patra.cli import CommandError

from patra_email.importer import add_commands, import_messages, run_import_command


def thread(prefix: str) -> list[bytes]:
    """A customer's message and two replies, newest first on purpose."""
    return [
        raw_message(
            message_id=f"<{prefix}3@customer.test>",
            subject="Re: Re: Invoice",
            extra_headers=[
                f"In-Reply-To: <{prefix}2@customer.test>",
                f"References: <{prefix}1@customer.test> <{prefix}2@customer.test>",
                "Date: Wed, 02 Dec 2026 12:00:00 +0000",
            ],
        ).replace(b"Date: Tue, 01 Dec 2026 10:00:00 +0100\r\n", b""),
        raw_message(
            message_id=f"<{prefix}2@customer.test>",
            subject="Re: Invoice",
            extra_headers=[
                f"In-Reply-To: <{prefix}1@customer.test>",
                "Date: Wed, 02 Dec 2026 11:00:00 +0000",
            ],
        ).replace(b"Date: Tue, 01 Dec 2026 10:00:00 +0100\r\n", b""),
        raw_message(message_id=f"<{prefix}1@customer.test>", subject="Invoice"),
    ]


@pytest.fixture
def archive(tmp_path):
    """One folder holding an .eml file, an mbox file and a Maildir."""
    eml_thread, mbox_thread, maildir_thread = thread("e"), thread("m"), thread("d")
    for number, raw in enumerate(eml_thread):
        (tmp_path / f"message{number}.eml").write_bytes(raw)
    box = mailbox.mbox(tmp_path / "archive.mbox")
    for raw in mbox_thread:
        box.add(raw)
    box.flush()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for raw in maildir_thread:
        maildir.add(raw)
    (tmp_path / "broken.eml").write_bytes(b"Subject: no sender\r\n\r\n?")
    return tmp_path


async def test_import_threads_every_format_and_a_second_run_adds_nothing(shop, archive):
    seen = []

    first = await import_messages(
        shop.inbox_id, [archive], lambda done, total: seen.append((done, total))
    )
    second = await import_messages(shop.inbox_id, [archive])

    assert first == {"stored": 9, "quarantined": 1}
    assert second == {"duplicate": 9, "quarantined": 1}
    assert seen[-1] == (10, 10)
    conversations = await db.fetch(
        "SELECT conversation_id, count(*) AS messages FROM message "
        "GROUP BY conversation_id"
    )
    assert sorted(row["messages"] for row in conversations) == [3, 3, 3]
    subjects = await db.fetch("SELECT subject FROM conversation ORDER BY id")
    assert {row["subject"] for row in subjects} == {"Invoice"}


async def test_import_command_finds_the_inbox_by_name_and_reports(
    shop, archive, capsys
):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["mail", "import", "--inbox", "Support", str(archive / "archive.mbox")]
    )

    assert await run_import_command(args, None) == 0

    output = capsys.readouterr().err
    assert "3 stored, 0 already there" in output
    assert await db.fetchval("SELECT count(*) FROM message") == 3


async def test_import_command_names_the_known_inboxes_when_one_is_wrong(shop, archive):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mail", "import", "--inbox", "Sales", str(archive)])

    with pytest.raises(CommandError, match="No email inbox is called 'Sales'.*Support"):
        await run_import_command(args, None)


async def test_import_of_a_missing_path_says_so(shop, tmp_path):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    missing = tmp_path / "nowhere.mbox"
    args = parser.parse_args(["mail", "import", "--inbox", "Support", str(missing)])

    with pytest.raises(CommandError, match="does not exist"):
        await run_import_command(args, None)


async def test_long_thread_with_equal_dates_keeps_file_order(shop, tmp_path):
    box = mailbox.mbox(tmp_path / "long.mbox")
    for number in range(12):
        parent = [f"In-Reply-To: <n{number - 1}@customer.test>"] if number else []
        own_id = f"<n{number}@customer.test>"
        box.add(raw_message(message_id=own_id, extra_headers=parent))
    box.flush()

    await import_messages(shop.inbox_id, [tmp_path / "long.mbox"])

    conversations = await db.fetchval(
        "SELECT count(DISTINCT conversation_id) FROM message"
    )
    assert conversations == 1
