"""The widget's endpoints under ``/widget/``: thin handlers over :mod:`service`.

Visitors authenticate with the signed token from ``POST /widget/N/session``,
sent as ``Authorization: Bearer`` or, where a browser cannot set headers
(EventSource, download links), as ``?token=``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from pathlib import Path

from litestar import MediaType, Request, Response, Router, get, post
from litestar.channels import ChannelsPlugin
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.types import ASGIApp, Receive, Scope, Send
from patra import runtime
from patra.ratelimit import SlidingWindowLimiter
from patra.storage import BlobNotFound
from patra.web.downloads import content_disposition
from patra.web.live import event_stream

from patra_webchat import service, tokens
from patra_webchat.settings import current_settings

logger = logging.getLogger(__name__)

WIDGET_JS = Path(__file__).parent / "static" / "widget.js"
JSON_BODY_LIMIT = 64 * 1024
UPLOAD_OVERHEAD = 64 * 1024
_SCRIPT_NAME = re.compile(r"^(\d{1,18})\.js$")
_INBOX_PATH = re.compile(r"^/widget/(\d{1,18})(?:/|\.js$)")
ORIGIN_CACHE_SECONDS = 10.0


def _error(message: str, status: int, headers: dict | None = None) -> Response:
    return Response(
        {"error": message, "status": status},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


# --- errors as JSON ---------------------------------------------------------


def _chat_unavailable(_: Request, error: service.ChatUnavailable) -> Response:
    return _error(
        "This chat does not exist or is switched off; check the inbox id in the "
        "embed snippet.",
        404,
    )


def _invalid_token(_: Request, error: tokens.InvalidToken) -> Response:
    logger.info("Refused a web chat visitor token (%s)", error)
    return _error(
        "Your chat session is not valid any more; start a new chat.",
        401,
        {"www-authenticate": 'Bearer realm="webchat"'},
    )


def _input_error(_: Request, error: service.VisitorInputError) -> Response:
    return _error(str(error), error.status)


# --- rate limits ------------------------------------------------------------


def _limiter(request: Request) -> SlidingWindowLimiter:
    return request.app.state.setdefault("webchat_limiter", SlidingWindowLimiter())


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit(request: Request, key: str, limit: int, window: float) -> None:
    wait = _limiter(request).hit(key, limit, window)
    if wait is not None:
        seconds = int(wait) + 1
        raise HTTPException(
            status_code=429,
            detail=f"Too many requests at once; wait {seconds} seconds and try again.",
            headers={"retry-after": str(seconds)},
        )


def _limit_writes(request: Request, visitor: tokens.Visitor | None = None) -> None:
    settings = current_settings()
    _limit(request, f"ip:{_client_ip(request)}", settings.ip_writes_per_minute, 60)
    if visitor is not None:
        _limit(
            request,
            f"visitor:{visitor.visitor_id}",
            settings.visitor_messages_per_minute,
            60,
        )


def _limit_reads(request: Request) -> None:
    limit = current_settings().ip_reads_per_minute
    _limit(request, f"reads:{_client_ip(request)}", limit, 60)


# --- helpers ----------------------------------------------------------------


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token", "")


def _visitor(request: Request, inbox: service.ChatInbox) -> tokens.Visitor:
    return service.read_token(inbox, _token(request))


async def _json_body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise service.VisitorInputError(
            "The request body is not valid JSON; send an object such as "
            '{"text": "Hello", "idempotency_key": "..."}.'
        ) from None
    if not isinstance(body, dict):
        raise service.VisitorInputError("The request body must be a JSON object.")
    return body


# --- handlers ---------------------------------------------------------------


@get("/{script_name:str}", media_type="text/javascript")
async def widget_script(script_name: FromPath[str]) -> Response:
    """The widget itself; the snippet loads it as ``/widget/INBOX.js``."""
    match = _SCRIPT_NAME.match(script_name)
    if match is None:
        raise NotFoundException(
            "No such widget file; the snippet ends in /widget/N.js."
        )
    await service.chat_inbox(int(match.group(1)))
    return Response(
        WIDGET_JS.read_bytes(),
        media_type="text/javascript",
        headers={
            "cache-control": "public, max-age=300",
            # Loaded by pages of other sites, by design.
            "cross-origin-resource-policy": "cross-origin",
        },
    )


@get("/{inbox_id:int}/config")
async def widget_config(inbox_id: FromPath[int]) -> Response:
    inbox = await service.chat_inbox(inbox_id)
    return Response(
        service.widget_config(inbox), headers={"cache-control": "public, max-age=60"}
    )


@post("/{inbox_id:int}/session", request_max_body_size=JSON_BODY_LIMIT)
async def start_session(request: Request, inbox_id: FromPath[int]) -> Response:
    """Start a chat: a new visitor id, signed into a token the widget keeps."""
    inbox = await service.chat_inbox(inbox_id)
    body = await _json_body(request)
    settings = current_settings()
    _limit(
        request,
        f"sessions:{_client_ip(request)}",
        settings.ip_sessions_per_hour,
        3600,
    )
    _limit_writes(request)
    visitor, token = service.start_visitor(
        inbox, str(body.get("name") or ""), str(body.get("email") or "")
    )
    return Response({"token": token, "visitor_id": visitor.visitor_id}, status_code=201)


@get("/{inbox_id:int}/messages")
async def list_messages(
    request: Request, inbox_id: FromPath[int], since: FromQuery[int] = 0
) -> Response:
    """The visitor's messages after ``since``; used after every (re)connect."""
    _limit_reads(request)
    inbox = await service.chat_inbox(inbox_id)
    visitor = _visitor(request, inbox)
    page = await service.visible_messages(visitor, since)
    return Response(page, headers={"cache-control": "no-store"})


