"""Piccolo tables of the core model.

The schema itself is created by the SQL files in ``patra/migrations`` (they
carry what Piccolo cannot express: partial unique indexes, generated
``tsvector`` columns, GIN indexes); these classes describe the same tables for
queries that read well as ORM calls. ``tests/test_tables.py`` checks that both
agree.
"""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    BigInt,
    BigSerial,
    Boolean,
    Bytea,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
)
from piccolo.table import Table

from patra.db import DB


class Workspace(Table, tablename="workspace", db=DB):
    id = BigSerial(primary_key=True)
    name = Text(help_text="Shown in the navigation and in exports.")
    created_at = Timestamptz()


class AppUser(Table, tablename="app_user", db=DB):
    id = BigSerial(primary_key=True)
    email = Text(help_text="Login name; unique regardless of case.")
    name = Text()
    password_hash = Text(help_text="argon2id hash; never the password.")
    is_active = Boolean(default=True, help_text="False ends sessions and tokens.")
    created_at = Timestamptz()
    password_changed_at = Timestamptz()


class Membership(Table, tablename="membership", db=DB):
    workspace_id = ForeignKey(Workspace, primary_key=True)
    user_id = ForeignKey(AppUser)
    role = Text(help_text="owner, admin or agent.")


class Session(Table, tablename="session", db=DB):
    id = Text(primary_key=True, help_text="SHA-256 of the cookie value.")
    workspace_id = ForeignKey(Workspace)
    user_id = ForeignKey(AppUser)
    created_at = Timestamptz()
    last_seen_at = Timestamptz()
    expires_at = Timestamptz()


class ApiToken(Table, tablename="api_token", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    user_id = ForeignKey(AppUser)
    name = Text()
    token_hash = Text(help_text="SHA-256 of the token.")
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True)
    revoked_at = Timestamptz(null=True)


class Inbox(Table, tablename="inbox", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    name = Text()
    channel_type = Text(help_text="Name of the plugin-provided channel type.")
    settings = JSONB(help_text="Settings that are not secret.")
    secrets = Bytea(null=True, help_text="Encrypted JSON of secret settings.")
    connected = Boolean(default=False)
    created_at = Timestamptz()


class InboxMember(Table, tablename="inbox_member", db=DB):
    inbox_id = ForeignKey(Inbox, primary_key=True)
    user_id = ForeignKey(AppUser)


class Team(Table, tablename="team", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    name = Text()


class Contact(Table, tablename="contact", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    name = Text()
    email = Text(null=True)
    phone = Text(null=True)
    attributes = JSONB()
    created_at = Timestamptz()
    updated_at = Timestamptz()


class ContactIdentity(Table, tablename="contact_identity", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    contact_id = ForeignKey(Contact)
    inbox_id = ForeignKey(Inbox)
    external_id = Text(help_text="The channel's id of the person; unique per inbox.")


class Conversation(Table, tablename="conversation", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    inbox_id = ForeignKey(Inbox)
    contact_id = ForeignKey(Contact)
    status = Text(help_text="open, pending, snoozed or resolved.")
    assignee_id = ForeignKey(AppUser, null=True)
    team_id = ForeignKey(Team, null=True)
    priority = Text()
    subject = Text()
    thread_key = Text(null=True, help_text="Set by threaded channels (email).")
    snoozed_until = Timestamptz(null=True)
    last_activity_at = Timestamptz()
    last_inbound_at = Timestamptz(null=True)
    created_at = Timestamptz()


class Message(Table, tablename="message", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    inbox_id = ForeignKey(Inbox)
    conversation_id = ForeignKey(Conversation)
    direction = Text(help_text="in (from the contact) or out (from us).")
    kind = Text(help_text="message, note (private) or event (activity line).")
    sender_user_id = ForeignKey(AppUser, null=True)
    sender_contact_id = ForeignKey(Contact, null=True)
    text = Text()
    html = Text(null=True, help_text="Sanitised HTML, shown sandboxed.")
    external_id = Text(null=True, help_text="Provider's id; unique per inbox.")
    idempotency_key = Text(null=True)
    delivery_status = Text(help_text="received < queued < sending < sent < ...")
    error = Text(null=True, help_text="The provider's reason, shown to agents.")
    attempts = Integer()
    provider_time = Timestamptz(null=True)
    metadata = JSONB()
    edit_history = JSONB()
    created_at = Timestamptz()
    updated_at = Timestamptz()


class Attachment(Table, tablename="attachment", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    message_id = ForeignKey(Message)
    blob_key = Text(help_text="Key in the blob store; never the upload's name.")
    filename = Text()
    content_type = Text()
    size = BigInt()
    sha256 = Text()
    content_id = Text(null=True, help_text="For cid: references in email HTML.")
    created_at = Timestamptz()


class Label(Table, tablename="label", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    name = Text()
    color = Text()


class ConversationLabel(Table, tablename="conversation_label", db=DB):
    conversation_id = ForeignKey(Conversation, primary_key=True)
    label_id = ForeignKey(Label)


class CannedResponse(Table, tablename="canned_response", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace)
    short_code = Text()
    content = Text()


class AuditEvent(Table, tablename="audit_event", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace, null=True)
    actor_user_id = ForeignKey(AppUser, null=True)
    action = Text()
    target_type = Text()
    target_id = Text()
    details = JSONB()
    ip = Text(null=True)
    created_at = Timestamptz()


class QuarantineItem(Table, tablename="quarantine_item", db=DB):
    id = BigSerial(primary_key=True)
    workspace_id = ForeignKey(Workspace, null=True)
    inbox_id = ForeignKey(Inbox, null=True)
    channel_type = Text()
    reason = Text(help_text="Why the channel could not understand the payload.")
    payload = Bytea(help_text="The payload exactly as received.")
    headers = JSONB()
    created_at = Timestamptz()
    resolved_at = Timestamptz(null=True)


CORE_TABLES = [
    Workspace,
    AppUser,
    Membership,
    Session,
    ApiToken,
    Inbox,
    InboxMember,
    Team,
    Contact,
    ContactIdentity,
    Conversation,
    Message,
    Attachment,
    Label,
    ConversationLabel,
    CannedResponse,
    AuditEvent,
    QuarantineItem,
]
