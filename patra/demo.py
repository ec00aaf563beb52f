"""``patra demo``: a workspace to play with on an embedded database.

Creates (once) an owner login, a web chat inbox with a few conversations, and
turns on ``/demo/site``, a page that embeds the chat widget, so one browser
tab can be the visitor and another the agent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
from pathlib import Path

from patra import db, migrate
from patra.accounts import service
from patra.channels import InboundMessage
from patra.config import Config, generate_secret_key, load_config
from patra.plugins import installed_plugins
from patra.runtime import build

logger = logging.getLogger(__name__)

DEMO_EMAIL = "demo@patra.localhost"
DEMO_PASSWORD = "patra-demo-password"
DEMO_CONVERSATIONS = [
    ("visitor-ana", "Ana", "Hi! Do you ship to Portugal?"),
    ("visitor-omar", "Omar", "مرحبا، هل يمكنني تغيير عنوان التوصيل؟"),
    ("visitor-li", "Li", "The discount code SPRING does not work at checkout."),
]


def prepare_demo(args: argparse.Namespace) -> Config:
    """Write the demo's patra.toml (once), check the port, seed the data."""
    from patra.cli import CommandError

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not _port_is_free(args.port):
        raise CommandError(
            f"Port {args.port} is already in use (another Patra demo?). Stop that "
            f"program or choose another port: patra demo --port {args.port + 1}"
        )
    config_file = data_dir / "patra.toml"
    if config_file.exists():
        secret_key = load_config(config_file).server.secret_key
    elif (data_dir / "secret_key").exists():  # demos made before patra.toml
        secret_key = (data_dir / "secret_key").read_text().strip()
    else:
        secret_key = generate_secret_key()
    enabled = [plugin.name for plugin in installed_plugins() if not plugin.default]
    config_file.write_text(
        DEMO_CONFIG.format(
            port=args.port,
            secret_key=secret_key,
            data_dir=json.dumps(str(data_dir)),
            enabled=json.dumps(enabled),
        ),
        encoding="utf-8",
    )
    config_file.chmod(0o600)  # it holds the secret key

    config = load_config(config_file)
    runtime = build(config)
    asyncio.run(_seed(runtime))
    return config


DEMO_CONFIG = """# Written by `patra demo`. Use: patra --config THIS_FILE COMMAND
[server]
host = "127.0.0.1"
port = {port}
public_url = "http://localhost:{port}"
secret_key = "{secret_key}"
data_dir = {data_dir}
demo = true

[database]
url = ""

[plugins]
enabled = {enabled}
"""


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def banner(config: Config) -> str:
    """What ``patra demo`` prints: where to go and how to log in."""
    return (
        f"\nPatra demo\n  inbox:  {config.public_url}/login\n"
        f"  login:  {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        f"  visitor page: {config.public_url}/demo/site\n"
        f"  commands: patra --config {config.source} tokens create "
        f"--email {DEMO_EMAIL}\n"
    )


async def _seed(runtime) -> None:
    from patra.inbox.inboxes import create_inbox
    from patra.inbox.ingest import ingest_message

    await db.open_pool()
    try:
        await migrate.migrate(runtime.plugins, runtime.jobs)
        if await service.user_count():
            return
        workspace_id = await service.ensure_workspace("Demo shop")
        await service.create_user(
            workspace_id, DEMO_EMAIL, "Demo Owner", DEMO_PASSWORD, "owner"
        )
        if "webchat" not in runtime.plugins.channel_types:
            logger.warning("The webchat plugin is not installed; no chat inbox created")
            return
        inbox_id = await create_inbox(
            workspace_id,
            "Website chat",
            "webchat",
            {"greeting": "Hi! Ask us anything.", "color": "#2563eb"},
        )
        for external_id, name, text in DEMO_CONVERSATIONS:
            await ingest_message(
                InboundMessage(
                    inbox_id=inbox_id,
                    contact_external_id=external_id,
                    external_id=f"demo-{external_id}",
                    text=text,
                    contact_name=name,
                )
            )
    finally:
        await db.close_pool()
