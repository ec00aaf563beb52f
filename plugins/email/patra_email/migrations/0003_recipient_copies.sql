-- The Patra message that received, sent or first mentioned each Message-ID,
-- so the ids move with the message when an agent moves it elsewhere.
ALTER TABLE email_message_id
    ADD COLUMN patra_message_id bigint REFERENCES message ON DELETE SET NULL;
CREATE INDEX email_message_id_patra_message_idx
    ON email_message_id (patra_message_id) WHERE patra_message_id IS NOT NULL;

-- One row per recipient of an agent's reply: each gets its own copy with its
-- own Message-ID. A copy the server accepted is never sent again on retry.
CREATE TABLE email_recipient_copy (
    patra_message_id bigint NOT NULL REFERENCES message ON DELETE CASCADE,
    recipient text NOT NULL,  -- lower-case address
    header text NOT NULL CHECK (header IN ('to', 'cc')),
    position smallint NOT NULL,  -- order of the recipients in the headers
    message_id text NOT NULL,  -- this copy's Message-ID, without angle brackets
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'deferred', 'accepted', 'refused', 'bounced')),
    answer text NOT NULL DEFAULT '',  -- the server's last words about this copy
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patra_message_id, recipient)
);

-- Ids recorded before this migration: a stored message owns its own id.
UPDATE email_message_id known SET patra_message_id = m.id
FROM message m
WHERE m.inbox_id = known.inbox_id AND m.external_id = known.message_id
  AND known.origin <> 'referenced';
