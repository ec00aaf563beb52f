"""The email channel type: one instance per email inbox."""

from __future__ import annotations

import asyncio

import aiosmtplib
from patra import db
from patra.channels import (
    Capabilities,
    ChannelType,
    Health,
    OutboundMessage,
    PermanentFailure,
    SendResult,
    SettingField,
)

from patra_email import imap
from patra_email.receive import inbox_identity
from patra_email.send import send_reply, smtp_connection
from patra_email.settings import EmailSettings, SettingsError, read_settings
from patra_email.tls import certificate_problem

SETTINGS = (
    SettingField("from_address", "From address", "email", required=True,
                 help="The address customers write to, e.g. support@example.com."),
    SettingField("from_name", "From name",
                 help="Shown as the sender of replies, e.g. Example Support."),
    SettingField("reply_to", "Reply-To address", "email",
                 help="Only when replies should go to another address."),
    SettingField("signature", "Signature", "textarea",
                 help="Added below every reply."),
    SettingField("imap_host", "IMAP server", required=True,
                 help="e.g. imap.example.com"),
    SettingField("imap_port", "IMAP port", "number", default=993),
    SettingField("imap_security", "IMAP security", default="ssl",
                 help="ssl (implicit TLS, port 993), starttls (port 143) or none "
                 "(this machine only)."),
    SettingField("imap_user", "IMAP user", required=True),
    SettingField("imap_password", "IMAP password", "password", required=True,
                 secret=True),
    SettingField("imap_folders", "Folders to watch", default="INBOX",
                 help="Comma-separated IMAP folder names."),
    SettingField("read_existing_mail", "Read mail already in the folders", "boolean",
                 default=True, help="When off, only mail arriving after the inbox "
                 "is connected is read."),
    SettingField("smtp_host", "SMTP server", required=True,
                 help="e.g. smtp.example.com"),
    SettingField("smtp_port", "SMTP port", "number", default=587),
    SettingField("smtp_security", "SMTP security", default="starttls",
                 help="starttls (port 587), ssl (port 465) or none (this machine "
                 "only)."),
    SettingField("smtp_user", "SMTP user"),
    SettingField("smtp_password", "SMTP password", "password", secret=True),
    SettingField("trusted_certificates", "Trusted certificates", "textarea",
                 help="Only for servers with a self-signed certificate: paste it "
                 "here in PEM form (-----BEGIN CERTIFICATE----- ...). Other "
                 "certificates must be signed by a known authority."),
    SettingField("verify_certificates", "Verify certificates", "boolean",
                 default=True, help="Turning this off is only allowed for servers "
                 "on this machine."),
    SettingField("poll_interval_seconds", "Polling interval (seconds)", "number",
                 help="Used when the server offers no IDLE or several folders are "
                 "watched. Defaults to [plugins.email] poll_interval_seconds."),
)  # fmt: skip


class EmailChannel(ChannelType):
    name = "email"
    label = "Email"
    settings = SETTINGS
    capabilities = Capabilities(media=True, threads=True)
    has_receiver = True

    def read_settings(self) -> EmailSettings:
        return read_settings(self.inbox.settings, self.plugin_settings)

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            settings = self.read_settings()
        except SettingsError as error:
            raise PermanentFailure(
                f"The inbox settings are incomplete: {error}", code="settings"
            ) from None
        return await send_reply(settings, self.inbox.id, message)

    async def run_receiver(self, stop: asyncio.Event) -> None:
        settings = self.read_settings()
        inbox = await inbox_identity(self.inbox.id, self.inbox.settings)
        await imap.ImapReceiver(settings, inbox).run(stop)

    async def health(self) -> Health:
        try:
            self.read_settings()
        except SettingsError as error:
            return Health(ok=False, detail=str(error))

        status = await db.fetchrow(
            "SELECT ok, detail FROM email_receiver_status WHERE inbox_id = $1",
            self.inbox.id,
        )
        if status is None:
            return Health(ok=True, detail="The receiver has not connected yet.")
        return Health(ok=status["ok"], detail=status["detail"])

    async def test_connection(self) -> list[tuple[str, bool, str]]:
        try:
            settings = self.read_settings()
        except SettingsError as error:
            return [("settings", False, str(error))]
        return [await _check_imap(settings), await _check_smtp(settings)]


async def _check_imap(settings: EmailSettings) -> tuple[str, bool, str]:
    server = f"IMAP {settings.imap_host}:{settings.imap_port}"
    try:
        client = await imap.connect(settings)
    except imap.CONNECTION_ERRORS as error:
        return server, False, _failure_sentence(error, "IMAP")
    try:
        found = []
        for folder in settings.imap_folders:
            selected = await imap.select(client, folder)
            found.append(f"{folder} ({selected.count} messages)")
        idle = "offers IDLE" if client.has_capability("IDLE") else "no IDLE, polling"
        return server, True, f"Logged in; {', '.join(found)}; {idle}."
    except imap.CONNECTION_ERRORS as error:
        return server, False, _failure_sentence(error, "IMAP")
    finally:
        await imap.close(client)


async def _check_smtp(settings: EmailSettings) -> tuple[str, bool, str]:
    server = f"SMTP {settings.smtp_host}:{settings.smtp_port}"
    if not settings.smtp_host:
        return server, False, "No SMTP server is set up; enter one to send replies."
    client = aiosmtplib.SMTP(**smtp_connection(settings))
    try:
        greeting = await client.connect()
        answer = f"{greeting.code} {greeting.message}".strip()
        if settings.smtp_user:
            answer += "; logged in"
        await client.quit()
        return server, True, answer
    except aiosmtplib.SMTPResponseException as error:
        return (
            server,
            False,
            (
                f"The server answered {error.code} {error.message}. Check the SMTP "
                "user, password and security setting."
            ),
        )
    except (aiosmtplib.SMTPException, OSError) as error:
        return server, False, _failure_sentence(error, "SMTP")
    finally:
        client.close()


def _failure_sentence(error: Exception, protocol: str) -> str:
    if isinstance(error, imap.ImapError):
        return str(error)
    if problem := certificate_problem(error, protocol):
        return problem
    return (
        f"Could not talk to the {protocol} server ({type(error).__name__}: "
        f"{error}). Check the host, port and security setting."
    )
