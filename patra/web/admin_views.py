"""Admin pages: inboxes (channel settings, members, setup hints) and agents."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from markupsafe import Markup

from patra import db, runtime
from patra.accounts import service
from patra.accounts.service import AccountError, CurrentUser
from patra.channels import Health
from patra.inbox import inboxes
from patra.inbox.inboxes import InvalidSettings
from patra.inbox.outbound import channel_for_inbox
from patra.plugins import PluginError, call_async
from patra.web.auth import current_user, require_admin
from patra.web.downloads import content_disposition
from patra.web.pages import render

logger = logging.getLogger(__name__)

SETTING_PREFIX = "setting_"


def _channel_types() -> dict:
    return dict(sorted(runtime.current().plugins.channel_types.items()))


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {key: form.get(key) for key in form}


def _settings_from(form: dict[str, Any], channel) -> dict[str, Any]:
    """The channel's settings from a submitted form.

    A browser sends nothing for an unticked checkbox, so every boolean field
    the form leaves out is false, not its default.
    """
    settings = {
        key[len(SETTING_PREFIX) :]: value
        for key, value in form.items()
        if key.startswith(SETTING_PREFIX)
    }
    for field in channel.settings if channel else ():
        if field.kind == "boolean":
            settings.setdefault(field.name, False)
    return settings


async def _get_inbox(user: CurrentUser, inbox_id: int) -> dict:
    try:
        return await inboxes.get_inbox(user.workspace_id, inbox_id)
    except LookupError:
        raise NotFoundException(f"Inbox {inbox_id} does not exist.") from None


@get("/admin", guards=[require_admin], include_in_schema=False)
async def admin_home() -> Redirect:
    return Redirect("/admin/inboxes")


@get("/admin/inboxes", guards=[require_admin], include_in_schema=False)
async def inbox_list(request: Request) -> Template:
    user = await current_user(request)
    context = {
        "inboxes": await inboxes.list_inboxes(user.workspace_id),
        "channel_types": _channel_types(),
    }
    return await render(request, "admin/inboxes.html", context, user=user)


@get("/admin/inboxes/new", guards=[require_admin], include_in_schema=False)
async def new_inbox(request: Request) -> Template:
    user = await current_user(request)
    channel_types = _channel_types()
    chosen = request.query_params.get("channel_type") or ""
    context = {
        "channel_types": channel_types,
        "channel": channel_types.get(chosen),
        "form": {},
        "problems": {},
    }
    return await render(
        request,
        "admin/inbox_new.html",
        context,
        user=user,
        partial="admin/_inbox_fields.html",
    )


@post("/admin/inboxes", guards=[require_admin], include_in_schema=False)
async def create_inbox(request: Request) -> Response:
    user = await current_user(request)
    form = await _form(request)
    channel_types = _channel_types()
    channel = channel_types.get(str(form.get("channel_type") or ""))
    try:
        if channel is None:
            raise InvalidSettings({"channel_type": "Choose a channel type."})
        inbox_id = await inboxes.create_inbox(
            user.workspace_id,
            str(form.get("name") or ""),
            channel.name,
            _settings_from(form, channel),
            actor_id=user.id,
        )
    except (InvalidSettings, PluginError) as error:
        problems = getattr(error, "problems", {"channel_type": str(error)})
        context = {
            "channel_types": channel_types,
            "channel": channel,
            "form": form,
            "problems": problems,
        }
        return await render(
            request, "admin/inbox_new.html", context, user=user, status_code=400
        )
    return Redirect(f"/admin/inboxes/{inbox_id}")


async def _inbox_context(user: CurrentUser, inbox: dict) -> dict:
    current = runtime.current()
    channel = current.plugins.channel_types.get(inbox["channel_type"])
    saved_secrets = set(current.secrets.open(inbox["secrets"]) or {})
    hints = await call_async(
        current.plugins.hook.inbox_setup_hints,
        inbox={key: value for key, value in inbox.items() if key != "secrets"},
        public_url=current.config.public_url,
    )
    return {
        "inbox": inbox,
        "channel": channel,
        "saved_secrets": saved_secrets,
        "hints": [Markup(hint) for hint in hints],
        "users": await service.list_users(user.workspace_id),
        "members": set(await inboxes.members(inbox["id"])),
        "problems": {},
        "saved": False,
        "health": await _health(inbox),
        "connection_results": None,
    }


async def _health(inbox: dict):
    channel = await _channel_for(inbox)
    if channel is None:
        return None
    try:
        return await channel.health()
    # A plugin's failing health check must not break the page.
    except Exception as error:  # noqa: BLE001
        logger.warning(
            "Health check of inbox %s failed: %s", inbox["id"], type(error).__name__
        )
        return Health(ok=False, detail="The health check itself failed; see the log.")


@get("/admin/inboxes/{inbox_id:int}", guards=[require_admin], include_in_schema=False)
async def inbox_page(request: Request, inbox_id: FromPath[int]) -> Template:
    user = await current_user(request)
    inbox = await _get_inbox(user, inbox_id)
    context = await _inbox_context(user, inbox)
    context["saved"] = request.query_params.get("saved") == "1"
    return await render(request, "admin/inbox.html", context, user=user)


async def _channel_for(inbox: dict):
    """The inbox's channel object, or None when its plugin is not enabled."""
    try:
        return await channel_for_inbox(inbox["id"])
    except PluginError:
        return None


