-- Spine schema: settings, sites, enrollment, agent certificates, sync log, plans, vouchers,
-- accounting. Timestamps are UTC unix milliseconds (BIGINT) on both backends.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sites (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    session_id      TEXT,
    connected_at    BIGINT,
    disconnected_at BIGINT,
    last_seen_at    BIGINT,
    agent_version   TEXT,
    sync_seq        BIGINT NOT NULL DEFAULT 0,
    outbox_pending  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE enrollment_tokens (
    token_hash TEXT PRIMARY KEY,
    site_id    TEXT NOT NULL REFERENCES sites(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX enrollment_tokens_site ON enrollment_tokens(site_id);

CREATE TABLE agent_certificates (
    serial      TEXT PRIMARY KEY,
    site_id     TEXT NOT NULL REFERENCES sites(id),
    issued_at   BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX agent_certificates_site ON agent_certificates(site_id);

CREATE TABLE plans (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    price                 BIGINT NOT NULL DEFAULT 0,
    rate_limit            TEXT,
    time_limit_secs       BIGINT,
    data_limit_bytes      BIGINT,
    validity_secs         BIGINT,
    shared_users          BIGINT NOT NULL DEFAULT 1,
    interim_interval_secs BIGINT,
    router_group          TEXT,
    address_list          TEXT,
    created_at            BIGINT NOT NULL
);

CREATE TABLE vouchers (
    code           TEXT PRIMARY KEY,
    password       TEXT,
    plan_id        TEXT NOT NULL REFERENCES plans(id),
    site_id        TEXT REFERENCES sites(id),
    status         TEXT NOT NULL,
    activated_at   BIGINT,
    used_time_secs BIGINT NOT NULL DEFAULT 0,
    used_bytes     BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE INDEX vouchers_site ON vouchers(site_id, code);

-- One global counter numbers every change; its row lock orders concurrent writers, so
-- changes become visible in sequence order and a reader after a cursor never skips one.
CREATE TABLE sync_counter (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO sync_counter (id, seq) VALUES (1, 0);

-- site_id NULL means the change concerns every site.
CREATE TABLE sync_log (
    seq        BIGINT PRIMARY KEY,
    site_id    TEXT,
    item_kind  TEXT NOT NULL,
    item_key   TEXT NOT NULL,
    payload    BLOB,
    created_at BIGINT NOT NULL
);
CREATE INDEX sync_log_site ON sync_log(site_id, seq);

CREATE TABLE accounting_records (
    site_id            TEXT NOT NULL REFERENCES sites(id),
    record_id          TEXT NOT NULL,
    nas_identifier     TEXT NOT NULL,
    nas_ip             TEXT,
    session_id         TEXT NOT NULL,
    username           TEXT NOT NULL,
    status             TEXT NOT NULL,
    event_time         BIGINT NOT NULL,
    session_time_secs  BIGINT NOT NULL,
    input_octets       BIGINT NOT NULL,
    output_octets      BIGINT NOT NULL,
    input_packets      BIGINT NOT NULL,
    output_packets     BIGINT NOT NULL,
    terminate_cause    BIGINT,
    framed_ip          TEXT,
    calling_station_id TEXT,
    received_at        BIGINT NOT NULL,
    PRIMARY KEY (site_id, record_id)
);
CREATE INDEX accounting_records_session ON accounting_records(site_id, session_id);
