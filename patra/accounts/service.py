"""People and access: users, roles, passwords, sessions and API tokens.

Passwords are argon2id hashes. Session and token values are random; only
their SHA-256 is stored, so a database dump does not let anyone log in.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from patra import db
from patra.tables import AppUser

logger = logging.getLogger(__name__)

ROLES = ("owner", "admin", "agent")
SESSION_LIFETIME = timedelta(days=14)
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()  # argon2id with the library's current parameters


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message says why."""


@dataclass(frozen=True)
class CurrentUser:
    id: int
    workspace_id: int
    email: str
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role in ("owner", "admin")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters."
        )
    return _hasher.hash(password)


async def user_count() -> int:
    return await AppUser.count()


async def ensure_workspace(name: str = "My workspace") -> int:
    workspace_id = await db.fetchval("SELECT id FROM workspace ORDER BY id LIMIT 1")
    if workspace_id is None:
        workspace_id = await db.fetchval(
            "INSERT INTO workspace (name) VALUES ($1) RETURNING id", name
        )
    return workspace_id


async def create_user(
    workspace_id: int, email: str, name: str, password: str, role: str
) -> int:
    email = email.strip()
    if "@" not in email:
        raise AccountError(f"{email!r} is not an email address.")
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}, not {role!r}.")
    if not name.strip():
        raise AccountError("Give the user a name.")
    password_hash = hash_password(password)
    async with db.transaction():
        taken = await db.fetchval(
            "SELECT 1 FROM app_user WHERE lower(email) = lower($1)", email
        )
        if taken:
            raise AccountError(f"A user with the email {email} already exists.")
        user_id = await db.fetchval(
            """INSERT INTO app_user (email, name, password_hash)
               VALUES ($1, $2, $3) RETURNING id""",
            email,
            name.strip(),
            password_hash,
        )
        await db.execute(
            "INSERT INTO membership (workspace_id, user_id, role) VALUES ($1, $2, $3)",
            workspace_id,
            user_id,
            role,
        )
        await audit(workspace_id, None, "user.created", "user", user_id, {"role": role})
    logger.info("Created user %s with role %s", user_id, role)
    return user_id


