"""Real mail servers for the tests: Dovecot (IMAP) and aiosmtpd (SMTP)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import imaplib
import ipaddress
import itertools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
class Certificate:
    """A self-signed server certificate for 127.0.0.1 and localhost."""

    pem: str
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificate(folder: Path, name: str = "mail.shop.test") -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = folder / "server.crt", folder / "server.key"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(pem, cert_file, key_file)


@pytest.fixture(scope="session")
def certificate():
    folder = Path(tempfile.mkdtemp(prefix="patra-tls-"))
    yield make_certificate(folder)
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Dovecot:
    base: Path
    port: int
    config: Path
    tls: bool = False
    starttls_port: int | None = None  # plain IMAP that must switch to TLS

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
        if self.tls:
            # The test's own client; the plugin's connections verify.
            unverified = ssl._create_unverified_context()
            client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=unverified)
        else:
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
            "imap_security": "ssl" if self.tls else "none",
            "imap_user": user,
            "imap_password": IMAP_PASSWORD,
            "smtp_host": "127.0.0.1",
            "smtp_port": 25,
            "smtp_security": "none",
            **extra,
        }


def _dovecot_config(
    base: Path, port: int, certificate=None, starttls_port: int = 0
) -> str:
    if certificate is None:
        ssl_lines = "ssl = no"
        ports = f"inet_listener imap {{\n    port = {port}\n  }}"
        ports += "\n  inet_listener imaps {\n    port = 0\n  }"
    else:
        ssl_lines = (
            f"ssl = required\nssl_cert = <{certificate.cert_file}\n"
            f"ssl_key = <{certificate.key_file}"
        )
        ports = f"inet_listener imap {{\n    port = {starttls_port}\n  }}"
        ports += f"\n  inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}"
    return f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl_lines}
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
  {ports}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def _start_dovecot(certificate=None):
    # Dovecot's mail processes run as dovenull, which cannot enter pytest's
    # private temporary folders; this folder is readable by every user.
    base = Path(tempfile.mkdtemp(prefix="patra-dovecot-"))
    base.chmod(0o755)
    for folder in ("run", "state", "mail", "home"):
        (base / folder).mkdir()
    shutil.chown(base / "mail", "dovenull", "dovenull")
    shutil.chown(base / "home", "dovenull", "dovenull")
    port = _free_port()
    starttls_port = _free_port() if certificate is not None else None
    config = base / "dovecot.conf"
    config.write_text(_dovecot_config(base, port, certificate, starttls_port or 0))
    server = Dovecot(
        base, port, config, tls=certificate is not None, starttls_port=starttls_port
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def dovecot():
    """A throwaway Dovecot with any user name and one shared password."""
    server = _start_dovecot()
    yield server
    server.stop()
    shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_tls(certificate):
    """Dovecot with ``ssl = required``: implicit TLS on ``port`` (993 style) and
    plain IMAP on ``starttls_port`` (143 style) that allows no login before
    STARTTLS."""
    server = _start_dovecot(certificate)
    yield server
    server.stop()
    shutil.rmtree(server.base, ignore_errors=True)


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    data: bytes
    encrypted: bool = False

    @property
    def message(self):
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class SmtpHandler:
    """Accepts mail, except recipients and data answers a test asks to refuse."""

    received: list[ReceivedMail] = field(default_factory=list)
    refuse_recipients: dict[str, str] = field(default_factory=dict)
    data_answer: str | None = None
    # Keep the mail but answer this once, as when the answer gets lost.
    answer_after_storing: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse_recipients:
            return self.refuse_recipients[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_answer:
            return self.data_answer
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.received.append(
            ReceivedMail(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.content,
                encrypted,
            )
        )
        if self.answer_after_storing:
            answer, self.answer_after_storing = self.answer_after_storing, None
            return answer
        return "250 Message accepted for delivery"

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.received


def _start_smtp(**tls) -> Controller:
    handler = SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), **tls)
    controller.start()
    controller.handler_object = handler
    return controller


@pytest.fixture
def smtp_server():
    """aiosmtpd on a free port; ``.handler_object`` holds what arrived."""
    controller = _start_smtp()
    yield controller
    controller.stop()


@pytest.fixture
def smtp_starttls_server(certificate):
    """aiosmtpd that takes mail only after STARTTLS (port 587 style)."""
    controller = _start_smtp(
        tls_context=certificate.server_context(), require_starttls=True
    )
    yield controller
    controller.stop()


@pytest.fixture
def smtp_implicit_tls_server(certificate):
    """aiosmtpd speaking TLS from the first byte (port 465 style)."""
    controller = _start_smtp(ssl_context=certificate.server_context())
    yield controller
    controller.stop()