@post(
    "/admin/inboxes/{inbox_id:int}/test",
    guards=[require_admin],
    include_in_schema=False,
)
async def test_inbox_connection(request: Request, inbox_id: FromPath[int]) -> Template:
    """Ask the channel to reach its servers and show each one's answer."""
    user = await current_user(request)
    inbox = await _get_inbox(user, inbox_id)
    context = await _inbox_context(user, inbox)
    channel = await _channel_for(inbox)
    if channel is None:
        context["connection_results"] = [
            (
                inbox["channel_type"],
                False,
                "The plugin for this channel is not enabled.",
            )
        ]
    else:
        context["connection_results"] = await channel.test_connection() or [
            (channel.label or channel.name, True, "This channel has no server to test.")
        ]
    return await render(request, "admin/inbox.html", context, user=user)


@post("/admin/inboxes/{inbox_id:int}", guards=[require_admin], include_in_schema=False)
async def update_inbox(request: Request, inbox_id: FromPath[int]) -> Response:
    user = await current_user(request)
    inbox = await _get_inbox(user, inbox_id)
    form = await _form(request)
    try:
        await inboxes.update_inbox(
            user.workspace_id,
            inbox_id,
            str(form.get("name") or ""),
            _settings_from(
                form, runtime.current().plugins.channel_types.get(inbox["channel_type"])
            ),
            connected=form.get("connected") == "on",
            actor_id=user.id,
        )
    except (InvalidSettings, PluginError) as error:
        context = await _inbox_context(user, inbox)
        context["problems"] = getattr(error, "problems", {"name": str(error)})
        return await render(
            request, "admin/inbox.html", context, user=user, status_code=400
        )
    return Redirect(f"/admin/inboxes/{inbox_id}?saved=1")


@post(
    "/admin/inboxes/{inbox_id:int}/members",
    guards=[require_admin],
    include_in_schema=False,
)
async def inbox_members(request: Request, inbox_id: FromPath[int]) -> Response:
    user = await current_user(request)
    await _get_inbox(user, inbox_id)
    form = await request.form()
    user_ids = [
        int(value) for value in form.getall("user_id", []) if str(value).isdigit()
    ]
    await inboxes.set_members(user.workspace_id, inbox_id, user_ids, actor_id=user.id)
    return Redirect(f"/admin/inboxes/{inbox_id}?saved=1")


async def _agents_context(user: CurrentUser) -> dict:
    return {
        "users": await service.list_users(user.workspace_id),
        "inboxes": await inboxes.list_inboxes(user.workspace_id),
        "roles": service.ROLES if user.role == "owner" else ("admin", "agent"),
        "errors": [],
        "form": {},
    }


@get("/admin/agents", guards=[require_admin], include_in_schema=False)
async def agent_list(request: Request) -> Template:
    user = await current_user(request)
    return await render(
        request, "admin/agents.html", await _agents_context(user), user=user
    )


