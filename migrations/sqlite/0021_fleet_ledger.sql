-- The fleet ledger at every site: a plan may lock its vouchers to the first device that uses
-- them (mac_lock, 0 or 1); a voucher keeps the device it is bound to and its use split by site
-- with the sessions open at each (fleet_usage, JSON), which agents get with the voucher so
-- each site adds its own unacknowledged use to the others' exactly once.
ALTER TABLE plans ADD COLUMN mac_lock INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vouchers ADD COLUMN bound_mac TEXT;
ALTER TABLE vouchers ADD COLUMN fleet_usage TEXT;
