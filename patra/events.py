"""Live events: published with NOTIFY inside the writing transaction.

PostgreSQL delivers a NOTIFY only when its transaction commits, so a browser
is never told about a row it cannot read yet, and a rolled-back write is never
announced. Every Patra process LISTENs on :data:`CHANNEL` through Litestar's
channels plugin and forwards each event to the SSE streams allowed to see it.
"""

from __future__ import annotations

import json
from typing import Any

from patra import db

CHANNEL = "patra_events"


async def publish(event_type: str, workspace_id: int, **fields: Any) -> None:
    payload = {"type": event_type, "workspace_id": workspace_id, **fields}
    await db.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps(payload))
