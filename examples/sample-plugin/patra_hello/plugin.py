"""A minimal Patra plugin: one page and a link to it in the navigation."""

from litestar import get

from patra.hookspecs import hookimpl


@get("/hello", include_in_schema=False)
async def hello() -> str:
    return "Hello from a plugin"


@hookimpl
def register_routes():
    return [hello]


@hookimpl
def menu_links(user):
    return [{"href": "/hello", "label": "Hello"}]
