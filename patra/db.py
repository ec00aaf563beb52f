"""The one store: PostgreSQL, external or embedded.

Tables are declared against :data:`DB`, a Piccolo engine whose connection
settings are filled in by :func:`configure` at start-up, so modules can import
tables before the configuration is known.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from piccolo.engine.postgres import PostgresEngine

from patra.config import Config

logger = logging.getLogger(__name__)

class _ConfiguredLaterEngine(PostgresEngine):
    """Piccolo's engine without its connection at construction time.

    Piccolo checks the server version when an engine is built, which would
    connect to whatever libpq finds before Patra has read its configuration.
    """

    async def check_version(self) -> None:
        return None

    async def prep_database(self) -> None:
        return None


DB = _ConfiguredLaterEngine(config={}, log_queries=False)

_embedded_servers: dict[Path, object] = {}
_after_commit: ContextVar[list | None] = ContextVar("patra_after_commit", default=None)


def database_url(config: Config) -> str:
    """The configured URL, or the URL of an embedded server in the data dir."""
    if config.database.url:
        return config.database.url
    return start_embedded(config.data_dir / "postgres")


def start_embedded(directory: Path) -> str:
    """Start (or reuse) an embedded PostgreSQL in ``directory``; return its URL.

    The server stops when the last process using it exits.
    """
    directory = directory.resolve()
    if directory not in _embedded_servers:
        import pgserver

        directory.mkdir(parents=True, exist_ok=True)
        logger.info("Starting embedded PostgreSQL in %s", directory)
        _embedded_servers[directory] = pgserver.get_server(
            directory, cleanup_mode="stop"
        )
    server = _embedded_servers[directory]
    url = server.get_uri()
    port = server.get_postmaster_info().port
    # Name the socket's port: libpq and asyncpg would otherwise take PGPORT.
    return f"{url}&port={port}" if port and "?host=" in url else url


def stop_embedded(directory: Path) -> None:
    """Stop an embedded server this process started (tests; exit does it too)."""
    server = _embedded_servers.pop(directory.resolve(), None)
    if server is not None:
        server.cleanup()


def asyncpg_params(url: str) -> dict:
    """Connection keywords for asyncpg, which dislikes unix-socket URLs."""
    parsed = urlparse(url)
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    params = {
        "user": parsed.username or query.get("user") or "postgres",
        "password": parsed.password or query.get("password") or None,
        "database": (parsed.path or "/").lstrip("/") or "postgres",
        "host": query.get("host") or parsed.hostname or "localhost",
    }
    if parsed.port or query.get("port"):
        params["port"] = parsed.port or int(query["port"])
    return params


def configure(url: str, pool_size: int = 10) -> None:
    """Point :data:`DB` at ``url``. Call before opening the pool."""
    DB.config = {
        **asyncpg_params(url),
        "max_size": pool_size,
        "min_size": 1,
        "init": init_connection,
        "reset": keep_session,
    }


async def keep_session(connection) -> None:
    """Skip asyncpg's reset query when a connection goes back to the pool.

    asyncpg still rolls back an open transaction first; Patra leaves no other
    session state (LISTEN, SET, advisory locks) on pool connections, so the
    default reset would only cost one extra round trip per query.
    """


async def init_connection(connection) -> None:
    """Decode json and jsonb columns to Python values on every connection."""
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def open_pool() -> bool:
    """Open the connection pool; False when it was already open."""
    if DB.pool is not None:
        return False
    await DB.start_connection_pool()
    return True


async def close_pool() -> None:
    if DB.pool is not None:
        await DB.close_connection_pool()
        DB.pool = None


@asynccontextmanager
async def transaction():
    """A Piccolo transaction; :func:`fetch` and table queries inside it join it.

    Nested blocks join the outermost one. Callbacks registered with
    :func:`after_commit` run once the outermost block has committed.
    """
    if _after_commit.get() is not None:
        async with DB.transaction() as current:
            yield current
        return

    pending: list = []
    token = _after_commit.set(pending)
    try:
        async with DB.transaction() as current:
            yield current
    finally:
        _after_commit.reset(token)
    for callback in pending:
        await callback()


async def after_commit(callback) -> None:
    """Run ``callback()`` (async) after the current transaction commits, or now.

    Plugin hooks announce changes this way, so no plugin hears of a change that
    is later rolled back.
    """
    pending = _after_commit.get()
    if pending is None:
        await callback()
    else:
        pending.append(callback)


@asynccontextmanager
async def _connection():
    current = DB.current_transaction.get()
    if current is not None:
        yield current.connection
    elif DB.pool is not None:
        async with DB.pool.acquire() as connection:
            yield connection
    else:
        connection = await DB.get_new_connection()
        await init_connection(connection)
        try:
            yield connection
        finally:
            await connection.close()


async def fetch(sql: str, *args) -> list[dict]:
    """Rows of ``sql`` (``$n`` placeholders) as dicts, in the current transaction."""
    async with _connection() as connection:
        return [dict(row) for row in await connection.fetch(sql, *args)]


async def fetchrow(sql: str, *args) -> dict | None:
    async with _connection() as connection:
        row = await connection.fetchrow(sql, *args)
    return dict(row) if row is not None else None


async def fetchval(sql: str, *args):
    async with _connection() as connection:
        return await connection.fetchval(sql, *args)


async def execute(sql: str, *args) -> str:
    async with _connection() as connection:
        return await connection.execute(sql, *args)
