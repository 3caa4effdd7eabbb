-- Who is online: the usage ledger's sessions also keep whether a Stop was seen and where the
-- session is (NAS address, framed IP, calling station), so the live session list reads
-- usage_sessions alone instead of scanning accounting_records.
ALTER TABLE usage_sessions ADD COLUMN stopped_at BIGINT;
ALTER TABLE usage_sessions ADD COLUMN nas_ip TEXT;
ALTER TABLE usage_sessions ADD COLUMN framed_ip TEXT;
ALTER TABLE usage_sessions ADD COLUMN calling_station_id TEXT;

-- Sessions ingested before: their Stop and addresses from the records already stored.
UPDATE usage_sessions SET
    stopped_at = (SELECT MIN(a.event_time) FROM accounting_records a
                  WHERE a.site_id = usage_sessions.site_id AND a.session_id = usage_sessions.session_id
                    AND a.nas_identifier = usage_sessions.nas_identifier AND a.status = 'stop'),
    nas_ip = (SELECT MAX(a.nas_ip) FROM accounting_records a
              WHERE a.site_id = usage_sessions.site_id AND a.session_id = usage_sessions.session_id
                AND a.nas_identifier = usage_sessions.nas_identifier),
    framed_ip = (SELECT MAX(a.framed_ip) FROM accounting_records a
                 WHERE a.site_id = usage_sessions.site_id AND a.session_id = usage_sessions.session_id
                   AND a.nas_identifier = usage_sessions.nas_identifier),
    calling_station_id = (SELECT MAX(a.calling_station_id) FROM accounting_records a
                          WHERE a.site_id = usage_sessions.site_id AND a.session_id = usage_sessions.session_id
                            AND a.nas_identifier = usage_sessions.nas_identifier);

-- The open sessions heard of lately: only these are ever listed.
CREATE INDEX usage_sessions_open ON usage_sessions (last_at) WHERE stopped_at IS NULL;