@post("/admin/agents", guards=[require_admin], include_in_schema=False)
async def create_agent(request: Request) -> Response:
    user = await current_user(request)
    form = await _form(request)
    context = await _agents_context(user)
    role = str(form.get("role") or "agent")
    try:
        if role not in context["roles"]:
            raise AccountError("Only the owner can add another owner.")
        new_id = await service.create_user(
            user.workspace_id,
            str(form.get("email") or ""),
            str(form.get("name") or ""),
            str(form.get("password") or ""),
            role,
        )
    except AccountError as error:
        context.update(errors=[str(error)], form=form)
        return await render(
            request, "admin/agents.html", context, user=user, status_code=400
        )
    inbox_ids = [
        int(value)
        for value in (await request.form()).getall("inbox_id", [])
        if str(value).isdigit()
    ]
    for inbox_id in inbox_ids:
        current_members = await inboxes.members(inbox_id)
        await inboxes.set_members(
            user.workspace_id, inbox_id, [*current_members, new_id], actor_id=user.id
        )
    await service.audit(
        user.workspace_id,
        user.id,
        "user.created_by_admin",
        "user",
        new_id,
        {"role": role},
    )
    return Redirect("/admin/agents")


async def _set_active(request: Request, user_id: int, active: bool) -> Response:
    user = await current_user(request)
    users = {row["id"]: row for row in await service.list_users(user.workspace_id)}
    target = users.get(user_id)
    if target is None:
        raise NotFoundException(f"User {user_id} does not exist.")
    problem = None
    if user_id == user.id:
        problem = "You cannot deactivate your own account."
    elif target["role"] == "owner" and user.role != "owner":
        problem = "Only the owner can change another owner."
    if problem:
        context = await _agents_context(user)
        context["errors"] = [problem]
        return await render(
            request, "admin/agents.html", context, user=user, status_code=400
        )
    await service.set_active(user.workspace_id, user_id, active, user.id)
    return Redirect("/admin/agents")


@post(
    "/admin/agents/{user_id:int}/deactivate",
    guards=[require_admin],
    include_in_schema=False,
)
async def deactivate_agent(request: Request, user_id: FromPath[int]) -> Response:
    return await _set_active(request, user_id, False)


@post(
    "/admin/agents/{user_id:int}/activate",
    guards=[require_admin],
    include_in_schema=False,
)
async def activate_agent(request: Request, user_id: FromPath[int]) -> Response:
    return await _set_active(request, user_id, True)


@get("/admin/quarantine", guards=[require_admin], include_in_schema=False)
async def quarantine_list(request: Request) -> Template:
    user = await current_user(request)
    items = await db.fetch(
        """SELECT q.id, q.channel_type, q.reason, q.created_at,
                  length(q.payload) AS size, i.name AS inbox_name
           FROM quarantine_item q LEFT JOIN inbox i ON i.id = q.inbox_id
           WHERE (q.workspace_id = $1 OR q.workspace_id IS NULL)
             AND q.resolved_at IS NULL
           ORDER BY q.id DESC LIMIT 200""",
        user.workspace_id,
    )
    return await render(request, "admin/quarantine.html", {"items": items}, user=user)


async def _quarantined(user: CurrentUser, item_id: int) -> dict:
    row = await db.fetchrow(
        """SELECT * FROM quarantine_item
           WHERE id = $1 AND (workspace_id = $2 OR workspace_id IS NULL)""",
        item_id,
        user.workspace_id,
    )
    if row is None:
        raise NotFoundException("This quarantined item does not exist.")
    return row


@get(
    "/admin/quarantine/{item_id:int}/payload",
    guards=[require_admin],
    include_in_schema=False,
)
async def quarantine_payload(request: Request, item_id: FromPath[int]) -> Response:
    user = await current_user(request)
    row = await _quarantined(user, item_id)
    extension = ".eml" if row["channel_type"] == "email" else ".txt"
    return Response(
        bytes(row["payload"]),
        media_type="application/octet-stream",
        headers={
            "content-disposition": content_disposition(
                f"quarantine-{item_id}{extension}"
            ),
            "x-content-type-options": "nosniff",
        },
    )


@post(
    "/admin/quarantine/{item_id:int}/resolve",
    guards=[require_admin],
    include_in_schema=False,
)
async def quarantine_resolve(request: Request, item_id: FromPath[int]) -> Redirect:
    user = await current_user(request)
    await _quarantined(user, item_id)
    await db.execute(
        "UPDATE quarantine_item SET resolved_at = now() WHERE id = $1", item_id
    )
    await service.audit(
        user.workspace_id, user.id, "quarantine.resolved", "quarantine_item", item_id
    )
    return Redirect("/admin/quarantine")


ROUTES = [
    admin_home,
    quarantine_list,
    quarantine_payload,
    quarantine_resolve,
    inbox_list,
    new_inbox,
    create_inbox,
    inbox_page,
    update_inbox,
    test_inbox_connection,
    inbox_members,
    agent_list,
    create_agent,
    deactivate_agent,
    activate_agent,
]
