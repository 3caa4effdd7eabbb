//! API mode, for small sites without RADIUS: vouchers become hotspot users and accounts
//! become PPP secrets on the router, kept in step with the cache. Only items whose comment
//! carries the marker are created, changed or removed.
//!
//! Limits the router enforces by itself: a voucher's plan time (`limit-uptime`) and data
//! (`limit-bytes-total`); the validity window after first use is not expressible on a
//! hotspot user and is not enforced in this mode.

use super::profiles::profile_name;
use super::reconcile::{Ownership, Phase, Reconciled, Wanted, reconcile};
use super::values::format_duration;
use super::{Change, Router, RouterError};
use crate::cache::Cache;
use crate::radius::policy::ISOLATION_PROFILE;
use mikrobill_protocol::items::{AccountStatus, Plan, User, Voucher, VoucherStatus};
use std::collections::BTreeMap;
use std::time::Duration;

/// Hotspot users.
pub(crate) const HOTSPOT_USER_MENU: &str = "/ip/hotspot/user";
/// PPP secrets.
pub(crate) const PPP_SECRET_MENU: &str = "/ppp/secret";
/// Comment of hotspot users made from vouchers.
pub const HOTSPOT_USER_COMMENT: &str = "mikrobill:voucher";
/// Comment of PPP secrets made from accounts.
pub const PPP_SECRET_COMMENT: &str = "mikrobill:user";

/// Hotspot users for the vouchers that can still be used.
pub(crate) fn hotspot_users(plans: &BTreeMap<String, Plan>, vouchers: &[Voucher]) -> Vec<Wanted> {
    vouchers
        .iter()
        .filter(|v| {
            matches!(
                v.status,
                VoucherStatus::New | VoucherStatus::Sold | VoucherStatus::Active
            )
        })
        .filter_map(|v| {
            let Some(plan) = plans.get(&v.plan_id) else {
                tracing::debug!(voucher = %v.code, plan = %v.plan_id, "plan not cached: voucher not pushed");
                return None;
            };
            Some(Wanted {
                name: v.code.clone(),
                attrs: vec![
                    (
                        "password".into(),
                        v.password.clone().unwrap_or_else(|| v.code.clone()),
                    ),
                    ("profile".into(), profile_name(plan)),
                    (
                        "limit-uptime".into(),
                        plan.time_limit_secs
                            .map(|s| format_duration(Duration::from_secs(s)))
                            .unwrap_or_default(),
                    ),
                    (
                        "limit-bytes-total".into(),
                        plan.data_limit_bytes
                            .map(|b| b.to_string())
                            .unwrap_or_default(),
                    ),
                    ("disabled".into(), "no".into()),
                    ("comment".into(), HOTSPOT_USER_COMMENT.into()),
                ],
            })
        })
        .collect()
}

/// PPP secrets for the accounts: isolated ones get the isolation profile, suspended ones
/// are disabled.
pub(crate) fn ppp_secrets(plans: &BTreeMap<String, Plan>, users: &[User]) -> Vec<Wanted> {
    users
        .iter()
        .filter_map(|u| {
            let profile = match (u.status, plans.get(&u.plan_id)) {
                (AccountStatus::Isolated, _) => ISOLATION_PROFILE.to_owned(),
                (_, Some(plan)) => profile_name(plan),
                (_, None) => {
                    tracing::debug!(user = %u.username, plan = %u.plan_id, "plan not cached: account not pushed");
                    return None;
                }
            };
            let disabled = if u.status == AccountStatus::Suspended {
                "yes"
            } else {
                "no"
            };
            Some(Wanted {
                name: u.username.clone(),
                attrs: vec![
                    ("password".into(), u.password.clone()),
                    ("profile".into(), profile),
                    ("disabled".into(), disabled.into()),
                    (
                        "remote-address".into(),
                        u.static_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                    ),
                    ("comment".into(), PPP_SECRET_COMMENT.into()),
                ],
            })
        })
        .collect()
}

/// Pushes the cache's vouchers and accounts to the router (the profiles they name must
/// already exist: see [`super::sync_profiles`]).
pub async fn sync_accounts(router: &Router, cache: &Cache) -> Result<Vec<Change>, RouterError> {
    Ok(reconcile_accounts(router, cache).await?.changes)
}

/// [`sync_accounts`] with what it found, for the drift report.
pub(crate) async fn reconcile_accounts(
    router: &Router,
    cache: &Cache,
) -> Result<Reconciled, RouterError> {
    let storage = |e: crate::cache::CacheError| RouterError::Storage(e.to_string());
    let plans: BTreeMap<String, Plan> = cache
        .plans()
        .map_err(storage)?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let vouchers = cache.vouchers().map_err(storage)?;
    let users = cache.users().map_err(storage)?;
    let mut done = reconcile(
        router,
        HOTSPOT_USER_MENU,
        &hotspot_users(&plans, &vouchers),
        Ownership::Comment,
        Phase::All,
    )
    .await?;
    done.extend(
        reconcile(
            router,
            PPP_SECRET_MENU,
            &ppp_secrets(&plans, &users),
            Ownership::Comment,
            Phase::All,
        )
        .await?,
    );
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> BTreeMap<String, Plan> {
        let plan = Plan {
            id: "p".into(),
            name: "Harian".into(),
            rate_limit: None,
            time_limit_secs: Some(3600),
            data_limit_bytes: Some(1_000_000),
            validity_secs: None,
            shared_users: 1,
            interim_interval_secs: None,
            router_group: None,
            address_list: None,
            mac_lock: false,
            fup_rate_limit: None,
        };
        BTreeMap::from([("p".to_owned(), plan)])
    }

    fn attr<'a>(w: &'a Wanted, key: &str) -> &'a str {
        w.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key}"))
    }

    #[test]
    fn usable_vouchers_become_hotspot_users_with_plan_limits() {
        let voucher = |code: &str, status| Voucher {
            code: code.into(),
            password: None,
            plan_id: "p".into(),
            status,
            activated_at_ms: None,
            used_time_secs: 0,
            used_bytes: 0,
            sites: Vec::new(),
            bound_mac: None,
        };
        let mut orphan = voucher("ORPHAN", VoucherStatus::New);
        orphan.plan_id = "gone".into();
        let users = hotspot_users(
            &plans(),
            &[
                voucher("A", VoucherStatus::Sold),
                voucher("B", VoucherStatus::Revoked),
                voucher("C", VoucherStatus::Exhausted),
                orphan,
            ],
        );
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].name, "A");
        assert_eq!(attr(&users[0], "password"), "A");
        assert_eq!(attr(&users[0], "profile"), "Harian");
        assert_eq!(attr(&users[0], "limit-uptime"), "1h");
        assert_eq!(attr(&users[0], "limit-bytes-total"), "1000000");
    }

    #[test]
    fn account_status_picks_profile_and_disabled() {
        let user = |name: &str, status| User {
            username: name.into(),
            password: "pw".into(),
            plan_id: "p".into(),
            status,
            static_ip: None,
        };
        let secrets = ppp_secrets(
            &plans(),
            &[
                user("a", AccountStatus::Active),
                user("i", AccountStatus::Isolated),
                user("s", AccountStatus::Suspended),
            ],
        );
        assert_eq!(attr(&secrets[0], "profile"), "Harian");
        assert_eq!(attr(&secrets[1], "profile"), "isolir");
        assert_eq!(attr(&secrets[1], "disabled"), "no");
        assert_eq!(attr(&secrets[2], "disabled"), "yes");
    }
}
