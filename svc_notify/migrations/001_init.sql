-- Mail templates an admin may edit. `placeholders` lists the values the sending code supplies, so an
-- edit that uses any other `{name}` is refused instead of mailing a literal `{name}` to customers.
CREATE TABLE templates (
    name         text PRIMARY KEY,
    subject      text        NOT NULL,
    body         text        NOT NULL,
    placeholders text[]      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per event and channel: a failed attempt and the retry that succeeds update the same row.
CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    event_id    uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    channel     text        NOT NULL CHECK (channel IN ('email')),
    recipient   text        NOT NULL,
    template    text        NOT NULL REFERENCES templates (name),
    subject     text        NOT NULL,
    body        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('SENT', 'FAILED')),
    attempts    int         NOT NULL DEFAULT 1,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    UNIQUE (event_id, channel)
);
CREATE INDEX notifications_user ON notifications (user_id, created_at DESC, id DESC);

INSERT INTO templates (name, subject, body, placeholders) VALUES (
    'email-verification',
    'Verify your email address',
    'Hello {fullName},

please confirm that {email} is your email address by opening this link:

{link}

The link expires at {expiresAt}. If you did not create an account, you can ignore this mail.

-- The Shop team
',
    ARRAY['fullName', 'email', 'link', 'expiresAt']
);
