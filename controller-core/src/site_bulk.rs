//! Many sites at once, for a field team's day of installs: a list of names (typed, or a CSV
//! with a `name` column) becomes sites with one enrollment token each, all in one
//! transaction: a bad or taken name creates none of them, and the answer says which line.

use crate::audit::Actor;
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use crate::sites::{
    self, DEFAULT_TOKEN_HOURS, EDGE_ADVERTISE_SETTING, IssuedToken, Site, SiteError,
};

/// Most sites one call creates.
pub const MAX_SITES: usize = 1000;

/// Site names from CSV text: one per line, an optional `name` header, values optionally in
/// double quotes, blank lines skipped. Errors name the line.
pub fn parse_csv(text: &str) -> DomainResult<Vec<String>> {
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let raw = line.trim();
        if raw.is_empty() || (i == 0 && raw.eq_ignore_ascii_case("name")) {
            continue;
        }
        let value = raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(raw);
        if value.contains(',') || value.contains('"') {
            return Err(DomainError::invalid(
                "csv",
                format!(
                    "line {}: one column expected (the site name), got {raw:?}",
                    i + 1
                ),
            ));
        }
        names.push(value.trim().to_string());
    }
    Ok(names)
}

/// Checks a batch of names: how many, each valid, none twice. Pure.
pub fn check_names(names: &[String]) -> DomainResult<()> {
    if names.is_empty() || names.len() > MAX_SITES {
        return Err(DomainError::invalid(
            "names",
            format!("give 1 to {MAX_SITES} site names"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, name) in names.iter().enumerate() {
        if !sites::valid_name(name) {
            return Err(DomainError::invalid(
                "names",
                format!(
                    "entry {}: invalid site name {name:?}: use 1-64 letters, digits, '-', '_', '.' or spaces",
                    i + 1
                ),
            ));
        }
        if !seen.insert(name.to_lowercase()) {
            return Err(DomainError::invalid(
                "names",
                format!("entry {}: {name:?} is listed twice", i + 1),
            ));
        }
    }
    Ok(())
}

/// The edge address tokens name: `given`, else what `serve` advertises; `None` while
/// neither is known.
pub async fn edge_addr(db: &Db, given: Option<String>) -> DomainResult<Option<String>> {
    match given {
        Some(a) => Ok(Some(a)),
        None => Ok(db.setting(EDGE_ADVERTISE_SETTING).await?),
    }
}

/// Token lifetime from hours (1-720, default 24).
pub fn ttl_ms(hours: Option<u32>) -> DomainResult<i64> {
    let hours = hours.unwrap_or(DEFAULT_TOKEN_HOURS);
    if !(1..=720).contains(&hours) {
        return Err(DomainError::invalid(
            "token_ttl_hours",
            "must be between 1 and 720",
        ));
    }
    Ok(i64::from(hours) * 3_600_000)
}

/// Creates every site in `names` with an enrollment token naming `controller_addr`, valid
/// for `ttl_ms`, in one transaction.
pub async fn create(
    db: &Db,
    actor: &Actor,
    names: &[String],
    controller_addr: &str,
    ca_fingerprint: [u8; 32],
    ttl_ms: i64,
) -> DomainResult<Vec<(Site, IssuedToken)>> {
    check_names(names)?;
    let now = now_ms();
    let expires_at = now + ttl_ms;
    let mut tx = db.begin().await?;
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let site = match sites::create_in(&mut tx, actor, name, now).await {
            Err(SiteError::Exists(_)) => {
                return Err(DomainError::conflict(
                    "exists",
                    format!("entry {}: a site named {name:?} already exists", i + 1),
                ));
            }
            other => other.map_err(DomainError::from)?,
        };
        let token = sites::issue_enrollment_token_in(
            &mut tx,
            actor,
            &site.id,
            controller_addr,
            ca_fingerprint,
            now,
            ttl_ms,
        )
        .await
        .map_err(DomainError::from)?;
        out.push((
            site,
            IssuedToken {
                command: sites::agent_command(&token),
                expires_at,
                token,
            },
        ));
    }
    tx.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_takes_one_name_per_line() {
        let names = parse_csv("name\nDusun Utara\n\"Pasar Baru\"\n\n  Menara-3 \n").unwrap();
        assert_eq!(names, ["Dusun Utara", "Pasar Baru", "Menara-3"]);
        let err = parse_csv("name\nA,B\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_batch_is_checked_whole() {
        let ok: Vec<String> = vec!["a".into(), "b".into()];
        assert!(check_names(&ok).is_ok());
        let twice: Vec<String> = vec!["Dusun".into(), "dusun".into()];
        assert!(
            check_names(&twice)
                .unwrap_err()
                .to_string()
                .contains("entry 2")
        );
        let bad: Vec<String> = vec!["ok".into(), "no/slash".into()];
        assert!(
            check_names(&bad)
                .unwrap_err()
                .to_string()
                .contains("entry 2")
        );
        assert!(check_names(&[]).is_err());
        let many: Vec<String> = (0..=MAX_SITES).map(|i| format!("s{i}")).collect();
        assert!(check_names(&many).is_err());
    }
}
