"""A sliding-window rate limiter kept in this process's memory.

Each web process counts on its own, so with N processes a client may make up to
N times the configured number of requests. That is enough to stop a script
flooding an inbox; a shared limiter is not needed for that.
"""

from __future__ import annotations

import time
from collections import deque

# Forget idle keys once this many are tracked, so memory stays bounded.
PRUNE_ABOVE_KEYS = 10_000


class SlidingWindowLimiter:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._longest_window = 0.0

    def hit(self, key: str, limit: int, window_seconds: float) -> float | None:
        """Count one request for ``key``; seconds to wait when over the limit."""
        now = self._clock()
        self._longest_window = max(self._longest_window, window_seconds)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window_seconds:
            hits.popleft()
        if len(hits) >= limit:
            return max(hits[0] + window_seconds - now, 0.001)
        hits.append(now)
        if len(self._hits) > PRUNE_ABOVE_KEYS:
            self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        idle = [
            key
            for key, hits in self._hits.items()
            if not hits or hits[-1] <= now - self._longest_window
        ]
        for key in idle:
            del self._hits[key]
