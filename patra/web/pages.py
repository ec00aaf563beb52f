"""What every HTML page shares: the signed-in user, navigation and partials.

Controllers call :func:`render` with a full-page template and, optionally, the
small ``_name.html`` partial that answers an htmx request for the same data.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template

from patra import runtime
from patra.accounts.service import CurrentUser
from patra.plugins import call_async
from patra.web.templates import highlight, query_string

__all__ = ["highlight", "menu_links", "query_string", "render", "wants_partial"]


def wants_partial(request: Request) -> bool:
    """An htmx request for a piece of a page (not a boosted navigation)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


async def menu_links(user: CurrentUser) -> list[dict[str, str]]:
    results = await call_async(
        runtime.current().plugins.hook.menu_links,
        user={"id": user.id, "name": user.name, "role": user.role},
    )
    links = [link for result in results for link in result or []]
    return [link for link in links if str(link.get("href", "")).startswith("/")]


async def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    user: CurrentUser | None = None,
    partial: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    """A full page, or ``partial`` when htmx asks for a piece of one."""
    context = {"user": user, **context}
    if partial and wants_partial(request):
        return Template(
            partial, context=context, status_code=status_code, headers=headers
        )
    if user is not None:
        context["menu_links"] = await menu_links(user)
    return Template(template, context=context, status_code=status_code, headers=headers)
