"""Real mail servers for the tests: Dovecot (IMAP) and aiosmtpd (SMTP)."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
IMAP_PASSWORD = "imap-test-password"
_users = itertools.count(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), 1),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"Dovecot did not listen on port {port} within {timeout} s")


@dataclass
class Dovecot:
    base: Path
    port: int
    config: Path

    def start(self) -> None:
        subprocess.run([DOVECOT, "-c", str(self.config)], check=True)
        _wait_for_port(self.port)

    def stop(self) -> None:
        pid_file = self.base / "run" / "master.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        deadline = time.monotonic() + 15
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def new_user(self) -> str:
        """A fresh mailbox owner, so every test starts with empty folders."""
        return f"shop{next(_users)}"

    @contextlib.contextmanager
    def imap(self, user: str):
        """A logged-in imaplib session, as another mail client would hold it."""
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(user, IMAP_PASSWORD)
        try:
            yield client
        finally:
            client.logout()

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> int:
        """APPEND a message as a mail server would deliver it; return its UID."""
        with self.imap(user) as client:
            status, data = client.append(folder, None, None, raw)
        assert status == "OK", data
        return int(data[0].split(b"APPENDUID ")[1].split()[1].rstrip(b"]"))

    def flags(self, user: str, folder: str = "INBOX") -> list[bytes]:
        with self.imap(user) as client:
            client.select(folder)
            _, data = client.fetch("1:*", "(FLAGS)")
        return [line for line in data if line]

    def settings(self, user: str, **extra) -> dict:
        return {
            "from_address": "support@shop.test",
            "from_name": "Shop Support",
            "imap_host": "127.0.0.1",
            "imap_port": self.port,
            "imap_security": "none",
            "imap_user": user,
            "imap_password": IMAP_PASSWORD,
            "smtp_host": "127.0.0.1",
            "smtp_port": 25,
            "smtp_security": "none",
            **extra,
        }


def _dovecot_config(base: Path, port: int) -> str:
    return f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{base}/mail/%u
passdb {{
  driver = static
  args = password={IMAP_PASSWORD}
}}
userdb {{
  driver = static
  args = uid=dovenull gid=dovenull home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


@pytest.fixture(scope="session")
def dovecot():
    """A throwaway Dovecot with any user name and one shared password."""
    # Dovecot's mail processes run as dovenull, which cannot enter pytest's
    # private temporary folders; this folder is readable by every user.
    base = Path(tempfile.mkdtemp(prefix="patra-dovecot-"))
    base.chmod(0o755)
    for folder in ("run", "state", "mail", "home"):
        (base / folder).mkdir()
    shutil.chown(base / "mail", "dovenull", "dovenull")
    shutil.chown(base / "home", "dovenull", "dovenull")
    port = _free_port()
    config = base / "dovecot.conf"
    config.write_text(_dovecot_config(base, port))
    server = Dovecot(base, port, config)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self):
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class SmtpHandler:
    """Accepts mail, except recipients and data answers a test asks to refuse."""

    received: list[ReceivedMail] = field(default_factory=list)
    refuse_recipients: dict[str, str] = field(default_factory=dict)
    data_answer: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse_recipients:
            return self.refuse_recipients[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_answer:
            return self.data_answer
        self.received.append(
            ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 Message accepted for delivery"

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.received


@pytest.fixture
def smtp_server():
    """aiosmtpd on a free port; ``.handler`` holds what arrived."""
    handler = SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    controller.handler_object = handler
    yield controller
    controller.stop()
