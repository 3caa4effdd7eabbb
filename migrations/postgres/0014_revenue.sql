-- Every amount of money the business takes, in one place: customer and gateway payments,
-- vouchers sold at the cash desk, and resellers' top-ups (a reseller's later purchases from
-- that balance are not new money, nor is a customer's credit moved onto an invoice). The
-- dashboard reads revenue from this table only. A row is written in the transaction of the
-- sale, payment or top-up it records; (source, reference) makes writing it twice harmless.
CREATE TABLE revenue (
    source      TEXT NOT NULL,
    reference   TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    method      TEXT,
    plan_id     TEXT,
    site_id     TEXT,
    reseller_id TEXT,
    PRIMARY KEY (source, reference)
);
CREATE INDEX revenue_received ON revenue (received_at);

-- What was taken before this table: payments other than credit, and vouchers sold at the
-- cash desk (a voucher sold to a reseller names it in sold_to). Top-ups before this release
-- were kept only in the audit log and are not carried over.
INSERT INTO revenue (source, reference, amount, received_at, method)
    SELECT 'payment', id, amount, received_at, method FROM payments WHERE method <> 'credit';
INSERT INTO revenue (source, reference, amount, received_at, method, plan_id, site_id)
    SELECT 'voucher_sale', code, price, sold_at, 'cash', plan_id, site_id FROM vouchers
    WHERE sold_at IS NOT NULL AND sold_to IS NULL AND price > 0;
