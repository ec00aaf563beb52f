"""Reading new mail from IMAP folders: IDLE where offered, polling otherwise.

Each watched folder has a cursor (UIDVALIDITY, last UID) in
``email_imap_cursor``. Messages are read with ``BODY.PEEK[]``, so flags such
as ``\\Seen`` are never changed, and the cursor moves forward only after a
message was filed (or quarantined). Every wait has a timeout; a broken, hung
or closed connection is dropped and opened again with growing delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from dataclasses import dataclass

import aioimaplib
from patra import db

from patra_email.receive import InboxIdentity, file_email
from patra_email.settings import EmailSettings
from patra_email.tls import certificate_problem, client_context

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT_SECONDS = 60.0
IDLE_SLICE_SECONDS = 30.0
RECONNECT_DELAYS_SECONDS = (1, 2, 5, 10, 30, 60, 120, 300)
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)")


class ImapError(Exception):
    """The IMAP server refused something; the message says what to check."""


# Everything that means "this connection is no good, open another one".
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncio.IncompleteReadError,
    aioimaplib.AioImapException,
    ImapError,
    ssl.SSLError,
)


async def connect(settings: EmailSettings) -> aioimaplib.IMAP4:
    """An IMAP connection, logged in; raises ImapError with the server's answer."""
    if not settings.imap_host:
        raise ImapError(
            "This inbox has no IMAP server set up; enter one in the inbox settings."
        )
    if settings.imap_security == "ssl":
        client = aioimaplib.IMAP4_SSL(
            settings.imap_host,
            settings.imap_port,
            timeout=COMMAND_TIMEOUT_SECONDS,
            ssl_context=client_context(settings),
        )
    else:
        client = aioimaplib.IMAP4(
            settings.imap_host, settings.imap_port, timeout=COMMAND_TIMEOUT_SECONDS
        )
    try:
        await client.wait_hello_from_server()
        if settings.imap_security == "starttls":
            await _start_tls(client, settings)
    except ssl.SSLError as error:
        problem = certificate_problem(error, "IMAP")
        if problem is None:
            raise
        raise ImapError(problem) from None
    response = await client.login(settings.imap_user, settings.imap_password)
    if response.result != "OK":
        await close(client)
        raise ImapError(
            f"The IMAP server {settings.imap_host} refused the login: "
            f"{_answer(response)}. Check the IMAP user and password."
        )
    return client


async def _start_tls(client: aioimaplib.IMAP4, settings: EmailSettings) -> None:
    """Switch the plain connection to TLS before logging in (RFC 3501 6.2.1);
    aioimaplib knows the command but has no call for it."""
    protocol = client.protocol
    where = f"{settings.imap_host}:{settings.imap_port}"
    if "STARTTLS" not in protocol.capabilities:
        await close(client)
        raise ImapError(
            f"The IMAP server {where} does not offer STARTTLS. Choose security "
            "ssl (usually port 993) in the inbox settings."
        )
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await asyncio.wait_for(
        protocol.execute(command), COMMAND_TIMEOUT_SECONDS
    )
    if response.result != "OK":
        await close(client)
        raise ImapError(
            f"The IMAP server {where} refused STARTTLS: {_answer(response)}. "
            "Choose security ssl (usually port 993) in the inbox settings."
        )

    loop = asyncio.get_running_loop()
    protocol.transport = await asyncio.wait_for(
        loop.start_tls(
            protocol.transport,
            protocol,
            client_context(settings),
            server_hostname=settings.imap_host,
        ),
        COMMAND_TIMEOUT_SECONDS,
    )
    # What the server announced before TLS may have been tampered with.
    await asyncio.wait_for(protocol.capability(), COMMAND_TIMEOUT_SECONDS)


async def close(client: aioimaplib.IMAP4) -> None:
    if client.has_pending_idle():
        client.idle_done()
    with contextlib.suppress(*CONNECTION_ERRORS):
        await asyncio.wait_for(client.logout(), 5)
    transport = client.protocol.transport
    if transport is not None:
        transport.close()


