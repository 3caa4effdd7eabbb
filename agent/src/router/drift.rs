//! The drift decision: from what a reconciliation saw and did, the RADIUS/AAA settings read
//! against the wanted ones, and what the agent last made the router hold (the baseline),
//! what was changed on the router by hand. Pure, with `now` passed in.
//!
//! A wanted value that differs from the router's is drift only when the router's value also
//! differs from the baseline: if the router still holds what the agent set last time, it is
//! the wanted value that moved (a plan edited at the controller), not the router. Without a
//! baseline for an item (first run, or an item the agent has never seen settled) nothing is
//! claimed about it.

use super::values::equivalent;
use mikrobill_protocol::drift::{DriftEntry, DriftKind, DriftReport, PropertyDrift};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the agent last made the router hold: per (menu, name), each wanted property's value.
pub type Baseline = BTreeMap<(String, String), BTreeMap<String, String>>;

/// What reconciliation found for one wanted item before acting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The menu.
    pub menu: String,
    /// The item's name.
    pub name: String,
    /// The properties wanted (an empty value means unset).
    pub wanted: Vec<(String, String)>,
    /// What the router had.
    pub found: Found,
    /// Whether the router holds the wanted item now (nothing to do, or the write succeeded).
    pub settled: bool,
}

/// What the router had under a wanted name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// The agent's own item, with the router's value of each wanted property (`None`: unset).
    Ours(Vec<(String, Option<String>)>),
    /// Nothing.
    Missing,
    /// An item the agent did not make.
    Unmanaged,
}

/// One RADIUS/AAA setting as read from the router against what the agent wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AaaSeen {
    /// The menu, e.g. `/ppp/aaa`.
    pub menu: String,
    /// The item (`settings`, the agent's address for `/radius`, a hotspot profile's name).
    pub name: String,
    /// The property.
    pub property: String,
    /// The router's value (`None`: unset, unreadable, or the item is missing).
    pub read: Option<String>,
    /// The value the agent sets.
    pub wanted: String,
}

/// Decides the report of one reconciliation and the baseline for the next one.
/// `aaa` holds only settings that differ; `aaa_repaired` says whether they were written back.
pub(crate) fn decide(
    seen: &[Seen],
    aaa: &[AaaSeen],
    aaa_repaired: bool,
    baseline: &Baseline,
    now_ms: i64,
) -> (DriftReport, Baseline) {
    let mut entries = Vec::new();
    let mut next = Baseline::new();
    for item in seen {
        let key = (item.menu.clone(), item.name.clone());
        let before = baseline.get(&key);
        let entry = |kind, properties| DriftEntry {
            menu: item.menu.clone(),
            name: item.name.clone(),
            kind,
            properties,
            repaired: item.settled,
        };
        match &item.found {
            Found::Unmanaged => {
                // Not ours any more: once the operator's item goes, ours is simply created.
                entries.push(DriftEntry {
                    repaired: false,
                    ..entry(DriftKind::ShadowedByUnmanaged, Vec::new())
                });
                continue;
            }
            Found::Missing => {
                if before.is_some() {
                    entries.push(entry(DriftKind::RemovedByHand, Vec::new()));
                }
            }
            Found::Ours(read) => {
                let changed = hand_changes(read, before);
                if !changed.is_empty() {
                    entries.push(entry(DriftKind::ChangedByHand, changed));
                }
            }
        }
        if item.settled {
            next.insert(key, item.wanted.iter().cloned().collect());
        } else if let Some(before) = before {
            // Still not what the agent wants: compare against the same baseline next time.
            next.insert(key, before.clone());
        }
    }
    let mut aaa_items: BTreeMap<(&str, &str), Vec<PropertyDrift>> = BTreeMap::new();
    for s in aaa {
        aaa_items
            .entry((&s.menu, &s.name))
            .or_default()
            .push(PropertyDrift::new(
                &s.property,
                Some(&s.wanted),
                s.read.as_deref(),
            ));
    }
    for ((menu, name), properties) in aaa_items {
        entries.push(DriftEntry {
            menu: menu.to_owned(),
            name: name.to_owned(),
            kind: DriftKind::AaaChanged,
            properties,
            repaired: aaa_repaired,
        });
    }
    (
        DriftReport {
            checked_at_ms: now_ms,
            entries,
        },
        next,
    )
}

/// The properties whose router value differs from what the agent last set.
fn hand_changes(
    read: &[(String, Option<String>)],
    before: Option<&BTreeMap<String, String>>,
) -> Vec<PropertyDrift> {
    let Some(before) = before else {
        return Vec::new();
    };
    read.iter()
        .filter_map(|(property, value)| {
            let set = before.get(property)?;
            (!equivalent(property, value.as_deref(), set)).then(|| {
                PropertyDrift::new(
                    property,
                    Some(set.as_str()).filter(|s| !s.is_empty()),
                    value.as_deref().filter(|v| !v.is_empty()),
                )
            })
        })
        .collect()
}

