-- One-off data steps written in Rust, recorded here so each runs once per database. The
-- first, `0013_scrub_audit_secrets`, redacts passwords, tokens and keys from audit snapshots
-- and event payloads stored before the controller redacted them on write (secrets.rs).
CREATE TABLE data_migrations (
    name       TEXT PRIMARY KEY,
    applied_at BIGINT NOT NULL
);
