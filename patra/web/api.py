"""JSON API v1: conversations, messages and contacts for integrations and scripts.

Only bearer tokens (``patra tokens create --email E``) authenticate here; a
session cookie alone is refused, which is what makes exempting ``/api/`` from
CSRF safe. Controllers stay thin: the services in :mod:`patra.inbox` decide
what a user may see and change, and the schemas below shape the answers and
the OpenAPI document served at ``/api/schema/openapi.json``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Literal

import asyncpg
import msgspec
from litestar import MediaType, Request, Response, Router, get, patch, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

from patra import db, runtime
from patra.accounts.service import CurrentUser, token_user, visible_inbox_ids
from patra.inbox import conversations
from patra.inbox.conversations import ConversationNotFound, InvalidChange
from patra.inbox.outbound import AttachmentRefused, Upload, create_agent_message
from patra.web import errors
from patra.web.downloads import content_disposition

logger = logging.getLogger(__name__)

SECURITY_SCHEME = "BearerToken"
TOKEN_HELP = (
    "Create a token with `patra tokens create --email you@example.com` and send "
    "it as `Authorization: Bearer <token>`."
)

Status = Literal["open", "pending", "snoozed", "resolved"]
Tab = Literal["mine", "unassigned", "all"]
LabelName = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
ApiUser = NamedDependency[CurrentUser]


# --- response schemas ----------------------------------------------------------


class UserRef(msgspec.Struct):
    id: int
    name: str


class ContactRef(msgspec.Struct):
    id: int
    name: str
    email: str | None


class ConversationSummary(msgspec.Struct):
    id: int
    inbox_id: int
    inbox_name: str
    channel_type: str
    status: Status
    priority: str
    subject: str
    contact: ContactRef
    assignee: UserRef | None
    snoozed_until: datetime | None
    last_activity_at: datetime
    preview: str | None


class ConversationPage(msgspec.Struct):
    items: list[ConversationSummary]
    next_cursor: str | None


class Contact(msgspec.Struct):
    id: int
    name: str
    email: str | None
    phone: str | None
    created_at: datetime


class Conversation(msgspec.Struct):
    id: int
    inbox_id: int
    inbox_name: str
    channel_type: str
    status: Status
    priority: str
    subject: str
    contact: Contact
    assignee: UserRef | None
    labels: list[str]
    snoozed_until: datetime | None
    last_activity_at: datetime
    last_inbound_at: datetime | None
    created_at: datetime


class Sender(msgspec.Struct):
    type: Literal["user", "contact"]
    id: int
    name: str


class Attachment(msgspec.Struct):
    id: int
    filename: str
    content_type: str
    size: int
    url: str


class Message(msgspec.Struct):
    id: int
    conversation_id: int
    direction: Literal["in", "out"]
    kind: Literal["message", "note", "event"]
    text: str
    html: str | None
    delivery_status: Literal[
        "received", "queued", "sending", "sent", "delivered", "read", "failed"
    ]
    error: str | None
    sender: Sender | None
    attachments: list[Attachment]
    created_at: datetime
    provider_time: datetime | None


class MessageList(msgspec.Struct):
    items: list[Message]
    has_more: Annotated[
        bool,
        msgspec.Meta(
            description="More messages follow the last item: ask again with "
            "after_id set to its id."
        ),
    ]


class ContactConversation(msgspec.Struct):
    id: int
    inbox_id: int
    status: Status
    subject: str
    last_activity_at: datetime


class ContactDetail(msgspec.Struct):
    id: int
    name: str
    email: str | None
    phone: str | None
    attributes: dict[str, object]
    created_at: datetime
    conversations: list[ContactConversation]


class ContactList(msgspec.Struct):
    items: list[ContactRef]


class InboxRef(msgspec.Struct):
    id: int
    name: str
    channel_type: str


class Me(msgspec.Struct):
    id: int
    email: str
    name: str
    role: Literal["owner", "admin", "agent"]
    workspace_id: int
    inboxes: list[InboxRef]


class ApiError(msgspec.Struct):
    error: str
    status: int


ERROR_MEANINGS = {
    400: "Malformed JSON, an unknown field or a value of the wrong type.",
    401: "No API token, or one that is not valid or was revoked.",
    404: "No such id, or it belongs to an inbox you are not a member of.",
    413: "The body or an attachment is over the size limit.",
    422: "Well-formed, but the change cannot be made; `error` says why.",
}


def errors_for(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors an operation can answer with."""
    return {
        status: ResponseSpec(
            data_container=ApiError,
            description=ERROR_MEANINGS[status],
            generate_examples=False,
        )
        for status in (401, *statuses)
    }