/// Whether a report goes to the controller: every one that found something, and the first
/// clean one after drift (the controller's status clears then), never a clean one after clean.
pub(crate) fn worth_sending(last_sent: Option<&DriftReport>, report: &DriftReport) -> bool {
    report.is_drifted() || last_sent.is_some_and(DriftReport::is_drifted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_protocol::drift::REDACTED;
    use proptest::prelude::*;

    const MENU: &str = "/ip/hotspot/user/profile";

    fn attrs(rate: &str) -> Vec<(String, String)> {
        vec![
            ("rate-limit".into(), rate.into()),
            ("shared-users".into(), "1".into()),
        ]
    }

    fn ours(name: &str, wanted: &str, router: &str, settled: bool) -> Seen {
        Seen {
            menu: MENU.into(),
            name: name.into(),
            wanted: attrs(wanted),
            found: Found::Ours(
                attrs(router)
                    .into_iter()
                    .map(|(k, v)| (k, Some(v)))
                    .collect(),
            ),
            settled,
        }
    }

    fn baseline_of(name: &str, rate: &str) -> Baseline {
        Baseline::from([(
            (MENU.to_owned(), name.to_owned()),
            attrs(rate).into_iter().collect(),
        )])
    }

    #[test]
    fn a_rate_changed_by_hand_is_reported_with_old_and_new() {
        let (report, next) = decide(
            &[ours("gold", "1M/2M", "9M/9M", true)],
            &[],
            false,
            &baseline_of("gold", "1M/2M"),
            7,
        );
        assert_eq!(report.checked_at_ms, 7);
        assert_eq!(
            report.entries,
            [DriftEntry {
                menu: MENU.into(),
                name: "gold".into(),
                kind: DriftKind::ChangedByHand,
                properties: vec![PropertyDrift::new(
                    "rate-limit",
                    Some("1M/2M"),
                    Some("9M/9M")
                )],
                repaired: true,
            }]
        );
        assert_eq!(next, baseline_of("gold", "1M/2M"));
    }

    #[test]
    fn a_plan_edited_at_the_controller_is_not_drift() {
        // The router still holds what the agent set last time; the wanted value moved.
        let (report, next) = decide(
            &[ours("gold", "5M/5M", "1M/2M", true)],
            &[],
            false,
            &baseline_of("gold", "1M/2M"),
            1,
        );
        assert!(!report.is_drifted(), "{report:?}");
        assert_eq!(next, baseline_of("gold", "5M/5M"));
    }

    #[test]
    fn removed_shadowed_and_first_creation() {
        let missing = |name: &str| Seen {
            menu: MENU.into(),
            name: name.into(),
            wanted: attrs("1M/2M"),
            found: Found::Missing,
            settled: true,
        };
        let shadowed = Seen {
            found: Found::Unmanaged,
            settled: false,
            ..missing("silver")
        };
        let mut baseline = baseline_of("gold", "1M/2M");
        baseline.extend(baseline_of("silver", "1M/2M"));
        let (report, next) = decide(
            &[missing("gold"), missing("new"), shadowed],
            &[],
            false,
            &baseline,
            1,
        );
        let kinds: Vec<(&str, DriftKind, bool)> = report
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.repaired))
            .collect();
        assert_eq!(
            kinds,
            [
                ("gold", DriftKind::RemovedByHand, true),
                ("silver", DriftKind::ShadowedByUnmanaged, false)
            ]
        );
        // The shadowed name leaves the baseline: once freed, ours is created silently.
        assert!(next.contains_key(&(MENU.to_owned(), "gold".to_owned())));
        assert!(next.contains_key(&(MENU.to_owned(), "new".to_owned())));
        assert!(!next.contains_key(&(MENU.to_owned(), "silver".to_owned())));
    }

    #[test]
    fn aaa_settings_are_grouped_per_item_and_secrets_redacted() {
        let setting = |menu: &str, property: &str, read: Option<&str>, wanted: &str| AaaSeen {
            menu: menu.into(),
            name: "settings".into(),
            property: property.into(),
            read: read.map(Into::into),
            wanted: wanted.into(),
        };
        let (report, _) = decide(
            &[],
            &[
                setting("/ppp/aaa", "use-radius", Some("no"), "yes"),
                setting("/ppp/aaa", "accounting", Some("no"), "yes"),
                setting("/radius", "secret", Some("guessed"), "hunter2"),
            ],
            true,
            &Baseline::new(),
            1,
        );
        assert_eq!(report.entries.len(), 2, "{report:?}");
        let aaa = &report.entries[0];
        assert_eq!(
            (aaa.menu.as_str(), aaa.kind),
            ("/ppp/aaa", DriftKind::AaaChanged)
        );
        assert_eq!(aaa.properties.len(), 2);
        assert!(aaa.repaired);
        let radius = &report.entries[1];
        assert_eq!(radius.properties[0].old.as_deref(), Some(REDACTED));
        assert_eq!(radius.properties[0].new.as_deref(), Some(REDACTED));
        let shown = format!("{report:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("guessed"));
    }

    #[test]
    fn only_a_change_of_state_sends_a_clean_report() {
        let clean = DriftReport {
            checked_at_ms: 1,
            entries: Vec::new(),
        };
        let (drifted, _) = decide(
            &[ours("gold", "1M/2M", "9M/9M", true)],
            &[],
            false,
            &baseline_of("gold", "1M/2M"),
            1,
        );
        assert!(!worth_sending(None, &clean));
        assert!(!worth_sending(Some(&clean), &clean));
        assert!(worth_sending(Some(&drifted), &clean));
        assert!(worth_sending(Some(&clean), &drifted));
        assert!(worth_sending(Some(&drifted), &drifted));
    }

    fn rate() -> impl Strategy<Value = String> {
        prop_oneof![Just("1M/2M"), Just("5M/5M"), Just(""), Just("9M/9M")].prop_map(String::from)
    }

    proptest! {
        #[test]
        fn drift_is_reported_exactly_when_the_router_left_the_baseline(
            base in proptest::option::of(rate()),
            router in proptest::option::of(rate()),
            wanted in rate(),
            settled: bool,
        ) {
            let baseline = base
                .as_ref()
                .map(|b| baseline_of("gold", b))
                .unwrap_or_default();
            let seen = Seen {
                menu: MENU.into(),
                name: "gold".into(),
                wanted: attrs(&wanted),
                found: match &router {
                    Some(r) => Found::Ours(attrs(r).into_iter().map(|(k, v)| (k, Some(v))).collect()),
                    None => Found::Missing,
                },
                settled,
            };
            let (report, next) = decide(&[seen], &[], false, &baseline, 5);
            let left = match (&base, &router) {
                (Some(b), Some(r)) => b != r,
                (Some(_), None) => true,
                (None, _) => false,
            };
            prop_assert_eq!(report.is_drifted(), left);
            for entry in &report.entries {
                prop_assert_eq!(entry.repaired, settled);
                for p in &entry.properties {
                    prop_assert_ne!(&p.old, &p.new);
                }
            }
            // The next baseline is what the router holds if settled, else the old one.
            let expected = if settled { Some(wanted.clone()) } else { base.clone() };
            prop_assert_eq!(
                next.get(&(MENU.to_owned(), "gold".to_owned()))
                    .and_then(|b| b.get("rate-limit").cloned()),
                expected
            );
            // Reporting again from the settled state finds nothing.
            if settled {
                let again = Seen {
                    menu: MENU.into(),
                    name: "gold".into(),
                    wanted: attrs(&wanted),
                    found: Found::Ours(attrs(&wanted).into_iter().map(|(k, v)| (k, Some(v))).collect()),
                    settled: true,
                };
                let (report, _) = decide(&[again], &[], false, &next, 6);
                prop_assert!(!report.is_drifted());
            }
        }

        #[test]
        fn no_secret_value_ever_leaves(secret in "[a-z0-9]{6,12}", read in "[a-z0-9]{6,12}") {
            let seen = Seen {
                menu: "/ppp/secret".into(),
                name: "budi".into(),
                wanted: vec![("password".into(), secret.clone())],
                found: Found::Ours(vec![("password".into(), Some(read.clone()))]),
                settled: true,
            };
            let baseline = Baseline::from([(
                ("/ppp/secret".to_owned(), "budi".to_owned()),
                BTreeMap::from([("password".to_owned(), secret.clone())]),
            )]);
            let aaa = AaaSeen {
                menu: "/radius".into(),
                name: "10.0.0.2".into(),
                property: "secret".into(),
                read: Some(read.clone()),
                wanted: secret.clone(),
            };
            let (report, _) = decide(&[seen], &[aaa], false, &baseline, 1);
            let json = serde_json::to_string(&report).unwrap();
            prop_assert!(!json.contains(&secret) && !json.contains(&read), "{}", json);
            prop_assert_eq!(report.entries.len(), if secret == read { 1 } else { 2 });
        }
    }
}
