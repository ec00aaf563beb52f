-- What each inbox's IMAP receiver last reported, for the inbox's health line.
CREATE TABLE email_receiver_status (
    inbox_id bigint PRIMARY KEY REFERENCES inbox ON DELETE CASCADE,
    ok boolean NOT NULL,
    detail text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