@post("/{inbox_id:int}/messages", request_max_body_size=JSON_BODY_LIMIT)
async def send_message(request: Request, inbox_id: FromPath[int]) -> Response:
    """Send a text message; a retry with the same idempotency_key is stored once."""
    inbox = await service.chat_inbox(inbox_id)
    visitor = _visitor(request, inbox)
    body = await _json_body(request)
    client_key = service.check_client_key(body.get("idempotency_key"))
    text = service.check_text(body.get("text"))
    _limit_writes(request, visitor)
    message, duplicate = await service.post_message(
        inbox, visitor, client_key, text, str(body.get("page_url") or "")
    )
    return Response(
        {"message": message, "duplicate": duplicate},
        status_code=200 if duplicate else 201,
    )


def _upload_limit() -> int:
    return runtime.current().config.storage.max_upload_mb * 1024 * 1024


@post("/{inbox_id:int}/uploads")
async def send_file(request: Request, inbox_id: FromPath[int]) -> Response:
    """Send a file (multipart: ``file``, ``idempotency_key``, optional ``text``)."""
    inbox = await service.chat_inbox(inbox_id)
    visitor = _visitor(request, inbox)
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > _upload_limit() + UPLOAD_OVERHEAD:
        raise service.VisitorInputError(
            f"Files may be at most {_upload_limit() // (1024 * 1024)} MB.", 413
        )
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise service.VisitorInputError(
            "Send the file as multipart/form-data with a field named file."
        )
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise service.VisitorInputError("Choose a file to send (field name: file).")
    client_key = service.check_client_key(form.get("idempotency_key"))
    text = service.check_text(form.get("text") or "", allow_empty=True)
    attachment = service.check_file(
        upload.filename or "", upload.content_type or "", await upload.read()
    )
    _limit_writes(request, visitor)
    message, duplicate = await service.post_message(
        inbox, visitor, client_key, text, str(form.get("page_url") or ""), attachment
    )
    return Response(
        {"message": message, "duplicate": duplicate},
        status_code=200 if duplicate else 201,
    )


