-- What customers buy in the portal and pay through the gateway: wallet top-ups (the money
-- becomes a payment of the customer, settling open invoices first, the rest credit) and
-- vouchers bought on a phone (issued when the gateway's API confirms the payment). The row
-- exists from the moment the gateway page is opened; the webhook settles it once, keyed on
-- the gateway's transaction id.
CREATE TABLE portal_orders (
    id           TEXT PRIMARY KEY,
    -- What the gateway knows the order by: `TOPUP-` or `VCR-` and a random suffix.
    order_id     TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    customer_id  TEXT REFERENCES customers(id),
    plan_id      TEXT REFERENCES plans(id),
    site_id      TEXT REFERENCES sites(id),
    amount       BIGINT NOT NULL,
    phone        TEXT,
    gateway      TEXT NOT NULL,
    redirect_url TEXT NOT NULL,
    -- SHA-256 of the secret in the buyer's link to the order page (the code is shown there).
    view_hash    TEXT NOT NULL,
    status       TEXT NOT NULL,
    external_id  TEXT UNIQUE,
    payment_id   TEXT,
    voucher_code TEXT,
    created_at   BIGINT NOT NULL,
    paid_at      BIGINT
);
CREATE INDEX portal_orders_customer ON portal_orders (customer_id, created_at);
