-- Rankings of customers read one row per customer and month instead of mapping every
-- account's month to its customer. usage_customer_monthly is usage_monthly joined to
-- subscriptions (username -> customer_id) and summed per customer and local month: ingest
-- adds a batch's months to it in the same transaction as usage_monthly, and the triggers
-- below refile a customer whenever a subscription is created, deleted, renamed or moved to
-- another customer, so it always equals that join. octets (in + out) is what rankings order
-- by: one month's top customers are the first rows of usage_customer_monthly_rank. Filled
-- from usage_monthly by the data step 0027_usage_customer_monthly (after 0019's months).
CREATE TABLE usage_customer_monthly (
    customer_id       TEXT NOT NULL,
    month             BIGINT NOT NULL,
    session_time_secs BIGINT NOT NULL,
    input_octets      BIGINT NOT NULL,
    output_octets     BIGINT NOT NULL,
    sessions          BIGINT NOT NULL,
    octets            BIGINT NOT NULL,
    PRIMARY KEY (customer_id, month)
);
CREATE INDEX usage_customer_monthly_rank ON usage_customer_monthly (month, octets DESC, customer_id);

-- Refiles the customers a subscription row change touches from usage_monthly.
CREATE TRIGGER subscriptions_usage_insert AFTER INSERT ON subscriptions
BEGIN
    DELETE FROM usage_customer_monthly WHERE customer_id = NEW.customer_id;
    INSERT INTO usage_customer_monthly (customer_id, month, session_time_secs, input_octets,
                                        output_octets, sessions, octets)
        SELECT s.customer_id, u.month, SUM(u.session_time_secs), SUM(u.input_octets),
               SUM(u.output_octets), SUM(u.sessions), SUM(u.input_octets + u.output_octets)
        FROM subscriptions s JOIN usage_monthly u ON u.username = s.username
        WHERE s.customer_id = NEW.customer_id
        GROUP BY s.customer_id, u.month;
END;

CREATE TRIGGER subscriptions_usage_delete AFTER DELETE ON subscriptions
BEGIN
    DELETE FROM usage_customer_monthly WHERE customer_id = OLD.customer_id;
    INSERT INTO usage_customer_monthly (customer_id, month, session_time_secs, input_octets,
                                        output_octets, sessions, octets)
        SELECT s.customer_id, u.month, SUM(u.session_time_secs), SUM(u.input_octets),
               SUM(u.output_octets), SUM(u.sessions), SUM(u.input_octets + u.output_octets)
        FROM subscriptions s JOIN usage_monthly u ON u.username = s.username
        WHERE s.customer_id = OLD.customer_id
        GROUP BY s.customer_id, u.month;
END;

CREATE TRIGGER subscriptions_usage_update AFTER UPDATE OF username, customer_id ON subscriptions
WHEN OLD.username <> NEW.username OR OLD.customer_id <> NEW.customer_id
BEGIN
    DELETE FROM usage_customer_monthly WHERE customer_id IN (OLD.customer_id, NEW.customer_id);
    INSERT INTO usage_customer_monthly (customer_id, month, session_time_secs, input_octets,
                                        output_octets, sessions, octets)
        SELECT s.customer_id, u.month, SUM(u.session_time_secs), SUM(u.input_octets),
               SUM(u.output_octets), SUM(u.sessions), SUM(u.input_octets + u.output_octets)
        FROM subscriptions s JOIN usage_monthly u ON u.username = s.username
        WHERE s.customer_id IN (OLD.customer_id, NEW.customer_id)
        GROUP BY s.customer_id, u.month;
END;

-- Vouchers sold per local day (at the operator's offset when sold), site, plan, reseller and
-- batch ('' where none is named, so the key has no NULLs), written where a voucher is sold,
-- in the same transaction. Voucher sales reports read it instead of every sold voucher.
-- Filled from vouchers.sold_at by the data step 0027_voucher_sales_daily.
CREATE TABLE voucher_sales_daily (
    day         BIGINT NOT NULL,
    site_id     TEXT NOT NULL,
    plan_id     TEXT NOT NULL,
    reseller_id TEXT NOT NULL,
    batch_id    TEXT NOT NULL,
    count       BIGINT NOT NULL,
    amount      BIGINT NOT NULL,
    PRIMARY KEY (day, site_id, plan_id, reseller_id, batch_id)
);
