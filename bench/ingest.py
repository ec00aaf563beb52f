"""Inbound messages through the real HTTP stack, beside the raw database limit,
and the delay from a webhook's answer to the agent's live event.

The "webhook" is the web chat widget's ``POST /widget/N/messages``: it verifies
the visitor token, runs the core ingest service (one transaction: contact,
conversation, message, NOTIFY) and answers with the stored message. The raw
limit replays the same plan with a plain asyncpg script: one transaction per
message with the contact, identity, conversation and message writes and the
NOTIFY that ingest does, and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass

import asyncpg
import httpx

from bench.harness import CpuMeter, percentile, summary_ms
from bench.textgen import TextGenerator
from patra import db

MESSAGES_PER_VISITOR = 5
# Keep-alive connections the live benchmark's webhook sender spreads messages
# over; a message waits for a free one only when the server falls behind.
LIVE_CONNECTIONS = 20


@dataclass
class Plan:
    """Which sender sends which visitor's messages, with what text."""

    senders: int
    visitors: list[list[str]]  # per sender: visitor keys
    texts: list[str]

    def text(self, visitor_position: int, number: int) -> str:
        return self.texts[visitor_position * MESSAGES_PER_VISITOR + number]

    @property
    def messages(self) -> int:
        return sum(len(keys) for keys in self.visitors) * MESSAGES_PER_VISITOR


