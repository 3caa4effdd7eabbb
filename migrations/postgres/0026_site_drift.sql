-- Drift: what a site's agent found changed on its router by hand (owned items changed,
-- removed or shadowed by the operator's own, RADIUS/AAA settings changed). site_drift holds
-- each site's current state, the agent's latest report: findings is its number of entries
-- (0: clean), entries the report as JSON (no secret values: the agent never sends them),
-- checked_at the agent's time of the report, which is also its identity (a report not newer
-- than the stored one is a re-send and ignored), drifted_since when it last went from clean
-- to drifted. site_drift_reports keeps the recent reports per site (bounded retention).
CREATE TABLE site_drift (
    site_id       TEXT PRIMARY KEY REFERENCES sites(id),
    findings      BIGINT NOT NULL,
    entries       TEXT NOT NULL,
    checked_at    BIGINT NOT NULL,
    received_at   BIGINT NOT NULL,
    drifted_since BIGINT
);
CREATE TABLE site_drift_reports (
    id          BIGSERIAL PRIMARY KEY,
    site_id     TEXT NOT NULL REFERENCES sites(id),
    findings    BIGINT NOT NULL,
    entries     TEXT NOT NULL,
    checked_at  BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX site_drift_reports_site ON site_drift_reports (site_id, id);
