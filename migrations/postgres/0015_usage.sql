-- The usage ledger: what each account used, folded from accounting as it is ingested.
-- usage_sessions holds every session's highest counters (growth beyond them is new usage,
-- so replayed or reordered records add nothing); usage_daily adds that growth up per local
-- day, site and account, which is what reports, the portal and budgets read instead of
-- scanning accounting_records.
CREATE TABLE usage_sessions (
    site_id           TEXT NOT NULL REFERENCES sites(id),
    nas_identifier    TEXT NOT NULL,
    session_id        TEXT NOT NULL,
    username          TEXT NOT NULL,
    session_time_secs BIGINT NOT NULL,
    input_octets      BIGINT NOT NULL,
    output_octets     BIGINT NOT NULL,
    first_at          BIGINT NOT NULL,
    last_at           BIGINT NOT NULL,
    PRIMARY KEY (site_id, session_id, nas_identifier)
);
CREATE INDEX usage_sessions_user ON usage_sessions (username, last_at);

CREATE TABLE usage_daily (
    day               BIGINT NOT NULL,
    site_id           TEXT NOT NULL REFERENCES sites(id),
    username          TEXT NOT NULL,
    session_time_secs BIGINT NOT NULL,
    input_octets      BIGINT NOT NULL,
    output_octets     BIGINT NOT NULL,
    sessions          BIGINT NOT NULL,
    PRIMARY KEY (day, site_id, username)
);
CREATE INDEX usage_daily_user ON usage_daily (username, day);
CREATE INDEX usage_daily_site ON usage_daily (site_id, day);

-- What was ingested before this table: each session's highs, credited whole to the UTC day
-- of its last record (the growth between its records is not known any more).
INSERT INTO usage_sessions (site_id, nas_identifier, session_id, username, session_time_secs,
                            input_octets, output_octets, first_at, last_at)
    SELECT site_id, nas_identifier, session_id, MIN(username), MAX(session_time_secs),
           MAX(input_octets), MAX(output_octets), MIN(event_time), MAX(event_time)
    FROM accounting_records
    WHERE status IN ('start', 'interim-update', 'stop')
    GROUP BY site_id, nas_identifier, session_id;
INSERT INTO usage_daily (day, site_id, username, session_time_secs, input_octets, output_octets, sessions)
    SELECT (last_at / 86400000) * 86400000, site_id, username, SUM(session_time_secs),
           SUM(input_octets), SUM(output_octets), COUNT(*)
    FROM usage_sessions
    GROUP BY (last_at / 86400000) * 86400000, site_id, username;

-- Reports of voucher sales read vouchers by the time they were sold.
CREATE INDEX vouchers_sold ON vouchers (sold_at);
-- New subscribers per month.
CREATE INDEX subscriptions_created ON subscriptions (created_at);
