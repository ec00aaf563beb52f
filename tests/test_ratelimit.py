"""The in-process sliding-window limiter shared by the login form and the chat."""

from __future__ import annotations

import pytest

from patra.ratelimit import SlidingWindowLimiter


def test_sliding_window_frees_capacity_as_time_passes():
    now = [1000.0]
    limiter = SlidingWindowLimiter(clock=lambda: now[0])

    assert [limiter.hit("k", 2, 60) for _ in range(2)] == [None, None]
    wait = limiter.hit("k", 2, 60)
    now[0] += 61

    assert wait == pytest.approx(60)
    assert limiter.hit("k", 2, 60) is None


def test_checking_a_key_does_not_count_against_it():
    now = [1000.0]
    limiter = SlidingWindowLimiter(clock=lambda: now[0])

    limiter.record("k", 60)
    checks = [limiter.wait_seconds("k", 2, 60) for _ in range(5)]
    limiter.record("k", 60)

    assert checks == [None] * 5
    assert limiter.wait_seconds("k", 2, 60) == pytest.approx(60)
