-- The router's state as the site's agent last reported it (JSON of the wire RouterReport).
ALTER TABLE sites ADD COLUMN router_json TEXT;
