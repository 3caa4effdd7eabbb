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
