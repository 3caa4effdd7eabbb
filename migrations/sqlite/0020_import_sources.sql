-- What an import from another billing system created, keyed by the source system's own
-- ids: a second run of the same import skips these rows ('already imported') instead of
-- creating them twice. kind is site, plan, customer, subscription, active_voucher or
-- voucher; target_id the MikroBill id (or voucher code) created for the row.
CREATE TABLE import_sources (
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (source, kind, source_id)
);
