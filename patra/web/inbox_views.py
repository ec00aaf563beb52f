"""The agent inbox (HTML + htmx): conversation list, conversation, search.

Thin controllers over :mod:`patra.inbox.conversations` and
:mod:`patra.inbox.outbound`. Full pages for plain requests, ``_name.html``
partials for htmx ones. Nothing here changes state on GET.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from patra import runtime
from patra.accounts.service import CurrentUser, visible_inbox_ids
from patra.inbox import conversations
from patra.inbox.conversations import ConversationNotFound, InvalidChange
from patra.inbox.inboxes import list_inboxes
from patra.inbox.outbound import AttachmentRefused, Upload, create_agent_message
from patra.web.auth import current_user, require_login
from patra.web.downloads import content_disposition
from patra.web.pages import query_string, render, wants_partial

logger = logging.getLogger(__name__)

# The largest id a bigint column holds.
MAX_ID = 2**63 - 1

# Shown inline (never SVG or HTML: those can carry script).
INLINE_IMAGE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
}


class ListFilters:
    """The list's tab, status and inbox, read from the query string."""

    def __init__(self, request: Request):
        params = request.query_params
        self.tab = params.get("tab") or "all"
        self.status = params.get("status") or "open"
        if self.tab not in conversations.TABS:
            self.tab = "all"
        if self.status not in conversations.STATUSES:
            self.status = "open"
        inbox = params.get("inbox") or ""
        self.inbox_id = int(inbox) if inbox.isdigit() else None
        self.cursor = params.get("cursor") or None

    def query(self, **changes: Any) -> str:
        values = {"tab": self.tab, "status": self.status, "inbox": self.inbox_id}
        values.update(changes)
        return query_string(**values)


async def _list_context(
    user: CurrentUser, filters: ListFilters, current_id=None
) -> dict:
    try:
        page = await conversations.list_conversations(
            user,
            tab=filters.tab,
            status=filters.status,
            inbox_id=filters.inbox_id,
            cursor=filters.cursor,
        )
    except InvalidChange:
        filters.cursor = None
        page = await conversations.list_conversations(
            user, tab=filters.tab, status=filters.status, inbox_id=filters.inbox_id
        )
    visible = set(await visible_inbox_ids(user))
    inboxes = [
        inbox
        for inbox in await list_inboxes(user.workspace_id)
        if inbox["id"] in visible
    ]
    return {
        "page": page,
        "filters": filters,
        "counts": await conversations.tab_counts(user, filters.status),
        "inboxes": inboxes,
        "tabs": conversations.TABS,
        "statuses": conversations.STATUSES,
        "current_id": current_id,
    }


@get("/inbox", guards=[require_login], include_in_schema=False)
async def inbox_page(request: Request) -> Template:
    user = await current_user(request)
    filters = ListFilters(request)
    context = await _list_context(user, filters)
    return await render(request, "inbox.html", context, user=user)


@get("/inbox/list", guards=[require_login], include_in_schema=False)
async def conversation_list(request: Request) -> Template:
    """The list pane (a refresh), or the next page of items (``cursor``)."""
    user = await current_user(request)
    filters = ListFilters(request)
    current = request.query_params.get("current") or ""
    context = await _list_context(
        user, filters, int(current) if current.isdigit() else None
    )
    partial = "_conversation_items.html" if filters.cursor else "_list_pane.html"
    if not wants_partial(request):
        return await render(request, "inbox.html", context, user=user)
    return Template(partial, context={"user": user, **context})


async def _conversation_context(user: CurrentUser, conversation_id: int) -> dict:
    try:
        conversation = await conversations.get_conversation(user, conversation_id)
    except ConversationNotFound:
        raise NotFoundException(
            "This conversation does not exist or is not in one of your inboxes."
        ) from None
    return {
        "conversation": conversation,
        "agents": await conversations.assignable_agents(user, conversation["inbox_id"]),
        "statuses": conversations.STATUSES,
    }


