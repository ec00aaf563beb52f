-- Core model: workspace, people, inboxes, contacts, conversations, messages.
-- Every row carries its workspace.

CREATE TABLE workspace (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app_user (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    password_hash text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX app_user_email_key ON app_user (lower(email));

CREATE TABLE membership (
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES app_user ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'agent')),
    PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE session (
    id text PRIMARY KEY,  -- sha256 of the cookie value, never the value itself
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES app_user ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX session_user_idx ON session (user_id);

CREATE TABLE api_token (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES app_user ON DELETE CASCADE,
    name text NOT NULL DEFAULT '',
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE inbox (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    name text NOT NULL,
    channel_type text NOT NULL,
    settings jsonb NOT NULL DEFAULT '{}',
    secrets bytea,  -- encrypted JSON, see patra.crypto
    connected boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inbox_member (
    inbox_id bigint NOT NULL REFERENCES inbox ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES app_user ON DELETE CASCADE,
    PRIMARY KEY (inbox_id, user_id)
);

CREATE TABLE team (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    name text NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE contact (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    name text NOT NULL DEFAULT '',
    email text,
    phone text,
    attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    search tsvector GENERATED ALWAYS AS (
        to_tsvector('simple',
            coalesce(name, '') || ' ' || coalesce(email, '') || ' '
            || coalesce(replace(email, '@', ' '), '') || ' ' || coalesce(phone, ''))
    ) STORED
);
CREATE INDEX contact_search_idx ON contact USING gin (search);
CREATE INDEX contact_workspace_email_idx ON contact (workspace_id, lower(email));

CREATE TABLE contact_identity (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    contact_id bigint NOT NULL REFERENCES contact ON DELETE CASCADE,
    inbox_id bigint NOT NULL REFERENCES inbox ON DELETE CASCADE,
    external_id text NOT NULL,
    UNIQUE (inbox_id, external_id)
);
CREATE INDEX contact_identity_contact_idx ON contact_identity (contact_id);

CREATE TABLE conversation (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    inbox_id bigint NOT NULL REFERENCES inbox ON DELETE CASCADE,
    contact_id bigint NOT NULL REFERENCES contact ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'pending', 'snoozed', 'resolved')),
    assignee_id bigint REFERENCES app_user ON DELETE SET NULL,
    team_id bigint REFERENCES team ON DELETE SET NULL,
    priority text NOT NULL DEFAULT 'none'
        CHECK (priority IN ('none', 'low', 'medium', 'high', 'urgent')),
    subject text NOT NULL DEFAULT '',
    thread_key text,  -- channels with threads (email) keep several open ones
    snoozed_until timestamptz,
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    last_inbound_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One open conversation per contact and inbox for chat-like channels: the
-- constraint that makes get-or-create atomic under concurrent first messages.
CREATE UNIQUE INDEX conversation_one_open_idx ON conversation (inbox_id, contact_id)
    WHERE status <> 'resolved' AND thread_key IS NULL;
CREATE INDEX conversation_list_idx
    ON conversation (workspace_id, status, last_activity_at DESC, id DESC);
CREATE INDEX conversation_inbox_list_idx
    ON conversation (inbox_id, status, last_activity_at DESC, id DESC);
CREATE INDEX conversation_assignee_idx
    ON conversation (assignee_id, status, last_activity_at DESC, id DESC);
CREATE INDEX conversation_contact_idx ON conversation (contact_id);

CREATE FUNCTION patra_delivery_rank(status text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE status
        WHEN 'received' THEN 0 WHEN 'queued' THEN 1 WHEN 'sending' THEN 2
        WHEN 'sent' THEN 3 WHEN 'delivered' THEN 4 WHEN 'read' THEN 5
        WHEN 'failed' THEN 6 ELSE 0 END
$$;

CREATE TABLE message (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    inbox_id bigint NOT NULL REFERENCES inbox ON DELETE CASCADE,
    conversation_id bigint NOT NULL REFERENCES conversation ON DELETE CASCADE,
    direction text NOT NULL CHECK (direction IN ('in', 'out')),
    kind text NOT NULL DEFAULT 'message' CHECK (kind IN ('message', 'note', 'event')),
    sender_user_id bigint REFERENCES app_user ON DELETE SET NULL,
    sender_contact_id bigint REFERENCES contact ON DELETE SET NULL,
    text text NOT NULL DEFAULT '',
    html text,
    external_id text,
    idempotency_key text,
    delivery_status text NOT NULL DEFAULT 'received' CHECK (delivery_status IN (
        'received', 'queued', 'sending', 'sent', 'delivered', 'read', 'failed'
    )),
    error text,
    attempts int NOT NULL DEFAULT 0,
    provider_time timestamptz,
    metadata jsonb NOT NULL DEFAULT '{}',
    edit_history jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED
);
CREATE UNIQUE INDEX message_external_id_key ON message (inbox_id, external_id)
    WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX message_idempotency_key ON message (inbox_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX message_conversation_idx ON message (conversation_id, id);
CREATE INDEX message_search_idx ON message USING gin (search);
CREATE INDEX message_outbox_idx ON message (delivery_status, updated_at)
    WHERE delivery_status IN ('queued', 'sending');

CREATE TABLE attachment (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    message_id bigint NOT NULL REFERENCES message ON DELETE CASCADE,
    blob_key text NOT NULL,
    filename text NOT NULL,
    content_type text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    content_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachment_message_idx ON attachment (message_id);

CREATE TABLE label (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    name text NOT NULL,
    color text NOT NULL DEFAULT '#6b7280',
    UNIQUE (workspace_id, name)
);

CREATE TABLE conversation_label (
    conversation_id bigint NOT NULL REFERENCES conversation ON DELETE CASCADE,
    label_id bigint NOT NULL REFERENCES label ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, label_id)
);

CREATE TABLE canned_response (
    id bigserial PRIMARY KEY,
    workspace_id bigint NOT NULL REFERENCES workspace ON DELETE CASCADE,
    short_code text NOT NULL,
    content text NOT NULL,
    UNIQUE (workspace_id, short_code)
);

CREATE TABLE audit_event (
    id bigserial PRIMARY KEY,
    workspace_id bigint REFERENCES workspace ON DELETE CASCADE,
    actor_user_id bigint REFERENCES app_user ON DELETE SET NULL,
    action text NOT NULL,
    target_type text NOT NULL DEFAULT '',
    target_id text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}',
    ip text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_event_workspace_idx ON audit_event (workspace_id, created_at DESC);

-- Inbound payloads a channel could not understand: kept whole, shown to admins.
CREATE TABLE quarantine_item (
    id bigserial PRIMARY KEY,
    workspace_id bigint REFERENCES workspace ON DELETE CASCADE,
    inbox_id bigint REFERENCES inbox ON DELETE CASCADE,
    channel_type text NOT NULL,
    reason text NOT NULL,
    payload bytea NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
