"""Long-lived receivers (IMAP IDLE, long polling): at most one per inbox.

Every process runs a supervisor that scans the connected inboxes whose channel
has a receiver. For each it takes a PostgreSQL advisory lock on a connection
of its own; whoever holds the lock runs the receiver, the others wait and try
again, so a receiver moves to another process when its holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from patra import db, runtime
from patra.inbox.outbound import channel_for_inbox

logger = logging.getLogger(__name__)

_LOCK_SPACE = 7_301  # first half of the two-key advisory lock: "receivers"
SCAN_SECONDS = 30.0
RESTART_DELAY_SECONDS = (1, 2, 5, 10, 30, 60)


class ReceiverSupervisor:
    def __init__(self) -> None:
        self._tasks: dict[int, asyncio.Task] = {}
        self._stop = asyncio.Event()
        self._scanner: asyncio.Task | None = None

    def start(self) -> None:
        self._scanner = asyncio.create_task(self._scan_forever(), name="receivers")

    async def stop(self) -> None:
        self._stop.set()
        tasks = [t for t in [self._scanner, *self._tasks.values()] if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _scan_forever(self) -> None:
        while not self._stop.is_set():
            try:
                await self._scan()
            except (OSError, asyncpg.PostgresError):
                logger.exception("Could not list inboxes for receivers")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), SCAN_SECONDS)

    async def _scan(self) -> None:
        plugins = runtime.current().plugins
        with_receiver = [
            name
            for name, channel in plugins.channel_types.items()
            if channel.has_receiver
        ]
        rows = await db.fetch(
            "SELECT id FROM inbox WHERE connected AND channel_type = ANY($1::text[])",
            with_receiver,
        )
        wanted = {row["id"] for row in rows}
        for inbox_id in wanted - set(self._tasks):
            self._tasks[inbox_id] = asyncio.create_task(
                self._hold_and_run(inbox_id), name=f"receiver-{inbox_id}"
            )
        for inbox_id in set(self._tasks) - wanted:
            self._tasks.pop(inbox_id).cancel()

    async def _hold_and_run(self, inbox_id: int) -> None:
        failures = 0
        while not self._stop.is_set():
            connection = await db.DB.get_new_connection()
            try:
                held = await connection.fetchval(
                    "SELECT pg_try_advisory_lock($1, $2)", _LOCK_SPACE, inbox_id
                )
                if held:
                    logger.info("Receiver for inbox %s started", inbox_id)
                    channel = await channel_for_inbox(inbox_id)
                    await channel.run_receiver(self._stop)
                    failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a receiver must restart, not die
                failures += 1
                logger.exception(
                    "Receiver for inbox %s stopped with an error", inbox_id
                )
            finally:
                await connection.close()
            delay = RESTART_DELAY_SECONDS[min(failures, len(RESTART_DELAY_SECONDS) - 1)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stop.wait(), delay if failures else SCAN_SECONDS
                )