@get(
    "/inbox/conversations/{conversation_id:int}",
    guards=[require_login],
    include_in_schema=False,
)
async def conversation_page(
    request: Request, conversation_id: FromPath[int]
) -> Template:
    user = await current_user(request)
    context = await _conversation_context(user, conversation_id)
    context["messages"] = await conversations.list_messages(conversation_id)
    context["contact"] = await conversations.get_contact(
        user, context["conversation"]["contact_id"]
    )
    context.update(await _list_context(user, ListFilters(request), conversation_id))
    context.setdefault("composer", {})
    return await render(request, "conversation.html", context, user=user)


@get(
    "/inbox/conversations/{conversation_id:int}/header",
    guards=[require_login],
    include_in_schema=False,
)
async def conversation_header(
    request: Request, conversation_id: FromPath[int]
) -> Template:
    user = await current_user(request)
    context = await _conversation_context(user, conversation_id)
    context["filters"] = ListFilters(request)
    return Template("_conversation_header.html", context={"user": user, **context})


@get(
    "/inbox/conversations/{conversation_id:int}/details",
    guards=[require_login],
    include_in_schema=False,
)
async def conversation_details(
    request: Request, conversation_id: FromPath[int]
) -> Template:
    """The contact panel with labels: refreshed when another agent acts."""
    user = await current_user(request)
    context = await _conversation_context(user, conversation_id)
    context["contact"] = await conversations.get_contact(
        user, context["conversation"]["contact_id"]
    )
    return Template("_contact_panel.html", context={"user": user, **context})


@get(
    "/inbox/conversations/{conversation_id:int}/messages",
    guards=[require_login],
    include_in_schema=False,
)
async def new_messages(request: Request, conversation_id: FromPath[int]) -> Template:
    """Messages after ``after`` (an id), oldest first, to append to the view."""
    user = await current_user(request)
    await _conversation_context(user, conversation_id)
    after = request.query_params.get("after") or "0"
    messages = await conversations.list_messages(
        conversation_id, after_id=int(after) if after.isdigit() else 0
    )
    return Template("_messages.html", context={"user": user, "messages": messages})


@get(
    "/inbox/messages/{message_id:int}", guards=[require_login], include_in_schema=False
)
async def message_fragment(request: Request, message_id: FromPath[int]) -> Template:
    """One message, re-rendered when its delivery status changes."""
    user = await current_user(request)
    try:
        message = await conversations.get_message(user, message_id)
    except ConversationNotFound:
        raise NotFoundException("This message does not exist.") from None
    return Template("_message.html", context={"user": user, "message": message})


EMAIL_FRAME_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox allow-popups "
    "allow-popups-to-escape-sandbox"
)


def _inline_images(html: str, attachments: list[dict]) -> str:
    """Point ``cid:`` images at the message's stored files."""
    for file in attachments:
        content_id = (file.get("content_id") or "").strip("<>")
        if content_id:
            url = f"/inbox/attachments/{file['id']}?inline=1"
            html = html.replace(f"cid:{content_id}", url)
    return html


@get(
    "/inbox/messages/{message_id:int}/html",
    guards=[require_login],
    include_in_schema=False,
)
async def message_html(request: Request, message_id: FromPath[int]) -> Response:
    """A message's (already sanitized) HTML, for a sandboxed frame.

    The document gets its own policy: no scripts, no forms, no remote images
    (tracking pixels), links open outside the frame.
    """
    user = await current_user(request)
    try:
        message = await conversations.get_message(user, message_id)
    except ConversationNotFound:
        raise NotFoundException("This message does not exist.") from None
    if not message["html"]:
        raise NotFoundException("This message has no formatted version.")
    body = _inline_images(message["html"], message["attachments"])
    document = (
        '<!doctype html><html><head><meta charset="utf-8"><base target="_blank">'
        "</head><body>" + body + "</body></html>"
    )
    return Response(
        document,
        media_type="text/html; charset=utf-8",
        headers={
            "content-security-policy": EMAIL_FRAME_POLICY,
            "x-content-type-options": "nosniff",
            "cache-control": "private, no-store",
        },
    )


async def _uploads(form) -> list[Upload]:
    uploads = []
    for item in form.getall("files", []):
        if not isinstance(item, UploadFile) or not item.filename:
            continue
        uploads.append(
            Upload(
                filename=item.filename,
                content_type=item.content_type or "application/octet-stream",
                data=await item.read(),
            )
        )
    return uploads


