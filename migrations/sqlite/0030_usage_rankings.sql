-- Rankings read their order from an index instead of summing every account.
-- usage_account_monthly is usage_monthly summed over sites per account and local month:
-- one month's top accounts are the first rows of usage_account_monthly_rank, as
-- usage_customer_monthly_rank serves customers (a ranking of 170,000 account-and-site rows
-- took 160-310 ms). usage_site_daily is usage_daily summed over accounts per local day and
-- site: a site ranking over any range of days and the per-day chart of all usage read one
-- row per site and day instead of one per account and day. Ingest writes both in the
-- transaction that writes usage_daily and usage_monthly; the data steps
-- 0030_usage_account_monthly and 0030_usage_site_daily file the rows stored before them
-- (after 0019's months).
CREATE TABLE usage_account_monthly (
    username          TEXT NOT NULL,
    month             BIGINT NOT NULL,
    session_time_secs BIGINT NOT NULL,
    input_octets      BIGINT NOT NULL,
    output_octets     BIGINT NOT NULL,
    sessions          BIGINT NOT NULL,
    octets            BIGINT NOT NULL,
    PRIMARY KEY (username, month)
);
CREATE INDEX usage_account_monthly_rank ON usage_account_monthly (month, octets DESC, username);

CREATE TABLE usage_site_daily (
    day               BIGINT NOT NULL,
    site_id           TEXT NOT NULL REFERENCES sites(id),
    session_time_secs BIGINT NOT NULL,
    input_octets      BIGINT NOT NULL,
    output_octets     BIGINT NOT NULL,
    sessions          BIGINT NOT NULL,
    PRIMARY KEY (day, site_id)
);
