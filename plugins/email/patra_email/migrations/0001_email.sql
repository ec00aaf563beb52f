-- Every Message-ID an email inbox received, sent or saw referenced, mapped to
-- the conversation it belongs to: the index threading matches replies against.
CREATE TABLE email_message_id (
    inbox_id bigint NOT NULL REFERENCES inbox ON DELETE CASCADE,
    message_id text NOT NULL,  -- verbatim, without angle brackets
    conversation_id bigint NOT NULL REFERENCES conversation ON DELETE CASCADE,
    origin text NOT NULL CHECK (origin IN ('received', 'sent', 'referenced')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (inbox_id, message_id)
);
CREATE INDEX email_message_id_conversation_idx
    ON email_message_id (conversation_id, created_at);

-- Where each watched IMAP folder was read up to. A new UIDVALIDITY voids
-- last_uid: the folder is read again and ingest skips what it already has.
CREATE TABLE email_imap_cursor (
    inbox_id bigint NOT NULL REFERENCES inbox ON DELETE CASCADE,
    mailbox text NOT NULL,
    uidvalidity bigint NOT NULL,
    last_uid bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (inbox_id, mailbox)
);