def _flash_error(request: Request, message: str, status_code: int = 400) -> Response:
    """An error for an htmx action: shown in the page's flash area."""
    return Template(
        "_flash.html",
        context={"error": message},
        status_code=status_code,
        headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
    )


@post(
    "/inbox/conversations/{conversation_id:int}/messages",
    guards=[require_login],
    status_code=200,
    include_in_schema=False,
)
async def send_message(request: Request, conversation_id: FromPath[int]) -> Response:
    """A reply (queued for delivery) or a private note, with files."""
    user = await current_user(request)
    context = await _conversation_context(user, conversation_id)
    form = await request.form()
    kind = str(form.get("kind") or "message")
    text = str(form.get("text") or "")
    try:
        await create_agent_message(
            workspace_id=user.workspace_id,
            conversation_id=conversation_id,
            user_id=user.id,
            text=text,
            kind=kind,
            uploads=await _uploads(form),
            idempotency_key=str(form.get("idempotency_key") or "")[:100] or None,
        )
    except (AttachmentRefused, ValueError) as error:
        composer = {"text": text, "kind": kind, "error": str(error)}
        if wants_partial(request):
            return Template(
                "_composer.html",
                context={"user": user, "composer": composer, **context},
                status_code=400,
            )
        context["messages"] = await conversations.list_messages(conversation_id)
        context["contact"] = await conversations.get_contact(
            user, context["conversation"]["contact_id"]
        )
        context.update(await _list_context(user, ListFilters(request), conversation_id))
        context["composer"] = composer
        return await render(
            request, "conversation.html", context, user=user, status_code=400
        )
    if wants_partial(request):
        composer = {"kind": kind}
        return Template(
            "_composer.html",
            context={"user": user, "composer": composer, **context},
            headers={"HX-Trigger": "patra:messages"},
        )
    return Redirect(f"/inbox/conversations/{conversation_id}")


def _after_action(request: Request, conversation_id: int) -> Response:
    if wants_partial(request):
        return Response("", headers={"HX-Trigger": "patra:conversation"})
    return Redirect(f"/inbox/conversations/{conversation_id}")


async def _action_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {key: form.get(key) for key in form}


@post(
    "/inbox/conversations/{conversation_id:int}/assign",
    guards=[require_login],
    status_code=200,
    include_in_schema=False,
)
async def assign(request: Request, conversation_id: FromPath[int]) -> Response:
    user = await current_user(request)
    data = await _action_form(request)
    raw = str(data.get("assignee_id") or "").strip()
    if raw == "me":
        raw = str(user.id)
    if raw and not (raw.isascii() and raw.isdigit() and int(raw) <= MAX_ID):
        return _flash_error(
            request,
            "Choose an agent from the list to assign this conversation to, "
            "or Unassigned.",
        )
    try:
        await conversations.assign(user, conversation_id, int(raw) if raw else None)
    except ConversationNotFound:
        raise NotFoundException("This conversation does not exist.") from None
    except InvalidChange as error:
        return _flash_error(request, str(error))
    return _after_action(request, conversation_id)


