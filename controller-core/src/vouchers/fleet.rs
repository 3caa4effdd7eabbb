//! What every site learns about a voucher's use at the others: its ledger sessions summed
//! per site, the sessions open at each (heard of within [`STALE_INTERIMS`] interim
//! intervals), and the device a MAC-locked voucher is bound to (the earliest session's).
//! Pure, `now` passed in; `metered.rs` loads the sessions and stores the outcome with the
//! voucher, so every sync of the voucher (ingest, sale, snapshot) carries it.

use super::usage_state::Used;
use crate::usage::online::STALE_INTERIMS;
use mikrobill_protocol::items::SiteUsage;

/// One ledger session of a voucher, as `usage_sessions` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSession {
    /// The site that reported it.
    pub site_id: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// The NAS that ran it.
    pub nas_identifier: String,
    /// Its first record (unix ms).
    pub first_at: i64,
    /// Its latest record (unix ms).
    pub last_at: i64,
    /// Whether a Stop was seen.
    pub stopped: bool,
    /// Online seconds (the highest reported).
    pub secs: i64,
    /// Octets both directions (the highest reported).
    pub bytes: i64,
    /// Calling-Station-Id, when the NAS sent one.
    pub calling_station_id: Option<String>,
}

/// A voucher's fleet view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    /// Use at every site together.
    pub used: Used,
    /// The same split by site (sorted by site id), with each site's open sessions.
    pub sites: Vec<SiteUsage>,
    /// The device of the earliest session that named one (upper case, `:` separated).
    pub first_mac: Option<String>,
}

/// Summarises `sessions` at `now` for a plan reporting every `interim_secs`.
pub fn summarize(sessions: &[LedgerSession], interim_secs: i64, now: i64) -> Fleet {
    let window = (interim_secs as f64 * STALE_INTERIMS * 1000.0) as i64;
    let mut fleet = Fleet::default();
    let mut sorted: Vec<&LedgerSession> = sessions.iter().collect();
    sorted.sort_by(|a, b| (&a.site_id, a.first_at).cmp(&(&b.site_id, b.first_at)));
    for s in &sorted {
        let (secs, bytes) = (s.secs.max(0), s.bytes.max(0));
        fleet.used.secs = fleet.used.secs.saturating_add(secs);
        fleet.used.bytes = fleet.used.bytes.saturating_add(bytes);
        if fleet.sites.last().is_none_or(|l| l.site_id != s.site_id) {
            fleet.sites.push(SiteUsage {
                site_id: s.site_id.clone(),
                ..SiteUsage::default()
            });
        }
        let site = fleet.sites.last_mut().expect("pushed above");
        site.time_secs = site.time_secs.saturating_add(secs as u64);
        site.bytes = site.bytes.saturating_add(bytes as u64);
        if !s.stopped && now - s.last_at < window {
            site.open_last_seen_ms.push(s.last_at);
        }
    }
    fleet.first_mac = sessions
        .iter()
        .filter_map(|s| {
            let mac = s.calling_station_id.as_deref()?.trim();
            (!mac.is_empty()).then_some((s.first_at, &s.site_id, mac))
        })
        .min()
        .map(|(_, _, mac)| mac.to_ascii_uppercase().replace('-', ":"));
    fleet
}

/// The stored form of [`Fleet::sites`] (`vouchers.fleet_usage`); `None` when empty.
pub fn encode_sites(sites: &[SiteUsage]) -> Option<String> {
    (!sites.is_empty()).then(|| serde_json::to_string(sites).expect("site usage encodes"))
}

/// Reads `vouchers.fleet_usage` back; a damaged value reads as unknown (the agents then fall
/// back to the fleet total alone) and is rewritten by the next ingest.
pub fn decode_sites(stored: Option<&str>) -> Vec<SiteUsage> {
    stored
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(site: &str, first_at: i64, last_at: i64, stopped: bool, secs: i64) -> LedgerSession {
        LedgerSession {
            site_id: site.into(),
            session_id: format!("{site}-{first_at}"),
            nas_identifier: site.into(),
            first_at,
            last_at,
            stopped,
            secs,
            bytes: secs * 100,
            calling_station_id: None,
        }
    }

    #[test]
    fn use_is_split_by_site_with_the_sessions_still_open() {
        let now = 1_000_000;
        let fleet = summarize(
            &[
                session("b", 10, now - 1_000, false, 100),
                session("a", 20, now - 1_000, true, 290),
                session("b", 30, now - 150_000, false, 5),
                session("b", 40, now - 149_999, false, 5),
            ],
            60,
            now,
        );
        assert_eq!(
            fleet.used,
            Used {
                secs: 400,
                bytes: 40_000
            }
        );
        assert_eq!(
            fleet.sites,
            vec![
                SiteUsage {
                    site_id: "a".into(),
                    time_secs: 290,
                    bytes: 29_000,
                    open_last_seen_ms: vec![],
                },
                SiteUsage {
                    site_id: "b".into(),
                    time_secs: 110,
                    bytes: 11_000,
                    open_last_seen_ms: vec![now - 1_000, now - 149_999],
                },
            ],
            "a session silent for 2.5 intervals no longer holds a seat"
        );
        assert_eq!(
            decode_sites(encode_sites(&fleet.sites).as_deref()),
            fleet.sites
        );
        assert_eq!(encode_sites(&[]), None);
        assert!(decode_sites(Some("not json")).is_empty());
    }

    #[test]
    fn the_earliest_session_with_a_device_binds_the_voucher() {
        let mut late = session("a", 50, 60, false, 1);
        late.calling_station_id = Some("aa:bb:cc:00:00:01".into());
        let mut early = session("b", 40, 60, false, 1);
        early.calling_station_id = Some("aa-bb-cc-00-00-02".into());
        let none = session("c", 10, 60, false, 1);
        let fleet = summarize(&[late, early, none], 300, 100);
        assert_eq!(fleet.first_mac.as_deref(), Some("AA:BB:CC:00:00:02"));
    }
}
