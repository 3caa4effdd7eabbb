//! The router's own accounts, for an import: `read_accounts` prints the four menus and who
//! is online; `take_over` then adopts the imported entries (the marker comment makes them
//! the agent's, so API-mode reconciliation keeps them in line with the controller) or
//! retires them (removes the local entries of logins not online, so RADIUS answers their
//! next login). Online sessions are never touched: nothing here removes an active row.

use super::api_mode::{HOTSPOT_USER_MENU, PPP_SECRET_MENU};
use super::{HOTSPOT_USER_COMMENT, PPP_SECRET_COMMENT, Router, RouterError, Row};
use mikrobill_protocol::inventory::{
    EntryRef, HotspotProfileEntry, HotspotUserEntry, PppProfileEntry, PppSecretEntry,
    RouterAccounts, TakeOver,
};
use std::collections::{BTreeMap, BTreeSet};

const HOTSPOT_PROFILE_MENU: &str = "/ip/hotspot/user/profile";
const PPP_PROFILE_MENU: &str = "/ppp/profile";
const HOTSPOT_ACTIVE_MENU: &str = "/ip/hotspot/active";
const PPP_ACTIVE_MENU: &str = "/ppp/active";

fn take(row: &mut Row, key: &str) -> Option<String> {
    row.remove(key).filter(|v| !v.is_empty())
}

fn text(row: &mut Row, key: &str) -> String {
    row.remove(key).unwrap_or_default()
}

/// Reads hotspot user profiles and users, PPP profiles and secrets, and the online logins.
pub async fn read_accounts(router: &Router) -> Result<RouterAccounts, RouterError> {
    let hotspot_profiles = router
        .print(HOTSPOT_PROFILE_MENU, &[])
        .await?
        .into_iter()
        .map(|mut r| HotspotProfileEntry {
            id: text(&mut r, ".id"),
            name: text(&mut r, "name"),
            rate_limit: take(&mut r, "rate-limit"),
            shared_users: take(&mut r, "shared-users"),
            session_timeout: take(&mut r, "session-timeout"),
            on_login: take(&mut r, "on-login"),
        })
        .collect();
    let hotspot_users = router
        .print(HOTSPOT_USER_MENU, &[])
        .await?
        .into_iter()
        .map(|mut r| HotspotUserEntry {
            id: text(&mut r, ".id"),
            name: text(&mut r, "name"),
            password: take(&mut r, "password"),
            profile: take(&mut r, "profile"),
            limit_uptime: take(&mut r, "limit-uptime"),
            limit_bytes_total: take(&mut r, "limit-bytes-total"),
            limit_bytes_in: take(&mut r, "limit-bytes-in"),
            limit_bytes_out: take(&mut r, "limit-bytes-out"),
            uptime: take(&mut r, "uptime"),
            bytes_in: take(&mut r, "bytes-in"),
            bytes_out: take(&mut r, "bytes-out"),
            mac_address: take(&mut r, "mac-address"),
            comment: take(&mut r, "comment"),
            disabled: take(&mut r, "disabled"),
        })
        .collect();
    let ppp_profiles = router
        .print(PPP_PROFILE_MENU, &[])
        .await?
        .into_iter()
        .map(|mut r| PppProfileEntry {
            id: text(&mut r, ".id"),
            name: text(&mut r, "name"),
            rate_limit: take(&mut r, "rate-limit"),
            local_address: take(&mut r, "local-address"),
            remote_address: take(&mut r, "remote-address"),
        })
        .collect();
    let ppp_secrets = router
        .print(PPP_SECRET_MENU, &[])
        .await?
        .into_iter()
        .map(|mut r| PppSecretEntry {
            id: text(&mut r, ".id"),
            name: text(&mut r, "name"),
            password: take(&mut r, "password"),
            service: take(&mut r, "service"),
            profile: take(&mut r, "profile"),
            remote_address: take(&mut r, "remote-address"),
            disabled: take(&mut r, "disabled"),
            comment: take(&mut r, "comment"),
        })
        .collect();
    let (hotspot_active, ppp_active) = online(router).await?;
    Ok(RouterAccounts {
        hotspot_profiles,
        hotspot_users,
        ppp_profiles,
        ppp_secrets,
        hotspot_active: hotspot_active.into_iter().collect(),
        ppp_active: ppp_active.into_iter().collect(),
    })
}

