-- Accounting is stored first and folded into the usage ledger afterwards, so an agent's batch
-- is answered once its records are durable and the ledger's many rows per record (session,
-- days, months, customer months, vouchers) are written in large folds that collapse a
-- session's readings into one row each.
--
-- Each site numbers its stored groups: a store takes the site's `accounting_stored` row, so
-- the numbers of one site are committed in order and what a fold sees of a site is always
-- every group up to some number. `accounting_folded` holds the last group folded; a fold
-- takes that row, so two folds (two replicas) never fold the same site at once. Records
-- stored before this migration carry 0: they are folded already.
ALTER TABLE accounting_records ADD COLUMN stored_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX accounting_records_stored_seq ON accounting_records(site_id, stored_seq);
CREATE TABLE accounting_stored (
    site_id TEXT PRIMARY KEY REFERENCES sites(id),
    seq     BIGINT NOT NULL
);
CREATE TABLE accounting_folded (
    site_id TEXT PRIMARY KEY REFERENCES sites(id),
    seq     BIGINT NOT NULL
);
