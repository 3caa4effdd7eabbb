-- The domain event outbox: every business change others react to is written here in the
-- same transaction as the change; consumers read after their own cursor.
CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    customer_id     TEXT,
    subscription_id TEXT,
    site_id         TEXT,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX events_kind ON events(kind, id);
CREATE INDEX events_customer ON events(customer_id, id);

-- One row per consumer: how far it has read, and which replica holds it right now.
CREATE TABLE event_consumers (
    name        TEXT PRIMARY KEY,
    cursor      BIGINT NOT NULL,
    holder      TEXT,
    lease_until BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Outgoing webhooks for integrators and their deliveries (one per webhook and event).
CREATE TABLE webhooks (
    id           TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    secret       TEXT NOT NULL,
    event_filter TEXT NOT NULL,
    -- Events up to this id existed before the webhook and are not sent to it.
    after_event  BIGINT NOT NULL,
    active       BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks(id),
    event_id        BIGINT NOT NULL REFERENCES events(id),
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