def make_plan(senders: int, messages: int, seed: int = 3) -> Plan:
    per_sender = max(1, messages // (senders * MESSAGES_PER_VISITOR))
    text = TextGenerator(seed, stream_words=50_000)
    visitors = [
        [secrets.token_hex(8) for _ in range(per_sender)] for _ in range(senders)
    ]
    texts = [text.message(n) for n in range(MESSAGES_PER_VISITOR * per_sender)]
    return Plan(senders, visitors, texts)


# --- through HTTP ----------------------------------------------------------------


async def visitor_tokens(
    client: httpx.AsyncClient, inbox_id: int, count: int, concurrency: int = 8
) -> list[str]:
    """Start ``count`` chats with ``POST /widget/N/session`` (not timed)."""
    tokens: list[str] = []
    semaphore = asyncio.Semaphore(concurrency)

    async def one(number: int) -> None:
        async with semaphore:
            response = await client.post(
                f"/widget/{inbox_id}/session",
                json={"name": f"Visitor {number}", "email": ""},
            )
            response.raise_for_status()
            tokens.append(response.json()["token"])

    await asyncio.gather(*(one(number) for number in range(count)))
    return tokens


async def http_ingest(
    base_url: str, inbox_id: int, plan: Plan, server_pids=None, postgres_pids=None
) -> dict:
    """Send the plan's messages with ``plan.senders`` concurrent senders.

    Each sender has its own keep-alive connection, like a provider's webhook
    deliveries; one shared httpx pool would cost the client more CPU than the
    server at 50 senders.
    """
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        count = sum(len(keys) for keys in plan.visitors)
        pool = await visitor_tokens(client, inbox_id, count)
    assigned = [[pool.pop() for _ in keys] for keys in plan.visitors]
    failures: list[str] = []

    async def sender(tokens: list[str]) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            for position, token in enumerate(tokens):
                headers = {"authorization": f"Bearer {token}"}
                for number in range(MESSAGES_PER_VISITOR):
                    response = await client.post(
                        f"/widget/{inbox_id}/messages",
                        headers=headers,
                        json={
                            "text": plan.text(position, number),
                            "idempotency_key": secrets.token_hex(12),
                        },
                    )
                    if response.status_code != 201:
                        failures.append(f"{response.status_code} {response.text[:200]}")

    server = CpuMeter(server_pids or list)
    postgres = CpuMeter(postgres_pids or list)
    server.start()
    postgres.start()
    client_before = time.process_time()
    began = time.perf_counter()
    await asyncio.gather(*(sender(tokens) for tokens in assigned))
    elapsed = time.perf_counter() - began
    client_cpu = time.process_time() - client_before
    if failures:
        raise RuntimeError(f"{len(failures)} messages were refused: {failures[0]}")
    return {
        "senders": plan.senders,
        "messages": plan.messages,
        "seconds": round(elapsed, 2),
        "per_second": round(plan.messages / elapsed, 1),
        **_cpu_per_message(plan.messages, server.used(), client_cpu, postgres.used()),
    }


def _cpu_per_message(messages: int, server: float, client: float, postgres: float):
    return {
        "server_cpu_ms_per_message": round(1000 * server / messages, 2),
        "client_cpu_ms_per_message": round(1000 * client / messages, 2),
        "postgres_cpu_ms_per_message": round(1000 * postgres / messages, 2),
    }


async def http_ceiling(
    base_url: str, senders: int, requests: int, server_pids=None
) -> dict:
    """``GET /healthz`` with the same client: what HTTP alone allows here.

    The handler does no work, so this is the most requests per second that
    this client, uvicorn and Litestar reach together on this machine.
    """
    per_sender = max(1, requests // senders)

    async def sender() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            for _ in range(per_sender):
                (await client.get("/healthz")).raise_for_status()

    server = CpuMeter(server_pids or list)
    server.start()
    client_before = time.process_time()
    began = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    elapsed = time.perf_counter() - began
    total = per_sender * senders
    return {
        "senders": senders,
        "requests": total,
        "per_second": round(total / elapsed, 1),
        **_cpu_per_message(
            total, server.used(), time.process_time() - client_before, 0
        ),
    }


# --- the raw limit -------------------------------------------------------------------


async def _raw_message(
    connection, workspace_id: int, inbox_id: int, visitor: str, text: str
) -> None:
    async with connection.transaction():
        contact_id = await connection.fetchval(
            """SELECT contact_id FROM contact_identity
               WHERE inbox_id = $1 AND external_id = $2""",
            inbox_id,
            visitor,
        )
        if contact_id is None:
            contact_id = await connection.fetchval(
                """INSERT INTO contact (workspace_id, name, email, phone)
                   VALUES ($1, $2, NULL, NULL) RETURNING id""",
                workspace_id,
                "Visitor",
            )
            await connection.execute(
                """INSERT INTO contact_identity
                       (workspace_id, contact_id, inbox_id, external_id)
                   VALUES ($1, $2, $3, $4)""",
                workspace_id,
                contact_id,
                inbox_id,
                visitor,
            )
        conversation_id = await connection.fetchval(
            """SELECT id FROM conversation
               WHERE inbox_id = $1 AND contact_id = $2 AND thread_key IS NULL
                 AND status <> 'resolved'""",
            inbox_id,
            contact_id,
        )
        if conversation_id is None:
            conversation_id = await connection.fetchval(
                """INSERT INTO conversation
                       (workspace_id, inbox_id, contact_id, last_inbound_at)
                   VALUES ($1, $2, $3, now()) RETURNING id""",
                workspace_id,
                inbox_id,
                contact_id,
            )
            await connection.execute(
                "SELECT pg_notify('patra_events', $1)",
                json.dumps({"type": "conversation.created", "inbox_id": inbox_id}),
            )
        key = secrets.token_hex(12)
        message_id = await connection.fetchval(
            """INSERT INTO message (workspace_id, inbox_id, conversation_id, direction,
                   sender_contact_id, text, external_id, idempotency_key)
               VALUES ($1, $2, $3, 'in', $4, $5, $6, $6)
               ON CONFLICT DO NOTHING RETURNING id""",
            workspace_id,
            inbox_id,
            conversation_id,
            contact_id,
            text,
            f"raw:{visitor}:{key}",
        )
        await connection.execute(
            """UPDATE conversation SET last_activity_at = now(),
                   last_inbound_at = now(), status = 'open', snoozed_until = NULL
               WHERE id = $1""",
            conversation_id,
        )
        await connection.execute(
            "SELECT pg_notify('patra_events', $1)",
            json.dumps({"type": "message.created", "message_id": message_id}),
        )


async def raw_ingest(
    url: str, workspace_id: int, inbox_id: int, plan: Plan, postgres_pids=None
) -> dict:
    """The same plan as plain asyncpg transactions, one connection per sender."""
    pool = await asyncpg.create_pool(
        **db.asyncpg_params(url), min_size=plan.senders, max_size=plan.senders
    )
    postgres = CpuMeter(postgres_pids or list)

    async def sender(keys: list[str]) -> None:
        async with pool.acquire() as connection:
            for position, key in enumerate(keys):
                for number in range(MESSAGES_PER_VISITOR):
                    await _raw_message(
                        connection,
                        workspace_id,
                        inbox_id,
                        f"raw-{key}",
                        plan.text(position, number),
                    )

    try:
        postgres.start()
        client_before = time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(sender(keys) for keys in plan.visitors))
        elapsed = time.perf_counter() - began
        client_cpu = time.process_time() - client_before
        postgres_cpu = postgres.used()
    finally:
        await pool.close()
    return {
        "senders": plan.senders,
        "messages": plan.messages,
        "seconds": round(elapsed, 2),
        "per_second": round(plan.messages / elapsed, 1),
        **_cpu_per_message(plan.messages, 0.0, client_cpu, postgres_cpu),
    }


# --- live latency -------------------------------------------------------------------


async def agent_client(base_url: str, email: str, password: str) -> httpx.AsyncClient:
    """An HTTP client logged in to the web inbox as an agent."""
    client = httpx.AsyncClient(base_url=base_url, timeout=30)
    await client.get("/login")
    response = await client.post(
        "/login",
        data={"email": email, "password": password, "next": "/inbox"},
        headers={"x-csrftoken": client.cookies.get("patra_csrf", "")},
    )
    if response.status_code not in (301, 302, 303):
        await client.aclose()
        raise RuntimeError(f"Agent login failed: {response.status_code}")
    return client


async def live_latency(
    base_url: str,
    inbox_id: int,
    agent_email: str,
    password: str,
    rate: float,
    seconds: float,
) -> dict:
    """Messages at ``rate`` per second; time from each answer to the SSE event."""
    agent = await agent_client(base_url, agent_email, password)
    event_at: dict[int, float] = {}
    connected = asyncio.Event()

    async def listen() -> None:
        async with agent.stream(
            "GET", "/events", timeout=httpx.Timeout(30, read=None)
        ) as response:
            response.raise_for_status()
            event_type = None
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    connected.set()
                elif line.startswith("event:"):
                    event_type = line[6:].strip()
                elif line.startswith("data:") and event_type == "message.created":
                    payload = json.loads(line[5:])
                    event_at[payload["message_id"]] = time.perf_counter()

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(connected.wait(), 10)

    total = int(rate * seconds)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        tokens = await visitor_tokens(client, inbox_id, max(1, total // 10))
    sent_at: dict[int, tuple[float, float]] = {}
    failures: list[int] = []
    lateness: list[float] = []
    due_messages: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def connection() -> None:
        """One webhook connection; sends each message as soon as it is due."""
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            while (item := await due_messages.get()) is not None:
                number, due = item
                began = time.perf_counter()
                lateness.append(began - due)
                response = await client.post(
                    f"/widget/{inbox_id}/messages",
                    headers={"authorization": f"Bearer {tokens[number % len(tokens)]}"},
                    json={
                        "text": f"live {number}",
                        "idempotency_key": secrets.token_hex(12),
                    },
                )
                answered = time.perf_counter()
                if response.status_code != 201:
                    failures.append(response.status_code)
                    continue
                sent_at[response.json()["message"]["id"]] = (began, answered)

    connections = [asyncio.create_task(connection()) for _ in range(LIVE_CONNECTIONS)]
    start = time.perf_counter()
    for number in range(total):
        due = start + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due_messages.put_nowait((number, due))
    for _ in connections:
        due_messages.put_nowait(None)
    await asyncio.gather(*connections)
    achieved = total / (time.perf_counter() - start)
    await asyncio.sleep(1.0)
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    await agent.aclose()

    after_answer, after_send, request_times = [], [], []
    for message_id, (began, answered) in sent_at.items():
        request_times.append(answered - began)
        if message_id in event_at:
            after_answer.append(event_at[message_id] - answered)
            after_send.append(event_at[message_id] - began)
    missing = len(sent_at) - len(after_answer)
    return {
        "rate_asked": rate,
        "rate_achieved": round(achieved, 1),
        "messages": total,
        "refused": len(failures),
        "events_missing": missing,
        "answer_to_event": summary_ms(after_answer),
        "send_to_event": summary_ms(after_send),
        "request": summary_ms(request_times),
        "send_lateness": summary_ms(lateness),
        "event_before_answer_share": round(
            sum(1 for value in after_answer if value < 0) / max(1, len(after_answer)), 3
        ),
        "answer_to_event_max_ms": round(1000 * percentile(after_answer, 1.0), 2),
    }
