//! Who may do what: admin roles and permissions, password hashing, tokens and login
//! throttling. The API's extractor turns a bearer token into a [`Principal`].

pub mod password;
pub mod roles;
pub mod throttle;
pub mod tokens;

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
}

impl Principal {
    /// Whether this caller's role grants `perm`.
    pub fn can(&self, perm: Perm) -> bool {
        self.role.allows(perm)
    }
}
