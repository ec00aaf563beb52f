"""Applying committed SQL migrations, the core's and each plugin's.

Migrations are ``NNNN_name.sql`` files applied in name order, each in its own
transaction, under an advisory lock so that several processes starting at once
apply each file exactly once. Plugins contribute folders through the
``register_migrations`` hook; every folder has its own namespace.
"""

from __future__ import annotations

import logging
from pathlib import Path

from patra import db

logger = logging.getLogger(__name__)

CORE_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 7_301_202_600  # an arbitrary constant shared by every Patra process


def migration_folders(plugin_manager=None) -> list[tuple[str, Path]]:
    folders = [("core", CORE_MIGRATIONS)]
    if plugin_manager is not None:
        for contributed in plugin_manager.hook.register_migrations():
            folders.extend(contributed or [])
    return folders


def pending_files(folder: Path, applied: set[str]) -> list[Path]:
    return [path for path in sorted(folder.glob("*.sql")) if path.name not in applied]


async def applied_migrations() -> set[tuple[str, str]]:
    exists = await db.fetchval("SELECT to_regclass('patra_migration') IS NOT NULL")
    if not exists:
        return set()
    rows = await db.fetch("SELECT namespace, name FROM patra_migration")
    return {(row["namespace"], row["name"]) for row in rows}


async def unapplied(plugin_manager=None) -> list[tuple[str, Path]]:
    """Migrations not yet applied; an empty list means the schema is current."""
    done = await applied_migrations()
    missing = []
    for namespace, folder in migration_folders(plugin_manager):
        names = {name for space, name in done if space == namespace}
        missing.extend((namespace, path) for path in pending_files(folder, names))
    return missing


async def migrate(plugin_manager=None, jobs_app=None) -> list[str]:
    """Apply every pending migration; return the names applied."""
    applied: list[str] = []
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await db.execute(
            """CREATE TABLE IF NOT EXISTS patra_migration (
                namespace text NOT NULL,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (namespace, name))"""
        )
        for namespace, path in await unapplied(plugin_manager):
            logger.info("Applying migration %s/%s", namespace, path.name)
            await db.execute(path.read_text(encoding="utf-8"))
            await db.execute(
                "INSERT INTO patra_migration (namespace, name) VALUES ($1, $2)",
                namespace,
                path.name,
            )
            applied.append(f"{namespace}/{path.name}")
        if jobs_app is not None:
            await _apply_job_schema(jobs_app)
    return applied


async def _apply_job_schema(jobs_app) -> None:
    """Create procrastinate's tables once, recorded like any migration."""
    version = "procrastinate-schema"
    done = await db.fetchval(
        "SELECT 1 FROM patra_migration WHERE namespace = 'jobs' AND name = $1",
        version,
    )
    if done:
        return
    logger.info("Creating the job queue schema")
    await db.execute(jobs_app.schema_manager.get_schema())
    await db.execute(
        "INSERT INTO patra_migration (namespace, name) VALUES ('jobs', $1)", version
    )