@get("/{inbox_id:int}/stream")
async def visitor_stream(
    request: Request,
    inbox_id: FromPath[int],
    channels: NamedDependency[ChannelsPlugin],
) -> ServerSentEvent:
    """Live messages of the visitor's conversation, as ``message`` events.

    Only events of this inbox are looked at, and each message is re-read
    through the visitor's visibility rules before anything is sent, so notes
    and other visitors' messages never reach the stream.
    """
    _limit_reads(request)
    inbox = await service.chat_inbox(inbox_id)
    visitor = _visitor(request, inbox)

    def concerns_inbox(event: dict) -> bool:
        return event.get("inbox_id") == inbox.id and event.get("type") in (
            "message.created",
            "message.updated",
        )

    async def messages():
        # Closing this generator (the visitor left) must close the inner one at
        # once, so its subscription ends now rather than whenever it is collected.
        async with contextlib.aclosing(
            event_stream(channels, concerns_inbox)
        ) as events:
            async for item in events:
                if item.comment is not None:  # connected / heartbeat
                    yield item
                    continue
                event = json.loads(item.data)
                message = await service.visible_message(visitor, event["message_id"])
                if message is not None:
                    yield ServerSentEventMessage(
                        data=json.dumps(message), event="message", id=message["id"]
                    )

    return ServerSentEvent(
        messages(),
        retry_duration=3000,
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


@get("/{inbox_id:int}/attachments/{attachment_id:int}")
async def download_attachment(
    request: Request, inbox_id: FromPath[int], attachment_id: FromPath[int]
) -> Response:
    _limit_reads(request)
    inbox = await service.chat_inbox(inbox_id)
    visitor = _visitor(request, inbox)
    try:
        attachment = await service.visitor_attachment(visitor, attachment_id)
    except (LookupError, BlobNotFound):
        raise NotFoundException("This file is not part of your chat.") from None
    return Response(
        attachment["data"],
        media_type="application/octet-stream",
        headers={
            "content-disposition": content_disposition(attachment["filename"]),
            "cache-control": "private, no-store",
            "content-security-policy": "default-src 'none'; sandbox",
        },
    )


# --- CORS -------------------------------------------------------------------


async def _allowed_origins(scope: Scope, inbox_id: int | None) -> list[str] | None:
    """The inbox's allowed origins; ``[]`` allows any, ``None`` for no such inbox.

    Kept a few seconds per process so that every request does not re-read them.
    """
    if inbox_id is None:
        return []
    origin_cache = scope["app"].state.setdefault("webchat_origins", {})
    cached = origin_cache.get(inbox_id)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    try:
        origins = (await service.chat_inbox(inbox_id)).origins
    except service.ChatUnavailable:
        origins = None
    origin_cache[inbox_id] = (time.monotonic() + ORIGIN_CACHE_SECONDS, origins)
    return origins


def _origin_is_allowed(origin: str, allowed: list[str] | None) -> bool:
    if not allowed:  # any origin; an unknown inbox answers 404 in the handler
        return True
    public_origin = runtime.current().config.public_url.lower()
    return origin.lower() in allowed or origin.lower() == public_origin


CORS_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-allow-headers", b"authorization, content-type"),
    (b"access-control-max-age", b"600"),
]


def cors_middleware(app: ASGIApp) -> ASGIApp:
    """Let pages on other sites call the widget endpoints, if the inbox allows."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if scope["type"] != "http" or not origin:
            await app(scope, receive, send)
            return

        match = _INBOX_PATH.match(scope["path"])
        inbox_id = int(match.group(1)) if match else None
        allowed = await _allowed_origins(scope, inbox_id)
        if not _origin_is_allowed(origin, allowed):
            logger.info("Refused web chat request from origin %s", origin)
            refusal = _error(
                f"The site {origin} may not use this chat; an admin can add it under "
                "the inbox's allowed sites.",
                403,
            )
            await refusal.to_asgi_response(app=None, request=None)(scope, receive, send)
            return

        allow = [(b"access-control-allow-origin", origin.encode("latin-1"))]
        allow.append((b"vary", b"Origin"))
        if scope["method"] == "OPTIONS":
            preflight = Response(b"", status_code=204)
            asgi = preflight.to_asgi_response(app=None, request=None)

            async def send_preflight(message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message["headers"], *allow, *CORS_HEADERS]
                await send(message)

            await asgi(scope, receive, send_preflight)
            return

        async def send_with_cors(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *allow]
            await send(message)

        await app(scope, receive, send_with_cors)

    return middleware


widget_router = Router(
    path="/widget",
    route_handlers=[
        widget_script,
        widget_config,
        start_session,
        list_messages,
        send_message,
        send_file,
        visitor_stream,
        download_attachment,
    ],
    middleware=[cors_middleware],
    exception_handlers={
        service.ChatUnavailable: _chat_unavailable,
        tokens.InvalidToken: _invalid_token,
        service.VisitorInputError: _input_error,
    },
    include_in_schema=False,
)
