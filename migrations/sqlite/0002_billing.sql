-- Billing domain and admin access. Money is integer minor units; timestamps are UTC unix
-- milliseconds (BIGINT) on both backends.

CREATE TABLE admin_users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    display_name  TEXT,
    -- A reseller's prepaid credit; vouchers it buys are debited from it.
    balance       BIGINT NOT NULL DEFAULT 0,
    disabled_at   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Access, refresh and API tokens; only their SHA-256 is stored.
CREATE TABLE auth_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    admin_id     TEXT NOT NULL REFERENCES admin_users(id),
    kind         TEXT NOT NULL,
    name         TEXT,
    -- Access and refresh tokens of one login share a family, revoked together.
    family       TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX auth_tokens_admin ON auth_tokens(admin_id, kind);
CREATE INDEX auth_tokens_family ON auth_tokens(family);

-- Failed logins per account and per address, shared by every replica.
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT,
    before_json TEXT,
    after_json  TEXT,
    remote_addr TEXT
);
CREATE INDEX audit_log_entity ON audit_log(entity, entity_id, id);
CREATE INDEX audit_log_actor ON audit_log(actor_id, id);

CREATE TABLE customers (
    id         TEXT PRIMARY KEY,
    number     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    phone      TEXT,
    email      TEXT,
    address    TEXT,
    notes      TEXT,
    -- Credit (positive) the customer holds; overpayments land here.
    balance    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX customers_name ON customers(name);
CREATE INDEX customers_phone ON customers(phone);

CREATE TABLE customer_counter (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO customer_counter (id, last) VALUES (1, 0);

-- hotspot plans sell vouchers; pppoe plans are billed monthly (price = monthly price).
ALTER TABLE plans ADD COLUMN kind TEXT NOT NULL DEFAULT 'hotspot';
ALTER TABLE plans ADD COLUMN isolation_profile TEXT;
ALTER TABLE plans ADD COLUMN archived_at BIGINT;
ALTER TABLE plans ADD COLUMN updated_at BIGINT;

CREATE TABLE site_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE site_group_members (
    group_id TEXT NOT NULL REFERENCES site_groups(id),
    site_id  TEXT NOT NULL REFERENCES sites(id),
    PRIMARY KEY (group_id, site_id)
);
CREATE INDEX site_group_members_site ON site_group_members(site_id);

CREATE TABLE voucher_batches (
    id            TEXT PRIMARY KEY,
    plan_id       TEXT NOT NULL REFERENCES plans(id),
    scope         TEXT NOT NULL,
    site_id       TEXT REFERENCES sites(id),
    group_id      TEXT REFERENCES site_groups(id),
    count         BIGINT NOT NULL,
    prefix        TEXT NOT NULL,
    code_length   BIGINT NOT NULL,
    password_mode TEXT NOT NULL,
    price         BIGINT NOT NULL,
    -- The reseller who owns the batch, when sold to or bought by one.
    owner_id      TEXT REFERENCES admin_users(id),
    note          TEXT,
    created_by    TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX voucher_batches_owner ON voucher_batches(owner_id, created_at);

ALTER TABLE vouchers ADD COLUMN batch_id TEXT REFERENCES voucher_batches(id);
ALTER TABLE vouchers ADD COLUMN group_id TEXT REFERENCES site_groups(id);
ALTER TABLE vouchers ADD COLUMN price BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vouchers ADD COLUMN sold_at BIGINT;
ALTER TABLE vouchers ADD COLUMN sold_to TEXT REFERENCES admin_users(id);
ALTER TABLE vouchers ADD COLUMN expires_at BIGINT;
CREATE INDEX vouchers_batch ON vouchers(batch_id, code);
CREATE INDEX vouchers_status ON vouchers(status, code);
CREATE INDEX vouchers_sold_to ON vouchers(sold_to, code);
CREATE INDEX vouchers_group ON vouchers(group_id);

CREATE TABLE subscriptions (
    id             TEXT PRIMARY KEY,
    customer_id    TEXT NOT NULL REFERENCES customers(id),
    plan_id        TEXT NOT NULL REFERENCES plans(id),
    site_id        TEXT NOT NULL REFERENCES sites(id),
    username       TEXT NOT NULL UNIQUE,
    password       TEXT NOT NULL,
    static_ip      TEXT,
    -- Day of month (1-28) a billing cycle starts.
    billing_day    BIGINT NOT NULL,
    -- Days after issue an invoice is due, then days after due before isolation.
    due_days       BIGINT NOT NULL,
    grace_days     BIGINT NOT NULL,
    status         TEXT NOT NULL,
    -- Start of the first cycle not invoiced yet.
    next_cycle_at  BIGINT NOT NULL,
    started_at     BIGINT NOT NULL,
    isolated_at    BIGINT,
    terminated_at  BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions(customer_id);
CREATE INDEX subscriptions_site ON subscriptions(site_id);
CREATE INDEX subscriptions_status ON subscriptions(status, next_cycle_at);

-- Gapless invoice numbers: one row per year, locked by the transaction that numbers.
CREATE TABLE invoice_counters (
    year BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE invoices (
    id              TEXT PRIMARY KEY,
    number          TEXT NOT NULL UNIQUE,
    customer_id     TEXT NOT NULL REFERENCES customers(id),
    subscription_id TEXT REFERENCES subscriptions(id),
    kind            TEXT NOT NULL,
    period_start    BIGINT,
    period_end      BIGINT,
    subtotal        BIGINT NOT NULL,
    tax             BIGINT NOT NULL,
    total           BIGINT NOT NULL,
    tax_rate_bp     BIGINT NOT NULL,
    tax_inclusive   BIGINT NOT NULL,
    amount_paid     BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    paid_at         BIGINT,
    voided_at       BIGINT,
    UNIQUE (subscription_id, kind, period_start)
);
CREATE INDEX invoices_customer ON invoices(customer_id, issued_at);
CREATE INDEX invoices_status ON invoices(status, due_at);

CREATE TABLE invoice_lines (
    invoice_id  TEXT NOT NULL REFERENCES invoices(id),
    line_no     BIGINT NOT NULL,
    description TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);

CREATE TABLE payments (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    invoice_id  TEXT REFERENCES invoices(id),
    amount      BIGINT NOT NULL,
    method      TEXT NOT NULL,
    gateway     TEXT,
    external_id TEXT,
    reference   TEXT,
    note        TEXT,
    received_by TEXT REFERENCES admin_users(id),
    received_at BIGINT NOT NULL,
    UNIQUE (gateway, external_id)
);
CREATE INDEX payments_customer ON payments(customer_id, received_at);
CREATE INDEX payments_invoice ON payments(invoice_id);
CREATE INDEX payments_received ON payments(received_at);

-- Scheduled jobs: one lease row per job; a replica runs a job only while it holds the lease.
CREATE TABLE job_leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT,
    expires_at   BIGINT NOT NULL,
    last_run_at  BIGINT,
    last_outcome TEXT
);
