//! Drift: what an agent found changed on its router by hand since it last made the router
//! hold what it wants (`AgentMessage::Drift`, protocol 7). Values of secrets never travel:
//! the agent sends [`REDACTED`] in their place.

use serde::{Deserialize, Serialize};

/// The value sent instead of a secret's (RADIUS shared secrets, passwords).
pub const REDACTED: &str = "[redacted]";

/// Property names whose values are secrets, in every menu the agent manages.
pub const SECRET_PROPERTIES: [&str; 2] = ["secret", "password"];

/// Whether `property` holds a secret whose value must not leave the agent.
pub fn is_secret(property: &str) -> bool {
    SECRET_PROPERTIES.contains(&property)
}

/// One reconciliation's findings; an empty `entries` says the router holds what the agent
/// wants again (sent only when drift clears).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftReport {
    /// When the reconciliation that found this ran (agent clock, UTC unix milliseconds);
    /// also the report's identity: the controller ignores one not newer than it holds.
    pub checked_at_ms: i64,
    /// What was found, empty when clean.
    pub entries: Vec<DriftEntry>,
}

impl DriftReport {
    /// Whether the router had drifted.
    pub fn is_drifted(&self) -> bool {
        !self.entries.is_empty()
    }
}

/// One item found changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftEntry {
    /// The RouterOS menu, e.g. `/ip/hotspot/user/profile`.
    pub menu: String,
    /// The item's name (`settings` for a menu without items, the address of a `/radius` entry).
    pub name: String,
    /// What kind of change.
    pub kind: DriftKind,
    /// The properties that differ, old (what the agent had set or wants) and new (what
    /// the router held); empty for a removed or shadowed item.
    pub properties: Vec<PropertyDrift>,
    /// Whether the agent put it back.
    pub repaired: bool,
}

/// What happened to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// An item the agent made has other property values than the agent set.
    ChangedByHand,
    /// An item the agent made is gone.
    RemovedByHand,
    /// An item the agent did not make holds a name the agent wants.
    ShadowedByUnmanaged,
    /// The router's RADIUS or PPP AAA settings no longer point at the agent as it set them.
    AaaChanged,
}

impl DriftKind {
    /// Storage and wire name, e.g. `changed_by_hand`.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::ChangedByHand => "changed_by_hand",
            DriftKind::RemovedByHand => "removed_by_hand",
            DriftKind::ShadowedByUnmanaged => "shadowed_by_unmanaged",
            DriftKind::AaaChanged => "aaa_changed",
        }
    }
}

/// One property that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyDrift {
    /// Property name, e.g. `rate-limit`.
    pub name: String,
    /// The value the agent set or wants (`None`: unset); [`REDACTED`] for a secret.
    pub old: Option<String>,
    /// The value found on the router (`None`: unset or unreadable); [`REDACTED`] for a secret.
    pub new: Option<String>,
}

impl PropertyDrift {
    /// A difference, with a secret's values replaced by [`REDACTED`].
    pub fn new(name: &str, old: Option<&str>, new: Option<&str>) -> PropertyDrift {
        let shown = |v: Option<&str>| {
            v.map(|v| {
                if is_secret(name) {
                    REDACTED.to_owned()
                } else {
                    v.to_owned()
                }
            })
        };
        PropertyDrift {
            name: name.to_owned(),
            old: shown(old),
            new: shown(new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_kinds_are_named() {
        let p = PropertyDrift::new("secret", Some("hunter2"), Some("other"));
        assert_eq!(p.old.as_deref(), Some(REDACTED));
        assert_eq!(p.new.as_deref(), Some(REDACTED));
        let p = PropertyDrift::new("password", None, Some("x"));
        assert_eq!((p.old, p.new.as_deref()), (None, Some(REDACTED)));
        let p = PropertyDrift::new("rate-limit", Some("1M/2M"), Some("5M/5M"));
        assert_eq!(p.new.as_deref(), Some("5M/5M"));
        for kind in [
            DriftKind::ChangedByHand,
            DriftKind::RemovedByHand,
            DriftKind::ShadowedByUnmanaged,
            DriftKind::AaaChanged,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }
}
