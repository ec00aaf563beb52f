"""Live updates over Server-Sent Events, fed by PostgreSQL LISTEN/NOTIFY.

Each process listens once on :data:`patra.events.CHANNEL` through Litestar's
channels plugin; every SSE connection filters that stream down to what its
reader may see. Works across any number of processes sharing one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

from litestar import Request, get
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent, ServerSentEventMessage

from patra.accounts.service import CurrentUser, visible_inbox_ids
from patra.events import CHANNEL
from patra.web.auth import current_user

HEARTBEAT_SECONDS = 15.0

# One subscriber per process that never leaves. Without it, the last reader
# leaving makes the backend UNLISTEN while a new reader's LISTEN may already
# have been skipped as redundant, silencing every later stream.
_keepers: dict[int, object] = {}
_keeper_lock = asyncio.Lock()


async def _keep_listening(channels: ChannelsPlugin) -> None:
    if id(channels) in _keepers:
        return
    async with _keeper_lock:
        if id(channels) not in _keepers:
            _keepers[id(channels)] = await channels.subscribe([CHANNEL])


async def event_stream(
    channels: ChannelsPlugin,
    accept: Callable[[dict], bool],
    heartbeat: float = HEARTBEAT_SECONDS,
) -> AsyncIterator[ServerSentEventMessage]:
    """Events for which ``accept(event)`` is true, with heartbeats in between.

    Plugins use this for their own live streams (the web chat widget does).
    """
    await _keep_listening(channels)
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
    async with channels.start_subscription([CHANNEL]) as subscriber:

        async def pump() -> None:
            async for raw in subscriber.iter_events():
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(raw)

        pump_task = asyncio.create_task(pump())
        try:
            yield ServerSentEventMessage(comment="connected", data=None)
            while True:
                try:
                    raw = await asyncio.wait_for(queue.get(), heartbeat)
                except TimeoutError:
                    yield ServerSentEventMessage(comment="heartbeat", data=None)
                    continue
                event = json.loads(raw)
                if accept(event):
                    yield ServerSentEventMessage(
                        data=json.dumps(event), event=event["type"]
                    )
        finally:
            pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump_task


@get("/events", include_in_schema=False)
async def agent_events(
    request: Request, channels: NamedDependency[ChannelsPlugin]
) -> ServerSentEvent:
    """The agent's live stream: events of the inboxes this agent can see."""
    user: CurrentUser = await current_user(request)
    inbox_ids = set(await visible_inbox_ids(user))

    def accept(event: dict) -> bool:
        if event.get("workspace_id") != user.workspace_id:
            return False
        return event.get("inbox_id") is None or event["inbox_id"] in inbox_ids

    return ServerSentEvent(
        event_stream(channels, accept), headers={"cache-control": "no-store"}
    )
