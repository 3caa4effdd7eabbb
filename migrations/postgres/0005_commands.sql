-- Provisioning commands per site: ordered by id, delivered at least once over the agent's
-- QUIC link, applied idempotently by the agent (it keys results by id), result stored here.
CREATE TABLE commands (
    id              BIGSERIAL PRIMARY KEY,
    site_id         TEXT NOT NULL REFERENCES sites(id),
    kind            TEXT NOT NULL,
    command_json    TEXT NOT NULL,
    subscription_id TEXT REFERENCES subscriptions(id),
    status          TEXT NOT NULL,
    result          TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    last_attempt_at BIGINT,
    completed_at    BIGINT
);
CREATE INDEX commands_site_pending ON commands(site_id, status, id);
CREATE INDEX commands_subscription ON commands(subscription_id, id);
