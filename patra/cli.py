"""The ``patra`` command line."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import signal
import sys
from pathlib import Path

from patra import __version__
from patra.config import Config, ConfigError, check_secret_key, load_config
from patra.plugins import PluginError

logger = logging.getLogger("patra.cli")


class CommandError(Exception):
    """A command could not do what was asked; the message says what to do."""


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR)
    for noisy in ("procrastinate", "httpx", "aioimaplib", "mail.log", "pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))


def config_path(args: argparse.Namespace) -> str | None:
    if getattr(args, "config", None):
        return args.config
    if os.environ.get("PATRA_CONFIG"):
        return os.environ["PATRA_CONFIG"]
    return "patra.toml" if Path("patra.toml").exists() else None


def read_config(args: argparse.Namespace) -> Config:
    return load_config(config_path(args))


def run(coroutine_function, *args):
    """Run a command body that needs the database, with the pool open."""
    from patra import db

    async def body():
        await db.open_pool()
        try:
            return await coroutine_function(*args)
        finally:
            await db.close_pool()

    return asyncio.run(body())


# --- commands --------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    from patra.plugins import load_plugins

    config = load_config(args.file)
    check_secret_key(config)
    load_plugins(config)
    print(f"{args.file}: the configuration is valid.")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from patra.plugins import installed_plugins

    config = read_config(args)
    table = Table("name", "package", "version", "enabled")
    for plugin in installed_plugins(config):
        state = "default" if plugin.default else ("yes" if plugin.enabled else "no")
        table.add_row(plugin.name, plugin.distribution, plugin.version, state)
    Console().print(table)
    return 0


def _runtime(args: argparse.Namespace, require_key: bool = False):
    from patra.runtime import build

    config = read_config(args)
    if require_key:
        check_secret_key(config)
    elif not config.server.secret_key:
        config.server.secret_key = "command-line-without-secret-key-configured"
    return build(config)


def cmd_migrate(args: argparse.Namespace) -> int:
    from patra import migrate

    runtime = _runtime(args)
    applied = run(migrate.migrate, runtime.plugins, runtime.jobs)
    print("\n".join(applied) if applied else "The database is up to date.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    config = read_config(args)
    if args.host:
        config.server.host = args.host
    if args.port:
        config.server.port = args.port
    check_secret_key(config)
    run_jobs = config.jobs.run_in_server and not args.no_jobs
    return serve(config, config_path(args), workers=args.workers, run_jobs=run_jobs)


def serve(
    config: Config, path: str | None, workers: int = 1, run_jobs: bool = True
) -> int:
    import uvicorn

    from patra.runtime import build
    from patra.web.app import create_app

    common = dict(
        host=config.server.host,
        port=config.server.port,
        log_level=config.logging.level.lower(),
        timeout_graceful_shutdown=10,
        proxy_headers=bool(config.server.trusted_proxies),
        forwarded_allow_ips=config.server.trusted_proxies or None,
        access_log=False,
    )
    if workers > 1:
        if path:
            os.environ["PATRA_CONFIG"] = str(Path(path).resolve())
        os.environ["PATRA_HOST"] = config.server.host
        os.environ["PATRA_PORT"] = str(config.server.port)
        if not run_jobs:
            os.environ["PATRA_NO_JOBS"] = "1"
        _announce(config)
        uvicorn.run("patra.asgi:create", factory=True, workers=workers, **common)
        return 0
    app = create_app(build(config), run_background=run_jobs)
    _announce(config)
    # uvicorn re-raises SIGTERM once it has shut down; leaving through SystemExit
    # instead lets exit handlers run, and one of them stops embedded PostgreSQL.
    signal.signal(signal.SIGTERM, _exit_quietly)
    uvicorn.run(app, **common)
    return 0


def _exit_quietly(signum, frame) -> None:
    raise SystemExit(0)


def _announce(config: Config) -> None:
    print(
        f"Patra {__version__} listening on {config.server.host}:{config.server.port}"
        f" (public address {config.public_url})",
        flush=True,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from patra import db, migrate
    from patra.receivers import ReceiverSupervisor

    runtime = _runtime(args, require_key=True)

    async def work():
        await db.open_pool()
        await migrate.migrate(runtime.plugins, runtime.jobs)
        receivers = ReceiverSupervisor()
        receivers.start()
        async with runtime.jobs.open_async():
            try:
                await runtime.jobs.run_worker_async(
                    concurrency=runtime.config.jobs.concurrency,
                    shutdown_graceful_timeout=25,
                    name="patra-worker",
                )
            finally:
                await receivers.stop()
                await db.close_pool()

    asyncio.run(work())
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from patra.accounts import service

    runtime = _runtime(args)
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise CommandError(
            "Give the password on standard input, e.g. "
            "`echo 'long password' | patra users create ...`."
        )

    async def create():
        from patra import migrate

        await migrate.migrate(runtime.plugins, runtime.jobs)
        workspace_id = await service.ensure_workspace()
        return await service.create_user(
            workspace_id, args.email, args.name, password, args.role
        )

    try:
        user_id = run(create)
    except service.AccountError as error:
        raise CommandError(str(error)) from None
    print(f"Created {args.role} {args.email} (user {user_id}).")
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    from patra.accounts import service

    _runtime(args)

    async def create():
        user_id = await service.user_id_by_email(args.email)
        if user_id is None:
            raise CommandError(f"No user has the email {args.email}; create one first.")
        return await service.create_api_token(user_id, args.name or "")

    print(run(create))
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    from patra.accounts import service

    _runtime(args)

    async def revoke():
        user_id = await service.user_id_by_email(args.email)
        if user_id is None:
            raise CommandError(
                f"No user has the email {args.email}; check the address."
            )
        return await service.revoke_api_tokens(user_id, args.name)

    count = run(revoke)
    which = f" named {args.name!r}" if args.name is not None else ""
    print(f"Revoked {count} API token(s){which} of {args.email}.")
    return 0


def cmd_contacts_export(args: argparse.Namespace) -> int:
    import json

    from patra import privacy
    from patra.accounts import service

    _runtime(args)

    async def export():
        workspace_id = await service.ensure_workspace()
        return await privacy.export_contact(workspace_id, args.contact_id, None)

    try:
        document = run(export)
    except privacy.ContactNotFound as error:
        raise CommandError(str(error)) from None
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"Wrote the export of contact {args.contact_id} to {args.output}.")
    else:
        print(text)
    return 0


def cmd_contacts_erase(args: argparse.Namespace) -> int:
    from patra import privacy
    from patra.accounts import service

    if not args.yes:
        raise CommandError(
            "Erasure cannot be undone; add --yes to erase contact "
            f"{args.contact_id} with all their conversations and files."
        )
    _runtime(args)

    async def erase():
        workspace_id = await service.ensure_workspace()
        return await privacy.erase_contact(workspace_id, args.contact_id, None)

    try:
        erased = run(erase)
    except privacy.ContactNotFound as error:
        raise CommandError(str(error)) from None
    print(f"Erased contact {args.contact_id} and {erased} messages.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from patra.demo import banner, prepare_demo

    config = prepare_demo(args)
    print(banner(config), flush=True)
    return serve(config, None)


# --- parser ----------------------------------------------------------------


def build_parser(plugin_manager=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patra", description="Patra: a self-hosted unified inbox and helpdesk."
    )
    parser.add_argument("--version", action="version", version=f"patra {__version__}")
    parser.add_argument("--config", "-c", help="patra.toml to use (or PATRA_CONFIG)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve_parser = commands.add_parser(
        "serve", help="run the web server, jobs and receivers"
    )
    serve_parser.add_argument("--host")
    serve_parser.add_argument("--port", type=int)
    serve_parser.add_argument("--workers", type=int, default=1, help="web processes")
    serve_parser.add_argument(
        "--no-jobs", action="store_true", help="leave jobs to `patra worker`"
    )
    serve_parser.set_defaults(func=cmd_serve)

    commands.add_parser("worker", help="run jobs and receivers only").set_defaults(
        func=cmd_worker
    )
    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        func=cmd_migrate
    )
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)
    commands.add_parser("plugins", help="list installed plugins").set_defaults(
        func=cmd_plugins
    )

    demo = commands.add_parser(
        "demo", help="start with demo data on an embedded database"
    )
    demo.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default 8000)"
    )
    demo.add_argument(
        "--data-dir",
        default="data/demo",
        help="where the demo keeps its database, files and patra.toml "
        "(default data/demo)",
    )
    demo.set_defaults(func=cmd_demo)

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", metavar="ACTION", required=True
    )
    create = users.add_parser("create", help="create a user (password on stdin)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=["owner", "admin", "agent"], default="agent")
    create.set_defaults(func=cmd_users_create)

    tokens = commands.add_parser("tokens", help="manage API tokens").add_subparsers(
        dest="tokens_command", metavar="ACTION", required=True
    )
    token = tokens.add_parser("create", help="print a new API token for a user")
    token.add_argument("--email", required=True)
    token.add_argument("--name", default="")
    token.set_defaults(func=cmd_tokens_create)
    revoke = tokens.add_parser("revoke", help="revoke a user's API tokens")
    revoke.add_argument("--email", required=True)
    revoke.add_argument("--name", help="only the tokens created with this --name")
    revoke.set_defaults(func=cmd_tokens_revoke)

    contacts = commands.add_parser("contacts", help="export or erase a contact's data")
    contact_actions = contacts.add_subparsers(
        dest="contacts_command", metavar="ACTION", required=True
    )
    export = contact_actions.add_parser("export", help="print a contact's data as JSON")
    export.add_argument("contact_id", type=int)
    export.add_argument("--output", "-o", help="write to this file instead")
    export.set_defaults(func=cmd_contacts_export)
    erase = contact_actions.add_parser(
        "erase", help="delete a contact with their conversations and files"
    )
    erase.add_argument("contact_id", type=int)
    erase.add_argument("--yes", action="store_true", help="confirm the erasure")
    erase.set_defaults(func=cmd_contacts_erase)

    if plugin_manager is not None:
        plugin_manager.hook.register_commands(subparsers=commands)
    return parser


def _plugin_manager_for_commands(argv: list[str]):
    """Load plugins early so they can add commands; quietly skip on bad config."""
    from patra.plugins import load_plugins

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", "-c")
    known, _ = pre.parse_known_args(argv)
    try:
        return load_plugins(load_config(config_path(known)))
    except (ConfigError, PluginError):
        return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_plugin_manager_for_commands(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        config = read_config(args) if args.command != "check-config" else None
        configure_logging(config.logging.level if config else "INFO")
        if not _is_plugin_command(args):
            return int(args.func(args) or 0)
        runtime = _runtime(args)
        result = args.func(args, runtime.config)
        if inspect.isawaitable(result):
            result = run(_await_migrated, runtime, result)
        return int(result or 0)
    except (ConfigError, PluginError, CommandError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _await_migrated(runtime, awaitable):
    from patra import migrate

    await migrate.migrate(runtime.plugins, runtime.jobs)
    return await awaitable


def _is_plugin_command(args: argparse.Namespace) -> bool:
    """Plugin commands take ``(args, config)`` and run with the database open."""
    return len(inspect.signature(args.func).parameters) == 2


if __name__ == "__main__":
    # `python -m patra.cli` runs this file as __main__, apart from the
    # patra.cli that plugins import; run that one, so that a plugin command's
    # CommandError is the class main() catches.
    from patra.cli import main as imported_main

    sys.exit(imported_main())
