"""Errors as a person meets them: JSON for API clients, a page for the inbox."""

from __future__ import annotations

import logging
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    NotFoundException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_401_UNAUTHORIZED

from patra.web.security import HEADERS as SECURITY_HEADERS

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


# Litestar's own short messages, said as sentences that tell what to do.
PLAIN_WORDS = {
    "Not Found": "Nothing exists at this address; check the link or the number in it.",
    "Method Not Allowed": "This address does not accept that kind of request; "
    "check the method in the API documentation.",
    "Request Entity Too Large": "The request is larger than this server accepts; "
    "send a smaller file or split the message.",
    "CSRF token verification failed": "This form expired or came from another "
    "page; reload the page and try again.",
}


def _sentence(detail: str) -> str:
    if detail in PLAIN_WORDS:
        return PLAIN_WORDS[detail]
    if detail.startswith("Validation failed for "):
        return (
            "A value in the request is not valid; check the parameters "
            f"({detail.removeprefix('Validation failed for ')})."
        )
    return detail


def handle_http_exception(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    detail = _sentence(exc.detail or TITLES.get(status, "Something went wrong"))
    if status >= 500:
        logger.error("Error %s on %s %s", status, request.method, request.url.path)
        detail = "Something went wrong on our side; the error was logged."
    # Errors raised before a route matched (an unknown path) skip the route
    # middleware, so the security headers are added here as well.
    headers = {**SECURITY_HEADERS, **(getattr(exc, "headers", None) or {})}

    if request.url.path.startswith(MACHINE_PREFIXES):
        body: dict = {"error": detail, "status": status}
        if getattr(exc, "extra", None):
            body["details"] = exc.extra
        return Response(
            body, status_code=status, media_type=MediaType.JSON, headers=headers
        )

    if status == HTTP_401_UNAUTHORIZED:
        target = "/login?next=" + quote(request.url.path)
        if request.headers.get("hx-request"):
            return Response("", status_code=200, headers={"HX-Redirect": target})
        return Redirect(target, headers=SECURITY_HEADERS)

    if request.headers.get("hx-request") and not request.headers.get("hx-boosted"):
        # A piece of a page asked for this: show the error in the page's flash area.
        return Template(
            "_flash.html",
            context={"error": detail, "status": status},
            status_code=status,
            headers={**headers, "HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )

    return Template(
        "error.html",
        context={
            "status": status,
            "title": TITLES.get(status, "Error"),
            "detail": detail,
        },
        status_code=status,
        headers=headers,
    )


def handle_out_of_range(request: Request, exc: Exception) -> Response:
    """A number in the address too large for any id: nothing can exist there."""
    if isinstance(exc, OverflowError) or "out of int64 range" in str(exc):
        return handle_http_exception(request, NotFoundException())
    return handle_server_error(request, exc)


def handle_server_error(request: Request, exc: Exception) -> Response:
    """Any other exception: logged with its traceback, answered like a 500."""
    logger.exception(
        "Unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return handle_http_exception(request, InternalServerException())