def parse_local_time(value: str, offset_minutes: str | None) -> datetime:
    """A ``datetime-local`` value in the browser's zone (JS offset) to UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidChange("Choose a valid date and time to snooze until.") from None
    if moment.tzinfo is None:
        offset = (
            int(offset_minutes) if (offset_minutes or "").lstrip("-").isdigit() else 0
        )
        moment = moment.replace(tzinfo=UTC) + timedelta(minutes=offset)
    return moment


@post(
    "/inbox/conversations/{conversation_id:int}/status",
    guards=[require_login],
    status_code=200,
    include_in_schema=False,
)
async def change_status(request: Request, conversation_id: FromPath[int]) -> Response:
    user = await current_user(request)
    data = await _action_form(request)
    status = str(data.get("status") or "")
    try:
        until = None
        if status == "snoozed":
            if not data.get("snoozed_until"):
                raise InvalidChange("Choose until when to snooze the conversation.")
            until = parse_local_time(str(data["snoozed_until"]), data.get("tz_offset"))
            if until <= datetime.now(UTC):
                raise InvalidChange("Choose a time in the future to snooze until.")
        await conversations.set_status(user, conversation_id, status, until)
    except ConversationNotFound:
        raise NotFoundException("This conversation does not exist.") from None
    except InvalidChange as error:
        return _flash_error(request, str(error))
    return _after_action(request, conversation_id)


@post(
    "/inbox/conversations/{conversation_id:int}/labels",
    guards=[require_login],
    status_code=200,
    include_in_schema=False,
)
async def change_labels(request: Request, conversation_id: FromPath[int]) -> Response:
    user = await current_user(request)
    data = await _action_form(request)
    try:
        names = str(data.get("labels") or "").split(",")
        await conversations.set_labels(user, conversation_id, names)
    except ConversationNotFound:
        raise NotFoundException("This conversation does not exist.") from None
    except InvalidChange as error:
        return _flash_error(request, str(error))
    return _after_action(request, conversation_id)


@get(
    "/inbox/attachments/{attachment_id:int}",
    guards=[require_login],
    include_in_schema=False,
)
async def attachment(request: Request, attachment_id: FromPath[int]) -> Response:
    """The file, as a download; safe image types may be shown inline."""
    user = await current_user(request)
    try:
        row = await conversations.get_attachment(user, attachment_id)
    except ConversationNotFound:
        raise NotFoundException("This file does not exist.") from None
    data = await runtime.current().blobs.open(row["blob_key"])
    inline = (
        request.query_params.get("inline") == "1"
        and row["content_type"] in INLINE_IMAGE_TYPES
    )
    media_type = row["content_type"] if inline else "application/octet-stream"
    return Response(
        data,
        media_type=media_type,
        headers={
            "content-disposition": content_disposition(row["filename"], inline),
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
            "cache-control": "private, max-age=3600",
        },
    )


def raw_key_of(message: dict) -> str | None:
    """The blob key of the message exactly as received, when its channel kept it."""
    for section in (message.get("metadata") or {}).values():
        if isinstance(section, dict) and section.get("raw_key"):
            return section["raw_key"]
    return None


@get(
    "/inbox/messages/{message_id:int}/original",
    guards=[require_login],
    include_in_schema=False,
)
async def original_message(request: Request, message_id: FromPath[int]) -> Response:
    """The message as the channel received it (for email, the .eml file)."""
    user = await current_user(request)
    try:
        message = await conversations.get_message(user, message_id)
    except ConversationNotFound:
        raise NotFoundException("This message does not exist.") from None
    key = raw_key_of(message)
    if key is None:
        raise NotFoundException("No original was kept for this message.")
    data = await runtime.current().blobs.open(key)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "content-disposition": content_disposition(f"message-{message_id}.eml"),
            "x-content-type-options": "nosniff",
        },
    )


@post(
    "/inbox/messages/{message_id:int}/move",
    guards=[require_login],
    status_code=200,
    include_in_schema=False,
)
async def move_message(request: Request, message_id: FromPath[int]) -> Response:
    """Move a message to another conversation when threading guessed wrong."""
    user = await current_user(request)
    data = await _action_form(request)
    target = str(data.get("conversation_id") or "").strip().lstrip("#")
    if not target.isdigit() or len(target) > 18:
        return _flash_error(request, "Give the number of the conversation to move to.")
    try:
        await conversations.move_message(user, message_id, int(target))
    except ConversationNotFound:
        return _flash_error(request, f"Conversation #{target} does not exist.", 404)
    except InvalidChange as error:
        return _flash_error(request, str(error))
    return _after_action(request, int(target))


@get("/search", guards=[require_login], include_in_schema=False)
async def search_page(request: Request) -> Template:
    user = await current_user(request)
    query = (request.query_params.get("q") or "").strip()[:200]
    results = await conversations.search(user, query) if query else None
    return await render(
        request,
        "search.html",
        {"query": query, "results": results},
        user=user,
        partial="_search_results.html",
    )


ROUTES = [
    inbox_page,
    conversation_list,
    conversation_page,
    conversation_header,
    conversation_details,
    new_messages,
    message_fragment,
    message_html,
    original_message,
    move_message,
    send_message,
    assign,
    change_status,
    change_labels,
    attachment,
    search_page,
]
