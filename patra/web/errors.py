"""Errors as a person meets them: JSON for API clients, a page for the inbox."""

from __future__ import annotations

import logging
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_401_UNAUTHORIZED

logger = logging.getLogger(__name__)

MACHINE_PREFIXES = ("/api/", "/widget/", "/webhooks/", "/events")

TITLES = {
    400: "The request could not be understood",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    413: "Too large",
    429: "Too many requests",
}


def handle_http_exception(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    detail = exc.detail or TITLES.get(status, "Something went wrong")
    if status >= 500:
        logger.error("Error %s on %s %s", status, request.method, request.url.path)
        detail = "Something went wrong on our side; the error was logged."
    headers = getattr(exc, "headers", None) or {}

    if request.url.path.startswith(MACHINE_PREFIXES):
        body: dict = {"error": detail, "status": status}
        if getattr(exc, "extra", None):
            body["details"] = exc.extra
        return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)

    if status == HTTP_401_UNAUTHORIZED:
        target = "/login?next=" + quote(request.url.path)
        if request.headers.get("hx-request"):
            return Response("", status_code=200, headers={"HX-Redirect": target})
        return Redirect(target)

    return Template(
        "error.html",
        context={"status": status, "title": TITLES.get(status, "Error"), "detail": detail},
        status_code=status,
        headers=headers,
    )
