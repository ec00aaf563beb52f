"""Durable jobs on procrastinate: delivery of replies and periodic upkeep.

The queue lives in PostgreSQL next to the data. Jobs run inside ``patra serve``
by default, or in ``patra worker`` processes when split for scale.
"""

from __future__ import annotations

import logging

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy

from patra import db, events, privacy
from patra.channels import DeliveryFailure
from patra.inbox import outbound

logger = logging.getLogger(__name__)


class _RetryableOnly(RetryStrategy):
    """Retry only failures a channel marked retryable, with exponential backoff."""

    def get_retry_decision(self, *, exception, job):
        if isinstance(exception, DeliveryFailure) and exception.retryable:
            return super().get_retry_decision(exception=exception, job=job)
        return None


def build_jobs_app(runtime) -> App:
    config = runtime.config
    connector = PsycopgConnector(
        conninfo=runtime.database_url,
        min_size=1,
        max_size=max(2, config.jobs.concurrency),
    )
    app = App(connector=connector)
    max_attempts = config.jobs.max_attempts

    @app.task(
        name=outbound.DELIVER_TASK,
        queue="outbound",
        pass_context=True,
        retry=_RetryableOnly(max_attempts=max_attempts, exponential_wait=2),
    )
    async def deliver_message(context: JobContext, message_id: int) -> str:
        return await outbound.deliver(message_id, context.job.attempts, max_attempts)

    @app.periodic(cron="* * * * *", periodic_id="sweep")
    @app.task(name="patra.sweep", queue="upkeep", queueing_lock="patra.sweep")
    async def sweep(timestamp: int) -> None:
        stuck = await outbound.resolve_stuck_sends()
        if stuck:
            logger.warning("Marked %s messages with unknown delivery outcome", stuck)
        await wake_snoozed()
        await redefer_orphaned_deliveries()
        await privacy.apply_retention(config.privacy.retention_days)

    runtime.plugins.hook.register_jobs(jobs_app=app)
    return app


async def wake_snoozed() -> int:
    """Reopen snoozed conversations whose time has come."""
    async with db.transaction():
        rows = await db.fetch(
            """UPDATE conversation SET status = 'open', snoozed_until = NULL,
                   last_activity_at = now()
               WHERE status = 'snoozed' AND snoozed_until <= now()
               RETURNING id, workspace_id, inbox_id"""
        )
        for row in rows:
            await events.publish(
                "conversation.updated",
                row["workspace_id"],
                inbox_id=row["inbox_id"],
                conversation_id=row["id"],
            )
    return len(rows)


async def redefer_orphaned_deliveries(older_than_minutes: int = 2) -> int:
    """Give a delivery job back to queued messages that have none.

    The job is deferred in the message's own transaction, so this only happens
    when a job was removed by hand (for example with procrastinate's tools).
    """
    async with db.transaction():
        rows = await db.fetch(
            f"""SELECT m.id FROM message m
                WHERE m.delivery_status = 'queued'
                  AND m.updated_at < now() - make_interval(mins => $1)
                  AND NOT EXISTS (
                      SELECT 1 FROM procrastinate_jobs j
                      WHERE j.task_name = '{outbound.DELIVER_TASK}'
                        AND j.status IN ('todo', 'doing')
                        AND j.args->>'message_id' = m.id::text)
                FOR UPDATE OF m SKIP LOCKED""",
            older_than_minutes,
        )
        for row in rows:
            await outbound.defer_delivery(row["id"])
    if rows:
        logger.warning("Re-queued delivery of %s messages without a job", len(rows))
    return len(rows)
