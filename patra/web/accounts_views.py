"""First-run setup, login, logout and password change."""

from __future__ import annotations

import math
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from patra import db
from patra.accounts import login_throttle, service
from patra.accounts.service import AccountError
from patra.ratelimit import SlidingWindowLimiter
from patra.web.auth import SESSION_COOKIE, cookie_is_secure, current_user, require_login

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def _logged_in(request: Request, user: service.CurrentUser, token: str, target: str):
    response = Redirect(_safe_next(target))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(request),
        max_age=int(service.SESSION_LIFETIME.total_seconds()),
        path="/",
    )
    return response


@get("/setup", include_in_schema=False)
async def setup_page() -> Response:
    if await service.user_count():
        return Redirect("/login")
    return Template("setup.html", context={"errors": [], "form": {}})


@post("/setup", include_in_schema=False)
async def setup_submit(request: Request, data: Form) -> Response:
    if await service.user_count():
        return Redirect("/login")
    try:
        workspace_id = await service.ensure_workspace(
            data.get("workspace", "").strip() or "My workspace"
        )
        user_id = await service.create_user(
            workspace_id,
            data.get("email", ""),
            data.get("name", ""),
            data.get("password", ""),
            "owner",
        )
    except AccountError as error:
        return Template(
            "setup.html",
            context={"errors": [str(error)], "form": data},
            status_code=400,
        )
    user = await service.authenticate(data["email"], data["password"])
    assert user is not None and user.id == user_id
    token = await service.start_session(user)
    return _logged_in(request, user, token, "/admin/inboxes")


@get("/login", include_in_schema=False)
async def login_page(request: Request, next: FromQuery[str | None] = None) -> Response:
    if not await service.user_count():
        return Redirect("/setup")
    return Template("login.html", context={"errors": [], "next": _safe_next(next)})


@post("/login", include_in_schema=False)
async def login_submit(request: Request, data: Form) -> Response:
    email = data.get("email", "")
    ip = request.client.host if request.client else None
    limiter = _login_limiter(request)
    try:
        login_throttle.check(limiter, email, ip)
    except login_throttle.LoginThrottled as throttled:
        return _login_refused(data, str(throttled), 429, throttled.wait_seconds)

    user = await service.authenticate(email, data.get("password", ""))
    if user is None:
        await login_throttle.record_failure(limiter, email, ip)
        return _login_refused(
            data, "That email and password do not match an active account.", 400
        )

    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await service.end_session(old)
    token = await service.start_session(user)
    await service.audit(
        user.workspace_id,
        user.id,
        "user.login",
        "user",
        user.id,
        ip=ip,
    )
    return _logged_in(request, user, token, data.get("next"))


def _login_limiter(request: Request) -> SlidingWindowLimiter:
    return request.app.state.setdefault("login_limiter", SlidingWindowLimiter())


def _login_refused(
    data: dict[str, Any], error: str, status: int, retry_after: float | None = None
) -> Template:
    return Template(
        "login.html",
        context={
            "errors": [error],
            "next": _safe_next(data.get("next")),
            "email": data.get("email", ""),
        },
        status_code=status,
        headers={"retry-after": str(math.ceil(retry_after))} if retry_after else None,
    )


@post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await service.end_session(token)
    response = Redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@get("/account", guards=[require_login], include_in_schema=False)
async def account_page(request: Request) -> Template:
    user = await current_user(request)
    return Template(
        "account.html", context={"user": user, "errors": [], "saved": False}
    )


@post("/account/password", guards=[require_login], include_in_schema=False)
async def change_password(request: Request, data: Form) -> Response:
    user = await current_user(request)
    try:
        await service.change_password(
            user.id, data.get("current", ""), data.get("new", "")
        )
    except AccountError as error:
        return Template(
            "account.html",
            context={"user": user, "errors": [str(error)], "saved": False},
            status_code=400,
        )
    await service.audit(
        user.workspace_id, user.id, "user.password_changed", "user", user.id
    )
    # Every session ended, this one included: log in again with the new password.
    response = Redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    if not await db.fetchval("SELECT EXISTS (SELECT 1 FROM app_user)"):
        return Redirect("/setup")
    return Redirect("/inbox")


ROUTES = [
    setup_page,
    setup_submit,
    login_page,
    login_submit,
    logout,
    account_page,
    change_password,
    home,
]
