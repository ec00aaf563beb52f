"""The bench workspace and, for the inbox-at-scale benchmark, years of history
written with COPY.

Rows are written as Patra's own code would leave them (inbound messages with
an external id, replies with a delivery status, notes and activity lines, one
open conversation per contact and inbox), so the planner sees realistic data.
Secondary indexes of the big tables are dropped during the load and built
again afterwards, then everything is ANALYZEd.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.textgen import TextGenerator
from patra import db
from patra.accounts import service

BENCH_PASSWORD = "bench password for agents"
AGENT_COUNT = 10
BIG_CONVERSATION_MESSAGES = 500
BIG_CONVERSATIONS = 3
HISTORY_DAYS = 3 * 365
LOADED_TABLES = ("contact", "contact_identity", "conversation", "message")


@dataclass
class BenchWorkspace:
    id: int
    owner_id: int
    agent_ids: list[int]
    agent_email: str
    history_inbox_ids: list[int]
    webchat_inbox_id: int
    email_inbox_id: int
    email_inbox_name: str = "Bench mail"
    api_token: str = ""
    big_conversation_ids: list[int] = field(default_factory=list)


async def _inbox(
    workspace_id: int, name: str, channel_type: str, settings: dict
) -> int:
    return await db.fetchval(
        """INSERT INTO inbox (workspace_id, name, channel_type, settings, connected)
           VALUES ($1, $2, $3, $4, true) RETURNING id""",
        workspace_id,
        name,
        channel_type,
        settings,
    )


async def create_workspace() -> BenchWorkspace:
    """An owner, ten agents and the inboxes the benchmarks write to."""
    workspace_id = await service.ensure_workspace("Bench shop")
    owner_id = await service.create_user(
        workspace_id, "owner@bench.example", "Bench Owner", BENCH_PASSWORD, "owner"
    )
    agent_ids = [
        await service.create_user(
            workspace_id,
            f"agent{number}@bench.example",
            f"Agent {number}",
            BENCH_PASSWORD,
            "agent",
        )
        for number in range(AGENT_COUNT)
    ]
    history = [
        await _inbox(workspace_id, "Shop chat", "webchat", {}),
        await _inbox(workspace_id, "Support mail", "email", {}),
        await _inbox(workspace_id, "Sales chat", "webchat", {}),
        await _inbox(workspace_id, "Billing mail", "email", {}),
    ]
    webchat = await _inbox(workspace_id, "Bench chat", "webchat", {})
    mail = await _inbox(
        workspace_id,
        "Bench mail",
        "email",
        {"from_address": "support@bench.example"},
    )
    for inbox_id in [*history, webchat, mail]:
        for agent_id in agent_ids:
            await db.execute(
                "INSERT INTO inbox_member (inbox_id, user_id) VALUES ($1, $2)",
                inbox_id,
                agent_id,
            )
    workspace = BenchWorkspace(
        id=workspace_id,
        owner_id=owner_id,
        agent_ids=agent_ids,
        agent_email="agent0@bench.example",
        history_inbox_ids=history,
        webchat_inbox_id=webchat,
        email_inbox_id=mail,
    )
    workspace.api_token = await service.create_api_token(agent_ids[0], "bench")
    return workspace


# --- the history ------------------------------------------------------------------


def _message_counts(conversations: int, messages: int, rng: random.Random) -> list[int]:
    """Messages per conversation: mostly short, a long tail, summing exactly."""
    big = BIG_CONVERSATIONS * BIG_CONVERSATION_MESSAGES
    rest = messages - big
    average = rest / (conversations - BIG_CONVERSATIONS)
    counts = [
        1 + min(int(rng.expovariate(1 / max(average - 1, 0.1))), 120)
        for _ in range(conversations - BIG_CONVERSATIONS)
    ]
    difference = rest - sum(counts)
    while difference:
        index = rng.randrange(len(counts))
        step = 1 if difference > 0 else -1
        if counts[index] + step >= 1:
            counts[index] += step
            difference -= step
    # The long conversations sit at the start: open for a long time, so their
    # messages are spread over the whole table as in real life.
    return [BIG_CONVERSATION_MESSAGES] * BIG_CONVERSATIONS + counts


def _status(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.12:
        return "open"
    if roll < 0.16:
        return "pending"
    if roll < 0.19:
        return "snoozed"
    return "resolved"


async def _next_ids(connection) -> dict[str, int]:
    ids = {}
    for table in LOADED_TABLES:
        ids[table] = 1 + await connection.fetchval(
            f"SELECT coalesce(max(id), 0) FROM {table}"
        )
    return ids


async def _set_sequences(connection) -> None:
    for table in LOADED_TABLES:
        await connection.execute(
            f"""SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                   (SELECT coalesce(max(id), 1) FROM {table}))"""
        )


async def _drop_secondary_indexes(connection) -> list[str]:
    """Drop indexes not backing a constraint; return their definitions."""
    rows = await connection.fetch(
        """SELECT i.indexrelid::regclass::text AS name,
                  pg_get_indexdef(i.indexrelid) AS definition
           FROM pg_index i
           WHERE i.indrelid = ANY($1::regclass[])
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                             WHERE c.conindid = i.indexrelid)""",
        list(LOADED_TABLES),
    )
    for row in rows:
        await connection.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


async def _build_indexes(url: str, definitions: list[str]) -> None:
    """Build the indexes again on two connections (the GIN ones take longest)."""
    heavy = [d for d in definitions if "USING gin" in d]
    light = [d for d in definitions if "USING gin" not in d]

    async def build(batch: list[str]) -> None:
        connection = await asyncpg.connect(**db.asyncpg_params(url))
        try:
            await connection.execute("SET maintenance_work_mem = '512MB'")
            for definition in batch:
                await connection.execute(definition)
        finally:
            await connection.close()

    await asyncio.gather(build(heavy), build(light))


async def seed_history(
    url: str,
    workspace: BenchWorkspace,
    conversations: int,
    messages: int,
    seed: int = 11,
) -> dict:
    """COPY ``conversations`` with ``messages`` in all; return timings."""
    rng = random.Random(seed)
    text = TextGenerator(seed)
    timings: dict[str, float] = {}
    began = time.perf_counter()
    connection = await asyncpg.connect(**db.asyncpg_params(url))
    try:
        await connection.execute("SET session_replication_role = replica")
        ids = await _next_ids(connection)
        index_definitions = await _drop_secondary_indexes(connection)

        now = datetime.now(UTC)
        start = now - timedelta(days=HISTORY_DAYS)
        contacts = int(conversations * 0.8)
        inboxes = workspace.history_inbox_ids
        counts = _message_counts(conversations, messages, rng)

        contact_rows, identity_rows = [], []
        for number in range(contacts):
            contact_id = ids["contact"] + number
            first = rng.choice(
                ("Ana", "Omar", "Li", "Sam", "Jo", "Ivan", "Mia", "Noor")
            )
            email = f"customer{number}@mail.example" if number % 2 else None
            created = start + timedelta(days=HISTORY_DAYS * number / contacts)
            contact_rows.append(
                (contact_id, workspace.id, f"{first} {number}", email, created, created)
            )
            identity_rows.append(
                (
                    ids["contact_identity"] + number,
                    workspace.id,
                    contact_id,
                    inboxes[number % len(inboxes)],
                    f"seed-contact-{number}",
                )
            )
        await connection.copy_records_to_table(
            "contact",
            records=contact_rows,
            columns=["id", "workspace_id", "name", "email", "created_at", "updated_at"],
        )
        await connection.copy_records_to_table(
            "contact_identity",
            records=identity_rows,
            columns=["id", "workspace_id", "contact_id", "inbox_id", "external_id"],
        )

        # Every message's time first, so ids grow with time across conversations.
        message_plan = []
        conversation_rows = []
        repeat_from = conversations - contacts
        for number in range(conversations):
            conversation_id = ids["conversation"] + number
            contact_number = number % contacts
            created = start + timedelta(days=HISTORY_DAYS * number / conversations)
            count = counts[number]
            if number < BIG_CONVERSATIONS:
                step = (now - created) / (count + 1)
            else:
                step = timedelta(minutes=rng.uniform(1, 240))
            when = created
            last_inbound = created
            for position in range(count):
                when = min(when + step * rng.uniform(0.5, 1.5), now)
                inbound = position == 0 or rng.random() < 0.5
                if inbound:
                    last_inbound = when
                message_plan.append(
                    (when, conversation_id, contact_number, inbound, number)
                )
            if number < BIG_CONVERSATIONS:
                status = "open"
            elif number < repeat_from or 0 <= number - contacts < BIG_CONVERSATIONS:
                # A contact with two conversations: only one of them may be open.
                status = "resolved"
            else:
                status = _status(rng)
            assigned_share = 0.9 if status == "resolved" else 0.6
            assignee = (
                rng.choice(workspace.agent_ids)
                if number < BIG_CONVERSATIONS or rng.random() < assigned_share
                else None
            )
            conversation_rows.append(
                (
                    conversation_id,
                    workspace.id,
                    inboxes[contact_number % len(inboxes)],
                    ids["contact"] + contact_number,
                    status,
                    assignee,
                    text.subject(),
                    now + timedelta(days=3) if status == "snoozed" else None,
                    when,
                    last_inbound,
                    created,
                )
            )
            if number < BIG_CONVERSATIONS:
                workspace.big_conversation_ids.append(conversation_id)
        await connection.copy_records_to_table(
            "conversation",
            records=conversation_rows,
            columns=[
                "id",
                "workspace_id",
                "inbox_id",
                "contact_id",
                "status",
                "assignee_id",
                "subject",
                "snoozed_until",
                "last_activity_at",
                "last_inbound_at",
                "created_at",
            ],
        )
        assignees = {row[0]: row[5] for row in conversation_rows}
        del conversation_rows, contact_rows, identity_rows
        timings["plan_s"] = time.perf_counter() - began

        message_plan.sort(key=lambda item: item[0])
        await _copy_messages(
            connection, workspace, ids, message_plan, assignees, text, rng
        )
        timings["copy_s"] = time.perf_counter() - began
        del message_plan

        await connection.execute("SET session_replication_role = DEFAULT")
        await _set_sequences(connection)
    finally:
        await connection.close()

    await _build_indexes(url, index_definitions)
    timings["indexes_s"] = time.perf_counter() - began
    connection = await asyncpg.connect(**db.asyncpg_params(url))
    try:
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()
    timings["total_s"] = time.perf_counter() - began
    return {key: round(value, 1) for key, value in timings.items()}


MESSAGE_COLUMNS = [
    "id",
    "workspace_id",
    "inbox_id",
    "conversation_id",
    "direction",
    "kind",
    "sender_user_id",
    "sender_contact_id",
    "text",
    "external_id",
    "delivery_status",
    "created_at",
    "updated_at",
]


async def _copy_messages(connection, workspace, ids, plan, assignees, text, rng):
    inboxes = workspace.history_inbox_ids
    chunk: list[tuple] = []
    for offset, (when, conversation_id, contact_number, inbound, _) in enumerate(plan):
        message_id = ids["message"] + offset
        inbox_id = inboxes[contact_number % len(inboxes)]
        if inbound:
            row = (
                message_id,
                workspace.id,
                inbox_id,
                conversation_id,
                "in",
                "message",
                None,
                ids["contact"] + contact_number,
                text.message(offset),
                f"seed-{message_id}",
                "received",
                when,
                when,
            )
        else:
            roll = rng.random()
            kind = "note" if roll < 0.03 else "event" if roll < 0.05 else "message"
            agent = assignees[conversation_id] or workspace.agent_ids[0]
            row = (
                message_id,
                workspace.id,
                inbox_id,
                conversation_id,
                "out",
                kind,
                agent,
                None,
                text.message(offset),
                None,
                "read" if kind == "message" else "received",
                when,
                when,
            )
        chunk.append(row)
        if len(chunk) >= 50_000:
            await connection.copy_records_to_table(
                "message", records=chunk, columns=MESSAGE_COLUMNS
            )
            chunk = []
    if chunk:
        await connection.copy_records_to_table(
            "message", records=chunk, columns=MESSAGE_COLUMNS
        )
