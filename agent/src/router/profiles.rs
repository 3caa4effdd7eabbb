//! Plans as router profiles: a hotspot user profile and a PPP profile per plan that needs
//! one, plus the isolation profile overdue accounts are moved to.
//!
//! A plan needs a profile in API mode (its accounts name it) and, in RADIUS mode, when it
//! names a router group (Mikrotik-Group must name an existing profile). The profile name is
//! the plan's router group, else the plan's name. PPP profiles are ours when their comment
//! carries the marker; hotspot user profiles have no comment, see [`super::Owned`].

use super::owned::Owned;
use super::reconcile::{Ownership, Phase, Reconciled, Wanted, reconcile};
use super::{Change, MARKER, Mode, Router, RouterError};
use crate::radius::policy::ISOLATION_PROFILE;
use mikrobill_protocol::items::Plan;
use std::collections::BTreeSet;

/// Hotspot user profiles.
pub(crate) const HOTSPOT_PROFILE_MENU: &str = "/ip/hotspot/user/profile";
/// PPP profiles.
pub(crate) const PPP_PROFILE_MENU: &str = "/ppp/profile";
/// Comment of the isolation PPP profile.
pub const ISOLATION_COMMENT: &str = "mikrobill:isolation";

/// One profile as both menus should hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSpec {
    /// Profile name.
    pub name: String,
    /// `rate-limit` as RouterOS reads it, `rx/tx` from the router's side: rx is what the router
    /// receives from the subscriber (their upload), tx what it sends them (their download).
    pub rate_limit: Option<String>,
    /// Concurrent sessions per account.
    pub shared_users: u32,
    /// Address list the session's address joins.
    pub address_list: Option<String>,
    /// Marker comment (PPP profile).
    pub comment: String,
}

/// The router profile name accounts of `plan` use.
pub fn profile_name(plan: &Plan) -> String {
    plan.router_group
        .clone()
        .filter(|g| !g.trim().is_empty())
        .unwrap_or_else(|| plan.name.clone())
}

/// The profiles the router should have for `plans` in `mode`, the isolation profile first.
/// When two plans map to one name, the plan with the smaller id wins.
pub fn desired_profiles(
    plans: &[Plan],
    mode: Mode,
    isolation_rate_limit: Option<&str>,
) -> Vec<ProfileSpec> {
    let mut specs = vec![ProfileSpec {
        name: ISOLATION_PROFILE.to_owned(),
        rate_limit: isolation_rate_limit.map(str::to_owned),
        shared_users: 1,
        address_list: Some(ISOLATION_PROFILE.to_owned()),
        comment: ISOLATION_COMMENT.to_owned(),
    }];
    let mut taken: BTreeSet<String> = BTreeSet::from([ISOLATION_PROFILE.to_owned()]);
    let mut plans: Vec<&Plan> = plans.iter().collect();
    plans.sort_by(|a, b| a.id.cmp(&b.id));
    for plan in plans {
        let needs_one = match mode {
            Mode::Api => true,
            Mode::Radius => plan
                .router_group
                .as_ref()
                .is_some_and(|g| !g.trim().is_empty()),
        };
        if !needs_one {
            continue;
        }
        let name = profile_name(plan);
        if !taken.insert(name.clone()) {
            tracing::warn!(plan = %plan.id, profile = %name, "another plan already uses this router profile name");
            continue;
        }
        specs.push(ProfileSpec {
            name,
            rate_limit: plan.rate_limit.clone().filter(|r| !r.trim().is_empty()),
            shared_users: plan.shared_users.max(1),
            address_list: plan.address_list.clone().filter(|a| !a.trim().is_empty()),
            comment: format!("{MARKER}plan:{}", plan.id),
        });
    }
    specs
}

/// Creates, updates and removes the agent's profiles in both menus.
pub async fn sync_profiles(
    router: &Router,
    specs: &[ProfileSpec],
    owned: &Owned,
) -> Result<Vec<Change>, RouterError> {
    Ok(sync_phase(router, specs, owned, Phase::All).await?.changes)
}

pub(crate) async fn sync_phase(
    router: &Router,
    specs: &[ProfileSpec],
    owned: &Owned,
    phase: Phase,
) -> Result<Reconciled, RouterError> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let hotspot: Vec<Wanted> = specs
        .iter()
        .map(|s| Wanted {
            name: s.name.clone(),
            attrs: vec![
                ("rate-limit".into(), text(&s.rate_limit)),
                ("shared-users".into(), s.shared_users.to_string()),
                ("address-list".into(), text(&s.address_list)),
            ],
        })
        .collect();
    let ppp: Vec<Wanted> = specs
        .iter()
        .map(|s| Wanted {
            name: s.name.clone(),
            attrs: vec![
                ("rate-limit".into(), text(&s.rate_limit)),
                ("address-list".into(), text(&s.address_list)),
                (
                    "only-one".into(),
                    if s.shared_users <= 1 { "yes" } else { "no" }.into(),
                ),
                ("comment".into(), s.comment.clone()),
            ],
        })
        .collect();
    let mut done = reconcile(
        router,
        HOTSPOT_PROFILE_MENU,
        &hotspot,
        Ownership::Recorded(owned),
        phase,
    )
    .await?;
    done.extend(reconcile(router, PPP_PROFILE_MENU, &ppp, Ownership::Comment, phase).await?);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, name: &str, group: Option<&str>) -> Plan {
        Plan {
            id: id.into(),
            name: name.into(),
            rate_limit: Some("1M/2M".into()),
            time_limit_secs: None,
            data_limit_bytes: None,
            validity_secs: None,
            shared_users: 2,
            interim_interval_secs: None,
            router_group: group.map(Into::into),
            address_list: None,
            mac_lock: false,
            fup_rate_limit: None,
        }
    }

    #[test]
    fn radius_mode_needs_profiles_only_for_router_groups() {
        let plans = [
            plan("b", "Harian", None),
            plan("a", "Bulanan", Some("gold")),
        ];
        let names = |specs: Vec<ProfileSpec>| -> Vec<String> {
            specs.into_iter().map(|s| s.name).collect()
        };
        assert_eq!(
            names(desired_profiles(&plans, Mode::Radius, None)),
            ["isolir", "gold"]
        );
        assert_eq!(
            names(desired_profiles(&plans, Mode::Api, None)),
            ["isolir", "gold", "Harian"]
        );
    }

    #[test]
    fn clashing_names_keep_the_first_plan_and_isolation_wins() {
        let plans = [
            plan("b", "X", None),
            plan("a", "X", None),
            plan("c", "isolir", None),
        ];
        let specs = desired_profiles(&plans, Mode::Api, Some("128k/128k"));
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].rate_limit.as_deref(), Some("128k/128k"));
        assert_eq!(specs[0].address_list.as_deref(), Some("isolir"));
        assert_eq!(specs[1].comment, "mikrobill:plan:a");
    }
}
