"""Slowing down password guessing: failed logins counted per email and per address.

Counts live in each web process's memory (see ``patra.ratelimit``), so with N web
processes an attacker gets up to N times the limits below; a restart forgets them.
"""

from __future__ import annotations

import logging
import math

from patra import db
from patra.accounts import service
from patra.ratelimit import SlidingWindowLimiter

logger = logging.getLogger(__name__)

FAILURES_PER_EMAIL = 10
FAILURES_PER_ADDRESS = 50
WINDOW_SECONDS = 15 * 60


class LoginThrottled(Exception):
    """Too many failed logins; the message says when to try again."""

    def __init__(self, wait_seconds: float):
        self.wait_seconds = wait_seconds
        minutes = max(1, math.ceil(wait_seconds / 60))
        unit = "minute" if minutes == 1 else "minutes"
        super().__init__(
            "Too many failed logins for this account or from this network. "
            f"Please wait {minutes} {unit} and try again."
        )


def _keys(email: str, ip: str | None) -> list[tuple[str, int]]:
    keys = [(f"email:{email.strip().lower()}", FAILURES_PER_EMAIL)]
    if ip:
        keys.append((f"ip:{ip}", FAILURES_PER_ADDRESS))
    return keys


def check(limiter: SlidingWindowLimiter, email: str, ip: str | None) -> None:
    """Raise ``LoginThrottled`` when this email or address failed too often."""
    waits = [
        limiter.wait_seconds(key, limit, WINDOW_SECONDS)
        for key, limit in _keys(email, ip)
    ]
    longest = max((wait for wait in waits if wait is not None), default=None)
    if longest is not None:
        raise LoginThrottled(longest)


async def record_failure(
    limiter: SlidingWindowLimiter, email: str, ip: str | None
) -> None:
    """Count a failed login; audit the failure that locks an email or address."""
    for key, limit in _keys(email, ip):
        was_open = limiter.wait_seconds(key, limit, WINDOW_SECONDS) is None
        limiter.record(key, WINDOW_SECONDS)
        now_locked = limiter.wait_seconds(key, limit, WINDOW_SECONDS) is not None
        if was_open and now_locked:
            await _audit_lock(key.split(":", 1)[0], email, ip)


async def _audit_lock(reason: str, email: str, ip: str | None) -> None:
    user_id = await service.user_id_by_email(email)
    workspace_id = await db.fetchval(
        "SELECT workspace_id FROM membership WHERE user_id = $1", user_id
    )
    logger.warning(
        "Login paused for %s minutes after %s failures by %s",
        WINDOW_SECONDS // 60,
        FAILURES_PER_EMAIL if reason == "email" else FAILURES_PER_ADDRESS,
        reason,
    )
    await service.audit(
        workspace_id,
        None,
        "user.login_throttled",
        "user" if user_id else "",
        user_id or "",
        {"reason": reason, "email": email.strip().lower()},
        ip=ip,
    )