def _answer(response) -> str:
    lines = [
        bytes(line).decode("utf-8", "replace")
        for line in response.lines
        if isinstance(line, bytes | bytearray)
    ]
    answer = " ".join(lines[-1:]) or response.result
    return answer.strip().rstrip(".")


@dataclass(frozen=True)
class Folder:
    uidvalidity: int
    uidnext: int | None
    count: int


async def select(client: aioimaplib.IMAP4, folder: str) -> Folder:
    """Open ``folder``; return its UIDVALIDITY, next UID and message count."""
    response = await client.select(_quoted(folder))
    if response.result != "OK":
        raise ImapError(
            f"The IMAP folder {folder!r} could not be opened: {_answer(response)}. "
            "Check the folder names in the inbox settings."
        )
    validity = uidnext = count = None
    for line in response.lines:
        line = bytes(line)
        if match := _UIDVALIDITY.search(line):
            validity = int(match.group(1))
        if match := _UIDNEXT.search(line):
            uidnext = int(match.group(1))
        if line.endswith(b" EXISTS"):
            count = int(line.split()[0])
    if validity is None:
        raise ImapError(f"The IMAP server gave no UIDVALIDITY for {folder!r}.")
    return Folder(validity, uidnext, count or 0)


def _quoted(folder: str) -> str:
    escaped = folder.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class ImapReceiver:
    def __init__(self, settings: EmailSettings, inbox: InboxIdentity):
        self.settings = settings
        self.inbox = inbox
        self.failures = 0  # since the last successful login

    async def run(self, stop: asyncio.Event) -> None:
        """Receive until ``stop`` is set, reconnecting after every failure."""
        while not stop.is_set():
            try:
                await self._session(stop)
            except CONNECTION_ERRORS as error:
                delay = RECONNECT_DELAYS_SECONDS[
                    min(self.failures, len(RECONNECT_DELAYS_SECONDS) - 1)
                ]
                self.failures += 1
                why = error if isinstance(error, ImapError) else type(error).__name__
                logger.warning(
                    "IMAP for inbox %s: %s; reconnecting in %s s",
                    self.inbox.id,
                    why,
                    delay,
                )
                detail = f"{str(why).rstrip('.')}. Trying again in {delay} s."
                await self._report(False, detail)
                await _wait(stop, delay)

    async def _session(self, stop: asyncio.Event) -> None:
        client = await connect(self.settings)
        self.failures = 0
        logger.info("IMAP for inbox %s: connected", self.inbox.id)
        await self._report(True, "Connected to the IMAP server.")

        try:
            folders = self.settings.imap_folders
            use_idle = client.has_capability("IDLE") and len(folders) == 1
            while not stop.is_set():
                for folder in folders:
                    await self.sync_folder(client, folder, stop)
                if stop.is_set():
                    break
                if use_idle:
                    await self._idle(client, stop)
                else:
                    await _wait(stop, self.settings.poll_interval_seconds)
        finally:
            await close(client)

    async def _report(self, ok: bool, detail: str) -> None:
        await db.execute(
            """INSERT INTO email_receiver_status (inbox_id, ok, detail)
               VALUES ($1, $2, $3)
               ON CONFLICT (inbox_id) DO UPDATE
               SET ok = $2, detail = $3, updated_at = now()""",
            self.inbox.id,
            ok,
            detail,
        )

    async def sync_folder(
        self, client: aioimaplib.IMAP4, folder: str, stop: asyncio.Event | None = None
    ) -> int:
        """File every message after the cursor; return how many were read."""
        selected = await select(client, folder)
        last_uid = await self._cursor(folder, selected)
        uids = await _uids_after(client, folder, last_uid)

        read = 0
        for uid in uids:
            if stop is not None and stop.is_set():
                break
            raw = await self._fetch(client, uid)
            if raw is not None:
                source = f"imap:{folder}:{selected.uidvalidity}:{uid}"
                await file_email(self.inbox, raw, source)
                read += 1
            await self._advance(folder, uid)
        return read

    async def _cursor(self, folder: str, selected: Folder) -> int:
        validity = selected.uidvalidity
        row = await db.fetchrow(
            """SELECT uidvalidity, last_uid FROM email_imap_cursor
               WHERE inbox_id = $1 AND mailbox = $2""",
            self.inbox.id,
            folder,
        )
        if row is not None and row["uidvalidity"] == validity:
            return row["last_uid"]
        if row is not None:
            logger.warning(
                "IMAP for inbox %s: folder %r has a new UIDVALIDITY; reading it "
                "again (messages already stored are skipped)",
                self.inbox.id,
                folder,
            )
        start = 0
        if row is None and not self.settings.read_existing_mail:
            # A first connection that should leave older mail alone.
            start = max((selected.uidnext or 1) - 1, 0)
        await db.execute(
            """INSERT INTO email_imap_cursor (inbox_id, mailbox, uidvalidity, last_uid)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (inbox_id, mailbox) DO UPDATE
               SET uidvalidity = $3, last_uid = $4, updated_at = now()""",
            self.inbox.id,
            folder,
            validity,
            start,
        )
        return start

    async def _advance(self, folder: str, uid: int) -> None:
        await db.execute(
            """UPDATE email_imap_cursor SET last_uid = $3, updated_at = now()
               WHERE inbox_id = $1 AND mailbox = $2 AND last_uid < $3""",
            self.inbox.id,
            folder,
            uid,
        )

    async def _fetch(self, client: aioimaplib.IMAP4, uid: int) -> bytes | None:
        response = await client.uid("fetch", str(uid), "(UID BODY.PEEK[])")
        if response.result != "OK":
            raise ImapError(f"Fetching message UID {uid} failed: {_answer(response)}.")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None  # expunged meanwhile

    async def _idle(self, client: aioimaplib.IMAP4, stop: asyncio.Event) -> None:
        """Wait in IDLE until new mail, the renewal time or ``stop``."""
        renew_seconds = self.settings.idle_renew_minutes * 60
        idle = await asyncio.wait_for(
            client.idle_start(timeout=renew_seconds), COMMAND_TIMEOUT_SECONDS
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + renew_seconds

        try:
            while not stop.is_set() and loop.time() < deadline:
                transport = client.protocol.transport
                if transport is None or transport.is_closing():
                    raise ConnectionError("the server closed the connection")
                try:
                    push = await _first(
                        client.wait_server_push(timeout=IDLE_SLICE_SECONDS), stop
                    )
                except TimeoutError:
                    continue

                if push is None or push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                lines = [bytes(line) for line in push if isinstance(line, bytes)]
                if any(line.startswith(b"BYE") for line in lines):
                    raise ConnectionError("the server said BYE")
                if any(line.endswith(b"EXISTS") for line in lines):
                    break
        finally:
            if client.has_pending_idle():
                client.idle_done()
        # A server that never confirms DONE is hung: the timeout drops it.
        await asyncio.wait_for(idle, COMMAND_TIMEOUT_SECONDS)


async def _uids_after(
    client: aioimaplib.IMAP4, folder: str, last_uid: int
) -> list[int]:
    # "UID n:*" always matches the newest message, even when n is past it.
    response = await client.uid_search(f"UID {last_uid + 1}:*", charset=None)
    if response.result != "OK":
        raise ImapError(f"Searching {folder!r} failed: {_answer(response)}.")

    # aioimaplib gives the untagged result lines first, the status line last.
    return sorted(
        {
            int(token)
            for line in response.lines[:-1]
            for token in bytes(line).removeprefix(b"SEARCH").split()
            if token.isdigit() and int(token) > last_uid
        }
    )


async def _first(awaitable, stop: asyncio.Event):
    """The awaitable's result, or None as soon as ``stop`` is set."""
    task = asyncio.ensure_future(awaitable)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {task, stopper}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await task
    return None


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
