-- The agent's RADIUS counters as it last reported them with a heartbeat (JSON), so the
-- controller's /metrics shows every site's logins and rejects, sites behind NAT included.
ALTER TABLE sites ADD COLUMN radius_json TEXT;
