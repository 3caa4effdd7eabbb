-- CA rotation. Each row is one rotation of the controller's CA: the new CA's key and
-- certificate are files in the data directory (slot 'ca' is ca.crt/ca.key, slot 'ca-next'
-- ca-next.crt/ca-next.key, with ca-cross.crt the new CA signed by the previous one), the
-- row records its fingerprint and the phases: published (agents trust both, the previous CA
-- still issues), activated (the new CA issues and the edge presents it), retired (the
-- previous CA is trusted no more). forced_pending is how many agents still ran on the
-- previous CA when an operator forced its retirement (0 otherwise). At most one rotation is
-- open at a time: the index below makes a second concurrent publish fail.
CREATE TABLE ca_rotations (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    slot                 TEXT NOT NULL,
    fingerprint          TEXT NOT NULL,
    previous_fingerprint TEXT NOT NULL,
    published_at         BIGINT NOT NULL,
    activated_at         BIGINT,
    retired_at           BIGINT,
    forced_pending       BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX ca_rotations_open ON ca_rotations (slot) WHERE retired_at IS NULL;
-- Which CA signed each agent certificate (hex SHA-256 of the CA certificate); NULL for
-- certificates issued before rotations existed, all by the first CA.
ALTER TABLE agent_certificates ADD COLUMN ca_fingerprint TEXT;
