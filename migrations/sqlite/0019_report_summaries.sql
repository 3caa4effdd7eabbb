-- Reports stay fast on a large ledger. revenue_daily adds the revenue ledger up per local
-- day (at the operator's UTC offset when the money was taken) and per source, method,
-- site, plan and reseller ('' where none is named, so the key has no NULLs); it is written
-- in the transaction of each revenue row and filled from the existing rows by the data step
-- 0019_revenue_daily, which knows the stored offset. Revenue reports and the dashboard read
-- it instead of every payment and sale.
CREATE TABLE revenue_daily (
    day         BIGINT NOT NULL,
    source      TEXT NOT NULL,
    method      TEXT NOT NULL,
    site_id     TEXT NOT NULL,
    plan_id     TEXT NOT NULL,
    reseller_id TEXT NOT NULL,
    count       BIGINT NOT NULL,
    amount      BIGINT NOT NULL,
    PRIMARY KEY (day, source, method, site_id, plan_id, reseller_id)
);

-- Receivables aging reads unpaid invoices per customer from the index alone.
CREATE INDEX invoices_unpaid ON invoices (status, customer_id, due_at, total, amount_paid);

-- Usage per local month, site and account, written beside usage_daily in the ingest
-- transaction: a month's ranking of 100,000 accounts reads one row per account and site
-- instead of one per day. Filled from usage_daily by the data step 0019_usage_monthly,
-- which knows the stored offset's calendar.
CREATE TABLE usage_monthly (
    month             BIGINT NOT NULL,
    site_id           TEXT NOT NULL REFERENCES sites(id),
    username          TEXT NOT NULL,
    session_time_secs BIGINT NOT NULL,
    input_octets      BIGINT NOT NULL,
    output_octets     BIGINT NOT NULL,
    sessions          BIGINT NOT NULL,
    PRIMARY KEY (month, site_id, username)
);
CREATE INDEX usage_monthly_user ON usage_monthly (username, month);
