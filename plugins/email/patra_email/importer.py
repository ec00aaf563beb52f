"""``patra mail import``: filing .eml files, mbox files and Maildir folders.

Messages are filed in date order so that threads form as they did live, and
each goes through the same path as IMAP mail: running the import twice adds
nothing the second time.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import logging
import mailbox
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from patra import db

from patra_email.charsets import repair
from patra_email.receive import file_email, inbox_identity

logger = logging.getLogger(__name__)


class ImportProblem(Exception):
    """The import cannot start; the message says what to change."""


def find_messages(paths: list[Path]) -> list[tuple[str, Callable[[], bytes]]]:
    """(source, reader) pairs for every message under ``paths``."""
    check_paths(paths)
    found: list[tuple[str, Callable[[], bytes]]] = []
    for path in paths:
        found.extend(_messages_in(path))
    return found


def check_paths(paths: list[Path]) -> None:
    for path in paths:
        if not path.exists():
            raise ImportProblem(f"{path} does not exist; check the path.")


def _messages_in(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
        maildir = mailbox.Maildir(path, factory=None, create=False)
        for key in maildir.iterkeys():
            yield f"maildir:{path}:{key}", lambda key=key: maildir.get_bytes(key)
    elif path.is_dir():
        for child in sorted(path.iterdir()):
            if child.is_dir() or child.suffix.lower() in (".eml", ".mbox", ""):
                yield from _messages_in(child)
    elif _looks_like_mbox(path):
        box = mailbox.mbox(path, create=False)
        for key in box.iterkeys():
            yield f"mbox:{path}:{key}", lambda box=box, key=key: box.get_bytes(key)
    else:
        yield f"file:{path}", path.read_bytes


def _looks_like_mbox(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(5) == b"From "


def _date_of(raw: bytes) -> datetime:
    """The Date header, for ordering; undated mail sorts first."""
    header_end = raw.find(b"\n\n")
    headers = raw[: header_end if header_end > 0 else 8192]
    for line in headers.splitlines():
        if line[:5].lower() == b"date:":
            try:
                parsed = email.utils.parsedate_to_datetime(
                    repair(line[5:].decode("ascii", "surrogateescape")).strip()
                )
            except (TypeError, ValueError, IndexError, OverflowError):
                break
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


async def resolve_inbox(name_or_id: str) -> int:
    rows = await db.fetch(
        """SELECT id, name FROM inbox WHERE channel_type = 'email'
           AND (name = $1 OR id::text = $1)""",
        name_or_id,
    )
    if not rows:
        names = await db.fetch(
            "SELECT name FROM inbox WHERE channel_type = 'email' ORDER BY name"
        )
        known = ", ".join(row["name"] for row in names) or "none yet"
        raise ImportProblem(
            f"No email inbox is called {name_or_id!r}. Email inboxes: {known}."
        )
    if len(rows) > 1:
        ids = ", ".join(str(row["id"]) for row in rows)
        raise ImportProblem(
            f"Several email inboxes are called {name_or_id!r}; give the id "
            f"instead (one of {ids})."
        )
    return rows[0]["id"]


async def import_messages(
    inbox_id: int,
    paths: list[Path],
    on_progress: Callable[[int, int], None] | None = None,
) -> Counter:
    """File every message under ``paths``; return counts per outcome."""
    inbox = await inbox_identity(inbox_id)
    messages = find_messages(paths)
    # Mail with equal dates keeps the order it has in its file or folder.
    dated = sorted(
        (
            (_date_of(reader()), position, source, reader)
            for position, (source, reader) in enumerate(messages)
        ),
        key=lambda item: item[:2],
    )
    outcomes: Counter = Counter()
    for done, (_, _, source, reader) in enumerate(dated, start=1):
        filed = await file_email(inbox, reader(), source)
        outcomes[filed.outcome] += 1
        if on_progress:
            on_progress(done, len(dated))
    return outcomes


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    mail = subparsers.add_parser("mail", help="email channel tools")
    actions = mail.add_subparsers(dest="mail_command", metavar="ACTION", required=True)
    importing = actions.add_parser(
        "import", help="import .eml files, mbox files and Maildir folders"
    )
    importing.add_argument("--inbox", required=True, help="email inbox name or id")
    importing.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    importing.set_defaults(func=run_import_command)


@contextlib.contextmanager
def _logs_above_the_bar(console):
    """Print log records above the progress bar instead of through it; the
    per-message lines are left out, the summary counts them."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    handlers = root.handlers[:]
    per_message = logging.getLogger("patra_email.receive")
    level = per_message.level
    root.handlers = [RichHandler(console=console, show_path=False, show_time=False)]
    per_message.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers = handlers
        per_message.setLevel(level)


async def run_import_command(args: argparse.Namespace, config) -> int:
    from patra.cli import CommandError
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    try:
        inbox_id = await resolve_inbox(args.inbox)
        check_paths(args.paths)
        with (
            _logs_above_the_bar(console),
            Progress(
                TextColumn("Importing into {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as progress,
        ):
            task = progress.add_task(args.inbox, total=None)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            outcomes = await import_messages(inbox_id, args.paths, report)
    except ImportProblem as problem:
        raise CommandError(str(problem)) from None

    console.print(
        f"{outcomes['stored']} stored, {outcomes['duplicate']} already there, "
        f"{outcomes['own']} sent by this inbox (skipped), "
        f"{outcomes['quarantined']} quarantined.",
        highlight=False,
    )
    if outcomes["quarantined"]:
        console.print(
            "Quarantined messages could not be read; admins find them, with the "
            "reason, in the quarantine.",
            highlight=False,
        )
    return 0
