-- The customer portal: a subscriber's own password (set by an operator), their browser
-- sessions (only the SHA-256 of the cookie secret is stored), and the gateway payment
-- links created from the portal, reused while they are valid.
CREATE TABLE portal_credentials (
    customer_id   TEXT PRIMARY KEY REFERENCES customers(id),
    password_hash TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE portal_sessions (
    token_hash  TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX portal_sessions_customer ON portal_sessions(customer_id);
CREATE INDEX portal_sessions_expiry ON portal_sessions(expires_at);

CREATE TABLE payment_links (
    id           TEXT PRIMARY KEY,
    invoice_id   TEXT NOT NULL REFERENCES invoices(id),
    gateway      TEXT NOT NULL,
    -- What the gateway knows the transaction by: the invoice number, `~`, a random suffix.
    order_id     TEXT NOT NULL UNIQUE,
    amount       BIGINT NOT NULL,
    redirect_url TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX payment_links_invoice ON payment_links(invoice_id, expires_at);

-- Usage pages sum one account's sessions; without this they would scan the whole ledger.
CREATE INDEX accounting_records_username ON accounting_records(username, event_time);
