-- Offline double use: a voucher whose records from several sites show it used beyond its
-- plan (over_budget), by more sessions at once than shared users allows (too_many_devices)
-- or by another device than the one it is locked to (mac_lock). One row per voucher and
-- kind, so replayed or re-sent records never record the same conflict twice; detail (JSON)
-- holds the sites, the sessions and how much over, kept current as more records arrive;
-- resolution is what the operator's policy did when it was found (closed or accepted).
CREATE TABLE voucher_conflicts (
    id           TEXT PRIMARY KEY,
    voucher_code TEXT NOT NULL REFERENCES vouchers(code),
    kind         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    resolution   TEXT NOT NULL,
    detected_at  BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (voucher_code, kind)
);
CREATE INDEX voucher_conflicts_detected ON voucher_conflicts (detected_at);
