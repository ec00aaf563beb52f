"""TLS for the IMAP and SMTP connections: certificates are always verified.

A server with a self-signed certificate is trusted by pasting that
certificate into the inbox's ``trusted_certificates`` setting; the host name
must still match it. Only for servers on this machine may verification be
turned off (``verify_certificates``), which the settings check enforces.
"""

from __future__ import annotations

import ssl

from patra_email.settings import EmailSettings


def client_context(settings: EmailSettings) -> ssl.SSLContext:
    """The TLS context for connections to the inbox's mail servers."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.trusted_certificates:
        context.load_verify_locations(cadata=settings.trusted_certificates)
    if not settings.verify_certificates:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def certificate_problem(error: BaseException, protocol: str) -> str | None:
    """A sentence for a certificate the server showed and we could not trust,
    or None when ``error`` (or what caused it) is about something else."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            why = current.verify_message or current.reason or "not trusted"
            return (
                f"The {protocol} server's certificate could not be verified "
                f"({why}). Check that the server name matches its certificate; "
                "if the server uses a self-signed certificate, paste that "
                "certificate into the inbox's trusted certificates setting."
            )
        current = current.__cause__ or current.__context__
    return None
