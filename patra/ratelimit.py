"""A sliding-window rate limiter kept in this process's memory.

Each web process counts on its own, so with N processes a client may make up to
N times the configured number of requests. That is enough to stop a script
flooding an inbox or guessing passwords; a shared limiter is not needed for that.
Used by the web chat (visitor requests) and the login form (failed attempts).
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
        wait = self.wait_seconds(key, limit, window_seconds)
        if wait is None:
            self.record(key, window_seconds)
        return wait

    def wait_seconds(self, key: str, limit: int, window_seconds: float) -> float | None:
        """Seconds to wait before ``key`` may go on, without counting anything."""
        now = self._clock()
        hits = self._hits.get(key)
        if not hits:
            return None
        while hits and hits[0] <= now - window_seconds:
            hits.popleft()
        if len(hits) >= limit:
            return max(hits[0] + window_seconds - now, 0.001)
        return None

    def record(self, key: str, window_seconds: float) -> None:
        """Count one event for ``key`` whether or not it is over a limit."""
        now = self._clock()
        self._longest_window = max(self._longest_window, window_seconds)
        self._hits.setdefault(key, deque()).append(now)
        if len(self._hits) > PRUNE_ABOVE_KEYS:
            self._prune(now)

    def _prune(self, now: float) -> None:
        idle = [
            key
            for key, hits in self._hits.items()
            if not hits or hits[-1] <= now - self._longest_window
        ]
        for key in idle:
            del self._hits[key]
