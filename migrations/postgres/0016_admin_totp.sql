-- Two-factor sign-in (TOTP, RFC 6238) for admin accounts.
-- admin_totp holds one authenticator secret per admin: pending until the admin proves the
-- app works with a code (confirmed_at), then required at every sign-in. The secret has to
-- be stored readable (the server computes the same HMAC as the app); last_step is the
-- newest 30-second step a code was accepted for, so no code works twice.
CREATE TABLE admin_totp (
    admin_id     TEXT PRIMARY KEY REFERENCES admin_users(id),
    secret       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT
);

-- The roles whose accounts must sign in with a code (one row per role, absent = optional).
CREATE TABLE totp_enforced_roles (
    role       TEXT PRIMARY KEY,
    enforced_at BIGINT NOT NULL
);

-- A web sign-in between the right password and the code: only the SHA-256 of the cookie's
-- token is stored; it lives five minutes and allows a few codes.
CREATE TABLE admin_login_pending (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    admin_id   TEXT NOT NULL REFERENCES admin_users(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX admin_login_pending_expiry ON admin_login_pending (expires_at);
