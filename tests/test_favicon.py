"""Browsers find the theme's icon instead of a 404 on every page."""

from __future__ import annotations

import re


async def test_favicon_ico_redirects_to_the_themes_icon(client):
    response = await client.get("/favicon.ico", follow_redirects=True)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.content


async def test_pages_link_an_icon_that_loads(client, workspace):
    page = await client.get("/login")

    links = re.findall(r'<link rel="icon" href="([^"]+)"', page.text)
    assert len(links) == 1
    icon = await client.get(links[0])
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