# --- request schemas -----------------------------------------------------------


class NewAttachment(msgspec.Struct, forbid_unknown_fields=True):
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    data: Annotated[bytes, msgspec.Meta(description="The file's bytes, base64.")]
    content_type: str = "application/octet-stream"


class NewMessage(msgspec.Struct, forbid_unknown_fields=True):
    text: str = ""
    kind: Literal["message", "note"] = "message"
    idempotency_key: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1,
                max_length=200,
                description="Send the same key again to retry without a duplicate.",
            ),
        ]
        | None
    ) = None
    attachments: list[NewAttachment] = msgspec.field(default_factory=list)


class ConversationChange(msgspec.Struct, forbid_unknown_fields=True):
    status: Status | msgspec.UnsetType = msgspec.UNSET
    snoozed_until: AwareDatetime | None | msgspec.UnsetType = msgspec.UNSET
    assignee_id: (
        Annotated[int, msgspec.Meta(description="null unassigns.")]
        | None
        | msgspec.UnsetType
    ) = msgspec.UNSET
    labels: list[LabelName] | msgspec.UnsetType = msgspec.UNSET


# --- shaping rows into schemas ---------------------------------------------------


def _user_ref(user_id: int | None, name: str | None) -> UserRef | None:
    return UserRef(id=user_id, name=name or "") if user_id is not None else None


def _summary(row: dict) -> ConversationSummary:
    return ConversationSummary(
        id=row["id"],
        inbox_id=row["inbox_id"],
        inbox_name=row["inbox_name"],
        channel_type=row["channel_type"],
        status=row["status"],
        priority=row["priority"],
        subject=row["subject"],
        contact=ContactRef(
            id=row["contact_id"], name=row["contact_name"], email=row["contact_email"]
        ),
        assignee=_user_ref(row["assignee_id"], row["assignee_name"]),
        snoozed_until=row["snoozed_until"],
        last_activity_at=row["last_activity_at"],
        preview=row["preview"],
    )


def _conversation(row: dict) -> Conversation:
    contact = row["contact"]
    return Conversation(
        id=row["id"],
        inbox_id=row["inbox_id"],
        inbox_name=row["inbox_name"],
        channel_type=row["channel_type"],
        status=row["status"],
        priority=row["priority"],
        subject=row["subject"],
        contact=Contact(
            id=contact["id"],
            name=contact["name"],
            email=contact["email"],
            phone=contact["phone"],
            created_at=contact["created_at"],
        ),
        assignee=_user_ref(row["assignee_id"], row["assignee_name"]),
        labels=[label["name"] for label in row["labels"]],
        snoozed_until=row["snoozed_until"],
        last_activity_at=row["last_activity_at"],
        last_inbound_at=row["last_inbound_at"],
        created_at=row["created_at"],
    )


def _sender(row: dict) -> Sender | None:
    if row["sender_user_id"] is not None:
        return Sender("user", row["sender_user_id"], row["sender_user_name"] or "")
    if row["sender_contact_id"] is not None:
        return Sender(
            "contact", row["sender_contact_id"], row["sender_contact_name"] or ""
        )
    return None


def _message(row: dict) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        direction=row["direction"],
        kind=row["kind"],
        text=row["text"],
        html=row["html"],
        delivery_status=row["delivery_status"],
        error=row["error"],
        sender=_sender(row),
        attachments=[
            Attachment(
                id=attachment["id"],
                filename=attachment["filename"],
                content_type=attachment["content_type"],
                size=attachment["size"],
                url=f"/api/v1/attachments/{attachment['id']}",
            )
            for attachment in row["attachments"]
        ],
        created_at=row["created_at"],
        provider_time=row["provider_time"],
    )


# --- authentication --------------------------------------------------------------


