"""TLS against real servers: Dovecot with implicit TLS, aiosmtpd with STARTTLS
and implicit TLS, each with a self-signed certificate made by the fixture."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from corpus import raw_message
from patra import db
from patra.channels import RetryableFailure
from patra.inbox import outbound
from test_imap import INBOUND, running_receiver, wait_for_rows

from patra_email import imap
from patra_email.receive import file_email, inbox_identity
from patra_email.settings import SettingsError, read_settings

SMTP_SECURITY = {
    "smtp_starttls_server": "starttls",
    "smtp_implicit_tls_server": "ssl",
}


async def tls_inbox(workspace, make_inbox, dovecot_tls, smtp, security, **extra):
    user = dovecot_tls.new_user()
    settings = dovecot_tls.settings(
        user, smtp_port=smtp.port, smtp_security=security, **extra
    )
    inbox_id = await make_inbox("email", name="Support", **settings)
    return inbox_id, user


@pytest.mark.parametrize("smtp_fixture", sorted(SMTP_SECURITY))
async def test_mail_arrives_and_replies_leave_over_tls_with_a_trusted_certificate(
    workspace, make_inbox, dovecot_tls, certificate, smtp_fixture, request
):
    smtp = request.getfixturevalue(smtp_fixture)
    inbox_id, user = await tls_inbox(
        workspace,
        make_inbox,
        dovecot_tls,
        smtp,
        SMTP_SECURITY[smtp_fixture],
        trusted_certificates=certificate.pem,
    )
    channel = await outbound.channel_for_inbox(inbox_id)

    [imap_line, smtp_line] = await channel.test_connection()
    assert imap_line[1] is True, imap_line
    assert smtp_line[1] is True, smtp_line

    # Dovecot offers nothing but implicit TLS: mail arriving proves it.
    async with running_receiver(SimpleNamespace(inbox_id=inbox_id)):
        dovecot_tls.deliver(user, raw_message(message_id="<tls1@customer.test>"))
        [first] = await wait_for_rows(INBOUND)

    message_id = await outbound.create_agent_message(
        workspace_id=workspace.id,
        conversation_id=first["conversation_id"],
        user_id=workspace.agent.id,
        text="Sent over TLS.",
    )
    assert await outbound.deliver(message_id, 0, 3) == "sent"
    [sent] = await smtp.handler_object.wait_for(1)
    assert sent.encrypted
    assert sent.message["In-Reply-To"] == "<tls1@customer.test>"


async def test_imap_starttls_switches_to_tls_and_asks_capabilities_again(
    workspace, make_inbox, dovecot_tls, certificate, smtp_starttls_server
):
    inbox_id, user = await tls_inbox(
        workspace,
        make_inbox,
        dovecot_tls,
        smtp_starttls_server,
        "starttls",
        imap_security="starttls",
        imap_port=dovecot_tls.starttls_port,
        trusted_certificates=certificate.pem,
    )
    dovecot_tls.deliver(user, raw_message(message_id="<tls2@customer.test>"))

    async with running_receiver(SimpleNamespace(inbox_id=inbox_id)):
        [first] = await wait_for_rows(INBOUND)

    assert first["external_id"] == "tls2@customer.test"
    channel = await outbound.channel_for_inbox(inbox_id)
    client = await imap.connect(channel.read_settings())
    try:
        assert client.protocol.transport.get_extra_info("ssl_object") is not None
        assert "STARTTLS" not in client.protocol.capabilities  # asked again
    finally:
        await imap.close(client)


async def test_a_self_signed_certificate_is_refused_unless_trusted(
    workspace, make_inbox, dovecot_tls, smtp_starttls_server
):
    inbox_id, _ = await tls_inbox(
        workspace, make_inbox, dovecot_tls, smtp_starttls_server, "starttls"
    )
    channel = await outbound.channel_for_inbox(inbox_id)
    starttls = await outbound.channel_for_inbox(inbox_id)
    starttls.inbox.settings.update(
        imap_security="starttls", imap_port=dovecot_tls.starttls_port
    )

    [imap_line, smtp_line] = await channel.test_connection()
    [starttls_line, _] = await starttls.test_connection()

    checks = [(imap_line, "IMAP"), (starttls_line, "IMAP"), (smtp_line, "SMTP")]
    for line, protocol in checks:
        assert line[1] is False, line
        assert f"The {protocol} server's certificate could not be verified" in line[2]
        assert "self-signed certificate" in line[2]


async def test_a_reply_through_an_untrusted_server_is_held_with_the_reason(
    workspace, make_inbox, dovecot_tls, smtp_implicit_tls_server
):
    inbox_id, _ = await tls_inbox(
        workspace, make_inbox, dovecot_tls, smtp_implicit_tls_server, "ssl"
    )
    identity = await inbox_identity(inbox_id)
    first = await file_email(identity, raw_message(), "test")
    conversation_id = first.conversation_id
    message_id = await outbound.create_agent_message(
        workspace_id=workspace.id,
        conversation_id=conversation_id,
        user_id=workspace.agent.id,
        text="Will this arrive?",
    )

    with pytest.raises(RetryableFailure, match="certificate could not be verified"):
        await outbound.deliver(message_id, 0, 3)
    await asyncio.sleep(0.2)
    assert smtp_implicit_tls_server.handler_object.received == []
    shown = await db.fetchrow(
        "SELECT delivery_status, error FROM message WHERE id = $1", message_id
    )
    assert shown["delivery_status"] == "queued"
    assert "paste that certificate into the inbox's trusted" in shown["error"]


async def test_verification_can_be_skipped_only_for_servers_on_this_machine(
    dovecot_tls,
):
    local = read_settings(dovecot_tls.settings("shop1", verify_certificates=False))

    client = await imap.connect(local)  # no trusted certificate given
    await imap.close(client)

    with pytest.raises(SettingsError, match="only allowed for servers on this"):
        read_settings(
            dovecot_tls.settings(
                "shop1",
                smtp_host="smtp.example.com",
                smtp_security="starttls",
                verify_certificates=False,
            )
        )


async def test_starttls_on_a_server_without_it_says_to_choose_ssl(dovecot):
    settings = read_settings(dovecot.settings("shop1", imap_security="starttls"))

    with pytest.raises(imap.ImapError, match="does not offer STARTTLS.*ssl"):
        await imap.connect(settings)
