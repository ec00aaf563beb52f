"""JSON API v1 with bearer tokens."""

from litestar import Router

api_router = Router(path="/api/v1", route_handlers=[])