async def require_token(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: a valid, unrevoked bearer token; cookies are not looked at."""
    scheme, _space, token = connection.headers.get("authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="patra"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException(
            f"This API needs an API token. {TOKEN_HELP}", headers=challenge
        )
    user = await token_user(token.strip())
    if user is None:
        raise NotAuthorizedException(
            "The API token is not valid, was revoked or belongs to a deactivated "
            f"user. {TOKEN_HELP}",
            headers=challenge,
        )
    connection.state["patra_user"] = user


async def provide_user(request: Request) -> CurrentUser:
    return request.state["patra_user"]


# --- conversations ---------------------------------------------------------------


@get(
    "/conversations",
    summary="List conversations, newest activity first",
    responses=errors_for(400, 404, 422),
    operation_id="list_conversations",
)
async def list_conversations(
    user: ApiUser,
    tab: FromQuery[Tab] = "all",
    status: FromQuery[Status] = "open",
    inbox_id: FromQuery[int | None] = None,
    label: Annotated[str | None, QueryParameter(max_length=50)] = None,
    cursor: Annotated[
        str | None, QueryParameter(description="next_cursor of the previous page.")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = conversations.PAGE_SIZE,
) -> ConversationPage:
    if inbox_id is not None and inbox_id not in await visible_inbox_ids(user):
        raise NotFoundException(
            f"Inbox {inbox_id} does not exist. Check the id; GET /api/v1/me lists "
            "the inboxes you see."
        )
    page = await conversations.list_conversations(
        user,
        tab=tab,
        status=status,
        inbox_id=inbox_id,
        label=label,
        cursor=cursor,
        limit=limit,
    )
    return ConversationPage(
        items=[_summary(row) for row in page.items], next_cursor=page.next_cursor
    )


@get(
    "/conversations/{conversation_id:int}",
    summary="Read one conversation",
    responses=errors_for(404),
    operation_id="get_conversation",
)
async def get_conversation(
    user: ApiUser, conversation_id: FromPath[int]
) -> Conversation:
    return _conversation(await conversations.get_conversation(user, conversation_id))


@patch(
    "/conversations/{conversation_id:int}",
    summary="Change status, snooze time, assignee or labels",
    responses=errors_for(400, 404, 413, 422),
    operation_id="change_conversation",
)
async def change_conversation(
    user: ApiUser,
    conversation_id: FromPath[int],
    data: JSONBody[ConversationChange],
) -> Conversation:
    await apply_change(user, conversation_id, data)
    return _conversation(await conversations.get_conversation(user, conversation_id))


async def apply_change(
    user: CurrentUser, conversation_id: int, change: ConversationChange
) -> None:
    """Apply every requested change, or none of them."""
    fields = ConversationChange.__struct_fields__
    if all(getattr(change, name) is msgspec.UNSET for name in fields):
        raise InvalidChange(
            "Send at least one of status, snoozed_until, assignee_id or labels."
        )
    status = change.status
    snoozed_until = change.snoozed_until or None
    if snoozed_until is not None and status is msgspec.UNSET:
        status = "snoozed"
    if snoozed_until is not None and status != "snoozed":
        raise InvalidChange(
            'snoozed_until only goes with status "snoozed"; leave it out or set '
            "the status to snoozed."
        )
    if snoozed_until is not None and snoozed_until <= datetime.now(UTC):
        raise InvalidChange("snoozed_until is in the past; choose a future time.")

    # One transaction around the service calls: a refused second change undoes
    # the first, so a PATCH is never half-applied.
    async with db.transaction():
        if change.assignee_id is not msgspec.UNSET:
            await conversations.assign(user, conversation_id, change.assignee_id)
        if status is not msgspec.UNSET:
            await conversations.set_status(user, conversation_id, status, snoozed_until)
        if change.labels is not msgspec.UNSET:
            await conversations.set_labels(user, conversation_id, change.labels)


# --- messages --------------------------------------------------------------------


@get(
    "/conversations/{conversation_id:int}/messages",
    summary="List a conversation's messages, oldest first",
    responses=errors_for(400, 404),
    operation_id="list_messages",
)
async def list_messages(
    user: ApiUser,
    conversation_id: FromPath[int],
    after_id: Annotated[
        int | None,
        QueryParameter(
            ge=0,
            description="The first messages with a larger id; without it, the "
            "latest ones.",
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> MessageList:
    await conversations.get_conversation(user, conversation_id)
    walking = after_id is not None
    rows = await conversations.list_messages(
        conversation_id,
        after_id or 0,
        limit + 1 if walking else limit,
        from_oldest=walking,
    )
    return MessageList(
        items=[_message(row) for row in rows[:limit]],
        has_more=len(rows) > limit,
    )


@post(
    "/conversations/{conversation_id:int}/messages",
    summary="Send a reply (queued for delivery) or add a private note",
    responses=errors_for(400, 404, 413, 422),
    response_description="The stored message; a reply starts out queued.",
    operation_id="create_message",
)
async def create_message(
    user: ApiUser, conversation_id: FromPath[int], data: JSONBody[NewMessage]
) -> Message:
    await conversations.get_conversation(user, conversation_id)
    uploads = [
        Upload(item.filename, item.content_type, item.data) for item in data.attachments
    ]
    try:
        message_id = await create_agent_message(
            workspace_id=user.workspace_id,
            conversation_id=conversation_id,
            user_id=user.id,
            text=data.text,
            kind=data.kind,
            uploads=uploads,
            idempotency_key=data.idempotency_key,
        )
    except asyncpg.UniqueViolationError:
        # Two requests raced with the same idempotency key; the other one won.
        message_id = await _message_id_for_key(conversation_id, data.idempotency_key)
    except AttachmentRefused as refusal:
        raise _attachment_refusal(refusal, uploads) from None
    except ValueError as refusal:  # the service's "nothing to send" refusal
        raise InvalidChange(str(refusal)) from None

    message = await conversations.get_message(user, message_id)
    if message["conversation_id"] != conversation_id:
        raise InvalidChange(
            "This idempotency_key was already used for a message in another "
            "conversation; use a new key for every message."
        )
    return _message(message)


class AttachmentTooLarge(AttachmentRefused):
    """An attachment over the upload size limit: answered with 413."""


def _attachment_refusal(refusal: AttachmentRefused, uploads: list[Upload]):
    """413 when a file is over the size limit, 422 for a forbidden type."""
    limit = runtime.current().config.storage.max_upload_mb * 1024 * 1024
    if any(len(upload.data) > limit for upload in uploads):
        return AttachmentTooLarge(str(refusal))
    return refusal


async def _message_id_for_key(conversation_id: int, key: str | None) -> int:
    message_id = await db.fetchval(
        """SELECT m.id FROM message m JOIN conversation c ON c.inbox_id = m.inbox_id
           WHERE c.id = $1 AND m.idempotency_key = $2""",
        conversation_id,
        key,
    )
    if message_id is None:
        raise InvalidChange("The message could not be stored; send it again.")
    return message_id


@get(
    "/attachments/{attachment_id:int}",
    summary="Download an attachment",
    response_description="The file, sent as an attachment.",
    responses=errors_for(404),
    operation_id="download_attachment",
)
async def download_attachment(user: ApiUser, attachment_id: FromPath[int]) -> Response:
    attachment = await conversations.get_attachment(user, attachment_id)
    content = await runtime.current().blobs.open(attachment["blob_key"])
    return Response(
        content,
        media_type=attachment["content_type"],
        headers={
            "Content-Disposition": content_disposition(attachment["filename"]),
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- contacts and the caller -----------------------------------------------------


@get(
    "/contacts",
    summary="Find contacts by exact email or a search query",
    responses=errors_for(400, 422),
    operation_id="find_contacts",
)
async def find_contacts(
    user: ApiUser,
    email: Annotated[str | None, QueryParameter(max_length=320)] = None,
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
) -> ContactList:
    if not (email or (q or "").strip()):
        raise InvalidChange("Give `email` or `q` to look contacts up.")
    rows = await conversations.find_contacts(user, email=email, query=q)
    return ContactList(
        items=[
            ContactRef(id=row["id"], name=row["name"], email=row["email"])
            for row in rows
        ]
    )


@get(
    "/contacts/{contact_id:int}",
    summary="Read one contact and their conversations",
    responses=errors_for(404),
    operation_id="get_contact",
)
async def get_contact(user: ApiUser, contact_id: FromPath[int]) -> ContactDetail:
    row = await conversations.get_contact(user, contact_id)
    return ContactDetail(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        attributes=row["attributes"],
        created_at=row["created_at"],
        conversations=[
            ContactConversation(
                id=item["id"],
                inbox_id=item["inbox_id"],
                status=item["status"],
                subject=item["subject"],
                last_activity_at=item["last_activity_at"],
            )
            for item in row["conversations"]
        ],
    )


@get(
    "/me",
    summary="The user the token belongs to, and the inboxes they see",
    responses=errors_for(),
    operation_id="get_me",
)
async def me(user: ApiUser) -> Me:
    inbox_ids = await visible_inbox_ids(user)
    rows = await db.fetch(
        "SELECT id, name, channel_type FROM inbox WHERE id = ANY($1::bigint[]) "
        "ORDER BY id",
        inbox_ids,
    )
    return Me(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        workspace_id=user.workspace_id,
        inboxes=[InboxRef(**row) for row in rows],
    )


# --- errors ----------------------------------------------------------------------


def _error(status: int, message: str) -> Response:
    return Response(
        {"error": message, "status": status},
        status_code=status,
        media_type=MediaType.JSON,
    )


def _not_found(_: Request, exc: ConversationNotFound) -> Response:
    return _error(
        HTTP_404_NOT_FOUND,
        f"{exc} Check the id; you only see the inboxes you are a member of.",
    )


def _refused(_: Request, exc: Exception) -> Response:
    return _error(HTTP_422_UNPROCESSABLE_ENTITY, str(exc))


def _too_large(_: Request, exc: AttachmentTooLarge) -> Response:
    return _error(HTTP_413_REQUEST_ENTITY_TOO_LARGE, str(exc))


def _invalid_request(request: Request, exc: ValidationException) -> Response:
    """Name each bad field in one sentence; keep the list in ``details``."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    if not problems:
        return _error(
            HTTP_400_BAD_REQUEST,
            f"The request could not be read ({exc.detail}); fix it and send it again.",
        )
    described = "; ".join(
        f"{problem.get('key') or problem.get('source', 'body')}: "
        f"{problem.get('message', 'invalid')}"
        for problem in problems
        if isinstance(problem, dict)
    )
    response = _error(
        HTTP_400_BAD_REQUEST,
        f"Some values are not valid ({described}). Fix them and send the request "
        "again; the API reference is at /api/schema/openapi.json.",
    )
    response.content["details"] = problems
    return response


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        limit = runtime.current().config.server.max_body_mb
        return _error(
            exc.status_code,
            f"The request body is larger than the {limit} MB this server accepts; "
            "send smaller attachments or fewer at a time.",
        )
    if isinstance(exc.__cause__, SerializationException):
        return _error(
            HTTP_400_BAD_REQUEST,
            f"The request body is not valid JSON ({exc.detail}); send a JSON "
            "object with the Content-Type application/json.",
        )
    return errors.handle_http_exception(request, exc)


def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception(
        "Unexpected error on %s %s", request.method, request.url.path, exc_info=exc
    )
    return _error(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Something went wrong on our side; the error was logged. Try again later.",
    )


def openapi_components() -> Components:
    """The bearer-token scheme the API's operations refer to."""
    return Components(
        security_schemes={
            SECURITY_SCHEME: SecurityScheme(
                type="http",
                scheme="bearer",
                description=TOKEN_HELP,
            )
        }
    )


api_router = Router(
    path="/api/v1",
    route_handlers=[
        list_conversations,
        get_conversation,
        change_conversation,
        list_messages,
        create_message,
        download_attachment,
        find_contacts,
        get_contact,
        me,
    ],
    guards=[require_token],
    dependencies={"user": Provide(provide_user)},
    security=[{SECURITY_SCHEME: []}],
    tags=["v1"],
    exception_handlers={
        ConversationNotFound: _not_found,
        InvalidChange: _refused,
        AttachmentRefused: _refused,
        AttachmentTooLarge: _too_large,
        ValidationException: _invalid_request,
        HTTPException: _http_error,
        HTTP_500_INTERNAL_SERVER_ERROR: _unexpected,
    },
)