async def authenticate(email: str, password: str) -> CurrentUser | None:
    row = await db.fetchrow(
        """SELECT u.id, u.email, u.name, u.password_hash, m.workspace_id, m.role
           FROM app_user u JOIN membership m ON m.user_id = u.id
           WHERE lower(u.email) = lower($1) AND u.is_active""",
        email.strip(),
    )
    if row is None:
        _hasher.hash("timing-equaliser")  # as slow as a real check
        return None
    try:
        _hasher.verify(row["password_hash"], password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        await db.execute(
            "UPDATE app_user SET password_hash = $2 WHERE id = $1",
            row["id"],
            _hasher.hash(password),
        )
    return _current_user(row)


def _current_user(row) -> CurrentUser:
    return CurrentUser(
        id=row["id"],
        workspace_id=row["workspace_id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
    )


async def start_session(user: CurrentUser) -> str:
    """A new session id (the cookie value); a fresh one at every login."""
    token = secrets.token_urlsafe(32)
    await db.execute(
        """INSERT INTO session (id, workspace_id, user_id, expires_at)
           VALUES ($1, $2, $3, now() + $4::interval)""",
        _digest(token),
        user.workspace_id,
        user.id,
        SESSION_LIFETIME,
    )
    return token


async def session_user(token: str) -> CurrentUser | None:
    row = await db.fetchrow(
        """UPDATE session s SET last_seen_at = now()
           FROM app_user u, membership m
           WHERE s.id = $1 AND s.expires_at > now() AND u.id = s.user_id
             AND u.is_active AND m.user_id = u.id AND m.workspace_id = s.workspace_id
           RETURNING u.id, u.email, u.name, m.workspace_id, m.role""",
        _digest(token),
    )
    return _current_user(row) if row else None


async def end_session(token: str) -> None:
    await db.execute("DELETE FROM session WHERE id = $1", _digest(token))


async def end_all_sessions(user_id: int) -> None:
    await db.execute("DELETE FROM session WHERE user_id = $1", user_id)


async def change_password(user_id: int, current: str, new: str) -> None:
    row = await db.fetchrow("SELECT password_hash FROM app_user WHERE id = $1", user_id)
    try:
        _hasher.verify(row["password_hash"], current)
    except (VerificationError, InvalidHashError):
        raise AccountError("The current password is not correct.") from None
    async with db.transaction():
        await db.execute(
            """UPDATE app_user SET password_hash = $2, password_changed_at = now()
               WHERE id = $1""",
            user_id,
            hash_password(new),
        )
        await end_all_sessions(user_id)


async def set_active(workspace_id: int, user_id: int, active: bool, actor_id: int):
    async with db.transaction():
        await db.execute(
            "UPDATE app_user SET is_active = $2 WHERE id = $1", user_id, active
        )
        if not active:
            await end_all_sessions(user_id)
            await db.execute(
                "UPDATE api_token SET revoked_at = now() "
                "WHERE user_id = $1 AND revoked_at IS NULL",
                user_id,
            )
        action = "user.activated" if active else "user.deactivated"
        await audit(workspace_id, actor_id, action, "user", user_id)


async def create_api_token(user_id: int, name: str = "") -> str:
    membership = await db.fetchrow(
        "SELECT workspace_id FROM membership WHERE user_id = $1", user_id
    )
    token = "patra_" + secrets.token_urlsafe(32)
    await db.execute(
        """INSERT INTO api_token (workspace_id, user_id, name, token_hash)
           VALUES ($1, $2, $3, $4)""",
        membership["workspace_id"],
        user_id,
        name,
        _digest(token),
    )
    await audit(membership["workspace_id"], user_id, "token.created", "user", user_id)
    return token


async def revoke_api_tokens(user_id: int, name: str | None = None) -> int:
    """Revoke the user's live tokens (only those called ``name`` when given)."""
    rows = await db.fetch(
        """UPDATE api_token SET revoked_at = now()
           WHERE user_id = $1 AND revoked_at IS NULL AND ($2::text IS NULL OR name = $2)
           RETURNING workspace_id""",
        user_id,
        name,
    )
    if rows:
        await audit(
            rows[0]["workspace_id"],
            None,
            "token.revoked",
            "user",
            user_id,
            {"count": len(rows)},
        )
    return len(rows)


async def token_user(token: str) -> CurrentUser | None:
    row = await db.fetchrow(
        """UPDATE api_token t SET last_used_at = now()
           FROM app_user u, membership m
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.id = t.user_id
             AND u.is_active AND m.user_id = u.id AND m.workspace_id = t.workspace_id
           RETURNING u.id, u.email, u.name, m.workspace_id, m.role""",
        _digest(token),
    )
    return _current_user(row) if row else None


async def user_id_by_email(email: str) -> int | None:
    return await db.fetchval(
        "SELECT id FROM app_user WHERE lower(email) = lower($1)", email.strip()
    )


async def audit(
    workspace_id: int | None,
    actor_id: int | None,
    action: str,
    target_type: str = "",
    target_id: object = "",
    details: dict | None = None,
    ip: str | None = None,
) -> None:
    """Record a security or privacy action in the audit log."""
    await db.execute(
        """INSERT INTO audit_event (workspace_id, actor_user_id, action, target_type,
               target_id, details, ip) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        workspace_id,
        actor_id,
        action,
        target_type,
        str(target_id),
        details or {},
        ip,
    )


async def visible_inbox_ids(user: CurrentUser) -> list[int]:
    """Inboxes the user may see: all for admins, memberships for agents."""
    if user.is_admin:
        rows = await db.fetch(
            "SELECT id FROM inbox WHERE workspace_id = $1 ORDER BY id",
            user.workspace_id,
        )
    else:
        rows = await db.fetch(
            """SELECT i.id FROM inbox i JOIN inbox_member im ON im.inbox_id = i.id
               WHERE i.workspace_id = $1 AND im.user_id = $2 ORDER BY i.id""",
            user.workspace_id,
            user.id,
        )
    return [row["id"] for row in rows]


async def list_users(workspace_id: int) -> list[dict]:
    """Everyone in the workspace with role, state and inbox memberships."""
    return await db.fetch(
        """SELECT u.id, u.email, u.name, u.is_active, u.created_at, m.role,
                  coalesce(array_agg(im.inbox_id)
                           FILTER (WHERE im.inbox_id IS NOT NULL),
                           '{}') AS inbox_ids
           FROM app_user u JOIN membership m ON m.user_id = u.id
           LEFT JOIN inbox_member im ON im.user_id = u.id
           WHERE m.workspace_id = $1
           GROUP BY u.id, m.role ORDER BY u.is_active DESC, lower(u.name)""",
        workspace_id,
    )
