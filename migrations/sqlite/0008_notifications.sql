-- Notifications to customers and operators (WhatsApp, Telegram, e-mail, SMS), fed by the
-- event outbox and the reminder job.

-- A configured gateway. `config` is the channel's JSON settings, secrets included; the API
-- never returns the secrets.
CREATE TABLE notification_channels (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    config          TEXT NOT NULL,
    -- Messages per minute the gateway accepts from us.
    rate_per_minute BIGINT NOT NULL,
    max_attempts    BIGINT NOT NULL,
    active          BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Operator overrides of the built-in texts, per topic and language.
CREATE TABLE notification_templates (
    topic      TEXT NOT NULL,
    lang       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (topic, lang)
);

-- One message to one recipient through one channel. `dedupe_key` makes every producer
-- idempotent: a replayed event or a re-run reminder finds its message already there.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    channel_id      TEXT NOT NULL REFERENCES notification_channels(id),
    topic           TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL UNIQUE,
    event_id        BIGINT,
    customer_id     TEXT,
    site_id         TEXT,
    -- The invoice or subscription it is about: a message about a settled invoice is dropped.
    invoice_id      TEXT,
    subscription_id TEXT,
    recipient       TEXT NOT NULL,
    lang            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    -- pending, sending (claimed until next_attempt_at), sent, dead, cancelled
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- Attempts made before an operator's last retry; the budget counts from here.
    attempts_base   BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX notifications_due ON notifications(channel_id, status, next_attempt_at);
CREATE INDEX notifications_customer ON notifications(customer_id, created_at);

-- Every delivery attempt and its outcome.
CREATE TABLE notification_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id TEXT NOT NULL REFERENCES notifications(id),
    attempt         BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    http_status     BIGINT,
    detail          TEXT,
    at              BIGINT NOT NULL
);
CREATE INDEX notification_attempts_message ON notification_attempts(notification_id, id);

-- A customer's choices: language, channels (NULL = every channel they have an address for),
-- a Telegram chat they linked, and a full opt-out.
ALTER TABLE customers ADD COLUMN notify_lang TEXT;
ALTER TABLE customers ADD COLUMN notify_channels TEXT;
ALTER TABLE customers ADD COLUMN notify_opt_out BIGINT NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN telegram_chat_id TEXT;

-- Telegram chat linking: a customer opens the bot with a one-time start token (from the
-- portal); the bot's updates are read with getUpdates from `next_update_id` on.
CREATE TABLE telegram_links (
    token_hash  TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    channel_id  TEXT NOT NULL REFERENCES notification_channels(id),
    expires_at  BIGINT NOT NULL
);
CREATE TABLE telegram_offsets (
    channel_id     TEXT PRIMARY KEY REFERENCES notification_channels(id),
    next_update_id BIGINT NOT NULL
);
