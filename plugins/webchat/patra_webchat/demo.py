"""``/demo/site``: a pretend shop that embeds the widget, only in demo mode."""

from __future__ import annotations

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.response import Template
from patra import db, runtime

from patra_webchat.snippet import script_url


@get("/demo/site", include_in_schema=False)
async def demo_site() -> Template:
    config = runtime.current().config
    if not config.server.demo:
        raise NotFoundException("This page exists only when Patra runs as a demo.")
    inbox_id = await db.fetchval(
        """SELECT id FROM inbox WHERE channel_type = 'webchat' AND connected
           ORDER BY id LIMIT 1"""
    )
    # Same origin as the inbox, so the page works whatever public_url says.
    widget_src = script_url("", inbox_id) if inbox_id is not None else None
    return Template(
        "webchat/demo_site.html",
        context={"widget_src": widget_src},
        headers={"cache-control": "no-store"},
    )
