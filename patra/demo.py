"""``patra demo``: a workspace to play with on an embedded database.

Creates (once) an owner login, a web chat inbox with a few conversations, and
turns on ``/demo/site``, a page that embeds the chat widget, so one browser
tab can be the visitor and another the agent.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from patra import db, migrate
from patra.accounts import service
from patra.channels import InboundMessage
from patra.config import Config, generate_secret_key
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
    """Build the demo configuration and make sure its data exists."""
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(generate_secret_key())
        key_file.chmod(0o600)

    config = Config()
    config.server.data_dir = str(data_dir)
    config.server.port = args.port
    config.server.public_url = f"http://localhost:{args.port}"
    config.server.secret_key = key_file.read_text().strip()
    config.server.demo = True
    config.plugins.enabled = [
        plugin.name for plugin in installed_plugins() if not plugin.default
    ]
    config.source = "demo"
    runtime = build(config)
    asyncio.run(_seed(runtime))
    return config


def banner(config: Config) -> str:
    """What ``patra demo`` prints: where to go and how to log in."""
    return (
        f"\nPatra demo\n  inbox:  {config.public_url}/login\n"
        f"  login:  {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        f"  visitor page: {config.public_url}/demo/site\n"
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