/// The logins online on the hotspot and over PPP.
async fn online(router: &Router) -> Result<(BTreeSet<String>, BTreeSet<String>), RouterError> {
    let names = |rows: Vec<Row>, key: &str| -> BTreeSet<String> {
        rows.into_iter().filter_map(|mut r| r.remove(key)).collect()
    };
    let hotspot = names(router.print(HOTSPOT_ACTIVE_MENU, &[]).await?, "user");
    let ppp = names(router.print(PPP_ACTIVE_MENU, &[]).await?, "name");
    Ok((hotspot, ppp))
}

/// What a take-over did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakeOverSummary {
    /// Entries adopted (marked) or retired (removed).
    pub done: usize,
    /// Entries left alone because their login is online (retire only).
    pub online: Vec<String>,
    /// Entries no longer on the router under that id and name (removed or renamed since).
    pub gone: usize,
    /// Logins not in the agent's cache (revoked or deleted since the import): left alone.
    pub not_cached: Vec<String>,
}

impl TakeOverSummary {
    /// The note the command answers with.
    pub fn note(&self, mode: TakeOver) -> String {
        let mut note = match mode {
            TakeOver::Adopt => format!("{} router entries adopted", self.done),
            TakeOver::Retire => format!("{} router entries retired in favour of RADIUS", self.done),
        };
        if !self.online.is_empty() {
            note.push_str(&format!(
                "; {} left on the router because they are online ({}): run the import again once they are offline",
                self.online.len(),
                some_names(&self.online)
            ));
        }
        if !self.not_cached.is_empty() {
            note.push_str(&format!(
                "; {} left on the router because MikroBill no longer has them ({})",
                self.not_cached.len(),
                some_names(&self.not_cached)
            ));
        }
        if self.gone > 0 {
            note.push_str(&format!("; {} no longer on the router as read", self.gone));
        }
        note
    }
}

/// The first few names of a list, so a note stays readable with thousands online.
fn some_names(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

/// Adopts or retires the named entries of one menu; rows whose id no longer carries the
/// name are counted as gone and left alone.
async fn take_over_menu(
    router: &Router,
    menu: &str,
    comment: &str,
    mode: TakeOver,
    entries: &[EntryRef],
    online: &BTreeSet<String>,
    summary: &mut TakeOverSummary,
) -> Result<(), RouterError> {
    let rows: BTreeMap<String, Row> = router
        .print(menu, &[])
        .await?
        .into_iter()
        .filter_map(|r| r.get(".id").cloned().map(|id| (id, r)))
        .collect();
    for entry in entries {
        let Some(row) = rows
            .get(&entry.id)
            .filter(|r| r.get("name") == Some(&entry.name))
        else {
            summary.gone += 1;
            continue;
        };
        match mode {
            TakeOver::Adopt => {
                if row.get("comment").map(String::as_str) != Some(comment) {
                    let attrs = [("comment".to_owned(), comment.to_owned())];
                    router.set(menu, Some(&entry.id), &attrs).await?;
                }
            }
            TakeOver::Retire => {
                if online.contains(&entry.name) {
                    summary.online.push(entry.name.clone());
                    continue;
                }
                router.remove(menu, &entry.id).await?;
            }
        }
        summary.done += 1;
    }
    Ok(())
}

/// Adopts or retires imported hotspot users and PPP secrets (see the module's doc).
pub async fn take_over(
    router: &Router,
    mode: TakeOver,
    hotspot_users: &[EntryRef],
    ppp_secrets: &[EntryRef],
) -> Result<TakeOverSummary, RouterError> {
    let _exclusive = router.exclusive().await;
    let (hotspot_online, ppp_online) = online(router).await?;
    let mut summary = TakeOverSummary::default();
    take_over_menu(
        router,
        HOTSPOT_USER_MENU,
        HOTSPOT_USER_COMMENT,
        mode,
        hotspot_users,
        &hotspot_online,
        &mut summary,
    )
    .await?;
    take_over_menu(
        router,
        PPP_SECRET_MENU,
        PPP_SECRET_COMMENT,
        mode,
        ppp_secrets,
        &ppp_online,
        &mut summary,
    )
    .await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_names_a_few_and_counts_the_rest() {
        let summary = TakeOverSummary {
            done: 3,
            online: (0..25).map(|i| format!("u{i}")).collect(),
            gone: 1,
            not_cached: vec!["x".into()],
        };
        let note = summary.note(TakeOver::Retire);
        assert!(
            note.starts_with("3 router entries retired in favour of RADIUS; 25 left"),
            "{note}"
        );
        assert!(note.contains("u19 and 5 more"), "{note}");
        assert!(!note.contains("u20,"), "{note}");
        assert!(note.contains("1 no longer on the router as read"), "{note}");
        assert!(
            summary
                .note(TakeOver::Adopt)
                .starts_with("3 router entries adopted")
        );
    }
}
