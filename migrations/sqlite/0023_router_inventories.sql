-- What a router import read: the answer to a read_router_accounts command (the router's
-- hotspot users and PPP secrets with their profiles, and who was online), as JSON, kept
-- until the operator looks at the dry run and applies it.
CREATE TABLE router_inventories (
    command_id  BIGINT NOT NULL PRIMARY KEY REFERENCES commands(id),
    site_id     TEXT NOT NULL REFERENCES sites(id),
    accounts    TEXT NOT NULL,
    read_at     BIGINT NOT NULL
);
