//! Who may do what: admin roles and permissions, password hashing, tokens and login
//! throttling. The API's extractor turns a bearer token into a [`Principal`].

pub mod password;
pub mod roles;
pub mod throttle;
pub mod tokens;
pub mod totp;

pub use roles::{Perm, Role};

/// An authenticated caller of the admin API.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The admin user's id.
    pub admin_id: String,
    /// The admin user's login name.
    pub username: String,
    /// The admin user's role.
    pub role: Role,
    /// The token that authenticated this request.
    pub token_id: String,
    /// Access tokens come from a login; API tokens from an integration.
    pub token_kind: tokens::TokenKind,
    /// The role requires two-factor sign-in and the account has not set it up yet: a login
    /// credential of such an account may only enrol (see [`ENROL_ONLY_SQL`]).
    pub totp_enrolment_only: bool,
}

/// A column expression, over `admin_users a`, that is 1 when the account's role enforces
/// two-factor sign-in and the account has no confirmed authenticator, else 0.
pub const ENROL_ONLY_SQL: &str = "CAST(CASE WHEN EXISTS (SELECT 1 FROM totp_enforced_roles r WHERE r.role = a.role) \
     AND NOT EXISTS (SELECT 1 FROM admin_totp x WHERE x.admin_id = a.id AND x.confirmed_at IS NOT NULL) \
     THEN 1 ELSE 0 END AS BIGINT) AS enrol_only";

impl Principal {
    /// Whether this caller's role grants `perm`.
    pub fn can(&self, perm: Perm) -> bool {
        self.role.allows(perm)
    }
}
