"""Who is asking: session cookies for the web inbox, bearer tokens for the API."""

from __future__ import annotations

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from patra import runtime
from patra.accounts.service import CurrentUser, session_user, token_user

SESSION_COOKIE = "patra_session"


def cookie_is_secure(connection: ASGIConnection) -> bool:
    public_url = runtime.current().config.public_url
    return public_url.startswith("https://") or connection.url.scheme == "https"


async def _resolve(connection: ASGIConnection) -> CurrentUser | None:
    if "patra_user" in connection.state:
        return connection.state["patra_user"]
    user = None
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = await token_user(header[7:].strip())
    elif connection.cookies.get(SESSION_COOKIE):
        user = await session_user(connection.cookies[SESSION_COOKIE])
    connection.state["patra_user"] = user
    return user


async def optional_user(request: Request) -> CurrentUser | None:
    return await _resolve(request)


async def current_user(request: Request) -> CurrentUser:
    user = await _resolve(request)
    if user is None:
        raise NotAuthorizedException("Log in to continue.")
    return user


async def require_login(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: a logged-in user (session) or a valid API token."""
    if await _resolve(connection) is None:
        raise NotAuthorizedException("Log in to continue.")


async def require_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: an owner or admin."""
    user = await _resolve(connection)
    if user is None:
        raise NotAuthorizedException("Log in to continue.")
    if not user.is_admin:
        raise PermissionDeniedException("Only admins can do this.")
