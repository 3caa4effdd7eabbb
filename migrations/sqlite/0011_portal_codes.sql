-- One-time login codes for the customer portal, sent through the notification channels.
-- One live code per customer; only a hash of it is stored.
CREATE TABLE portal_codes (
    customer_id TEXT PRIMARY KEY REFERENCES customers(id),
    code_hash   TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
