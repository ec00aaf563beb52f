"""``patra serve`` without a database URL: start time with the embedded
PostgreSQL (fresh data directory, then a restart), and the memory of both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from pathlib import Path

import asyncpg

from bench import ingest
from bench.harness import (
    MemorySampler,
    PatraServer,
    ServerSettings,
    postgres_pids,
    pss_mb,
    rss_mb,
)

SETTLE_SECONDS = 3.0


def _memory(server: PatraServer, pg_dir: Path) -> dict:
    postgres = postgres_pids(pg_dir)
    return {
        "serve_rss_mb": round(rss_mb(server.pids()), 1),
        "postgres_processes": len(postgres),
        "postgres_rss_mb": round(rss_mb(postgres), 1),
        "postgres_pss_mb": round(pss_mb(postgres), 1),
    }


async def _chat_inbox(pg_dir: Path) -> int:
    connection = await asyncpg.connect(
        host=str(pg_dir), user="postgres", database="postgres"
    )
    try:
        workspace_id = await connection.fetchval(
            "INSERT INTO workspace (name) VALUES ('Start bench') RETURNING id"
        )
        return await connection.fetchval(
            """INSERT INTO inbox (workspace_id, name, channel_type, connected)
               VALUES ($1, 'Chat', 'webchat', true) RETURNING id""",
            workspace_id,
        )
    finally:
        await connection.close()


async def embedded_start(
    settings: ServerSettings, load_messages: int, with_load: bool
) -> dict:
    """Cold start on a fresh data dir, memory idle and under load, warm restart."""
    data_dir = settings.workdir / "embedded-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    pg_dir = data_dir / "postgres"
    settings = ServerSettings(
        workdir=settings.workdir,
        secret_key=settings.secret_key,
        database_url=None,
        plugins=settings.plugins,
        extra_toml=settings.extra_toml,
        data_dir=data_dir,
    )
    result: dict = {}
    server = PatraServer(settings)
    await asyncio.to_thread(server.start)
    try:
        result["fresh_start_s"] = round(server.started_in, 2)
        await asyncio.sleep(SETTLE_SECONDS)
        result["idle"] = _memory(server, pg_dir)
        if with_load:
            inbox_id = await _chat_inbox(pg_dir)
            plan = ingest.make_plan(10, load_messages)
            postgres = MemorySampler(lambda: postgres_pids(pg_dir))
            serve = MemorySampler(server.pids)
            with postgres, serve:
                result["load"] = await ingest.http_ingest(
                    server.url,
                    inbox_id,
                    plan,
                    server.pids,
                    lambda: postgres_pids(pg_dir),
                )
            result["load"]["serve_rss_peak_mb"] = round(serve.peak, 1)
            result["load"]["postgres_rss_peak_mb"] = round(postgres.peak, 1)
            result["load"]["postgres_pss_after_mb"] = round(
                pss_mb(postgres_pids(pg_dir)), 1
            )
    finally:
        result["postgres_stopped_with_server"] = await _stop(server, pg_dir)

    restart = PatraServer(settings)
    try:
        await asyncio.to_thread(restart.start)
        result["restart_s"] = round(restart.started_in, 2)
    finally:
        await _stop(restart, pg_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


async def _stop(server: PatraServer, pg_dir: Path, timeout: float = 15.0) -> bool:
    """Stop the server as systemd would (SIGTERM); True when its embedded
    PostgreSQL stopped with it. Otherwise the postmaster is stopped here.
    """
    await asyncio.to_thread(server.stop, signal.SIGTERM)
    pid_file = pg_dir / "postmaster.pid"
    if await _gone(pid_file, timeout):
        return True
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
    await _gone(pid_file, timeout)
    return False


async def _gone(path: Path, timeout: float) -> bool:
    for _ in range(int(timeout / 0.1)):
        if not path.exists():
            return True
        await asyncio.sleep(0.1)
    return False
