//! Making a list menu hold what the agent wants, touching only items the agent owns: create
//! what is missing, update what differs, remove owned items no longer wanted. Items the
//! operator made are never changed, even when one has a name the agent wants.

use super::drift::{Found, Seen};
use super::owned::Owned;
use super::values::equivalent;
use super::{Action, Change, MARKER, Router, RouterError, Row};
use std::collections::{BTreeMap, BTreeSet};

/// One item the agent wants in a list menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// The unique `name`.
    pub name: String,
    /// Properties other than `name`; an empty value means "unset".
    pub attrs: Vec<(String, String)>,
}

/// How the agent recognises its own items in a menu.
#[derive(Clone, Copy)]
pub(crate) enum Ownership<'a> {
    /// `comment` starts with [`MARKER`].
    Comment,
    /// The name is recorded in the agent's database (menus without `comment`).
    Recorded(&'a Owned),
}

/// Which half of a reconciliation to run: profiles must exist before accounts name them,
/// and can only be removed after no account names them any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Create and update.
    Upsert,
    /// Remove owned items that are not wanted.
    Prune,
    /// Both.
    All,
}

/// What a reconciliation did, and what it found before acting (for the drift report).
#[derive(Debug, Default)]
pub(crate) struct Reconciled {
    /// The changes made.
    pub changes: Vec<Change>,
    /// Each wanted item as found (upsert phases only).
    pub seen: Vec<Seen>,
}

impl Reconciled {
    /// Appends another menu's or phase's outcome.
    pub(crate) fn extend(&mut self, other: Reconciled) {
        self.changes.extend(other.changes);
        self.seen.extend(other.seen);
    }
}

/// Reconciles `menu` towards `wanted`. A refusal for one item is logged and the others go
/// on; a connection failure ends the run.
pub(crate) async fn reconcile(
    router: &Router,
    menu: &str,
    wanted: &[Wanted],
    ownership: Ownership<'_>,
    phase: Phase,
) -> Result<Reconciled, RouterError> {
    let rows = router.print(menu, &[]).await?;
    let recorded = match ownership {
        Ownership::Recorded(owned) => owned.names(menu).map_err(storage)?,
        Ownership::Comment => BTreeSet::new(),
    };
    let is_ours = |row: &Row| match ownership {
        Ownership::Comment => row.get("comment").is_some_and(|c| c.starts_with(MARKER)),
        Ownership::Recorded(_) => row.get("name").is_some_and(|n| recorded.contains(n)),
    };
    let by_name: BTreeMap<&str, &Row> = rows
        .iter()
        .filter_map(|r| r.get("name").map(|n| (n.as_str(), r)))
        .collect();
    let mut changes = Vec::new();
    let mut seen = Vec::new();

    if matches!(phase, Phase::Upsert | Phase::All) {
        for want in wanted {
            let (found, result) = match by_name.get(want.name.as_str()) {
                Some(row) if is_ours(row) => {
                    let read = want
                        .attrs
                        .iter()
                        .map(|(k, _)| (k.clone(), row.get(k).cloned()))
                        .collect();
                    (Found::Ours(read), update(router, menu, row, want).await)
                }
                Some(_) => {
                    tracing::warn!(menu, name = %want.name,
                        "the router has an item of this name that MikroBill did not make: left alone");
                    (Found::Unmanaged, Ok(None))
                }
                None => (Found::Missing, create(router, menu, want, ownership).await),
            };
            let settled = result.is_ok() && found != Found::Unmanaged;
            match result {
                Ok(Some(change)) => changes.push(change),
                Ok(None) => {}
                Err(e) if e.is_connection_failure() || matches!(e, RouterError::Storage(_)) => {
                    return Err(e);
                }
                Err(e) => tracing::warn!(menu, name = %want.name, "not applied: {e}"),
            }
            seen.push(Seen {
                menu: menu.to_owned(),
                name: want.name.clone(),
                wanted: want.attrs.clone(),
                found,
                settled,
            });
        }
    }

    if matches!(phase, Phase::Prune | Phase::All) {
        let wanted_names: BTreeSet<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
        for row in rows.iter().filter(|r| is_ours(r)) {
            let name = row.get("name").map(String::as_str).unwrap_or_default();
            if wanted_names.contains(name) {
                continue;
            }
            let Some(id) = row.get(".id") else { continue };
            match router.remove(menu, id).await {
                Ok(()) => {
                    if let Ownership::Recorded(owned) = ownership {
                        owned.remove(menu, name).await.map_err(storage)?;
                    }
                    changes.push(Change::new(menu, name, Action::Removed, &[]));
                }
                Err(e) if e.is_connection_failure() => return Err(e),
                Err(e) => tracing::warn!(menu, name, "not removed: {e}"),
            }
        }
        if let Ownership::Recorded(owned) = ownership {
            // Gone from the router (reset, removed by hand): a later item of that name is
            // the operator's, not ours.
            for name in recorded
                .iter()
                .filter(|n| !by_name.contains_key(n.as_str()))
            {
                owned.remove(menu, name).await.map_err(storage)?;
            }
        }
    }
    Ok(Reconciled { changes, seen })
}

async fn update(
    router: &Router,
    menu: &str,
    row: &Row,
    want: &Wanted,
) -> Result<Option<Change>, RouterError> {
    let Some(id) = row.get(".id") else {
        return Ok(None);
    };
    let differs: Vec<(String, String)> = want
        .attrs
        .iter()
        .filter(|(k, v)| !equivalent(k, row.get(k).map(String::as_str), v))
        .cloned()
        .collect();
    if differs.is_empty() {
        return Ok(None);
    }
    let (unsets, sets): (Vec<_>, Vec<_>) = differs.iter().cloned().partition(|(_, v)| v.is_empty());
    if !sets.is_empty() {
        router.set(menu, Some(id), &sets).await?;
    }
    for (name, _) in &unsets {
        router.unset(menu, id, name).await?;
    }
    Ok(Some(Change::new(
        menu,
        &want.name,
        Action::Updated,
        &differs,
    )))
}

async fn create(
    router: &Router,
    menu: &str,
    want: &Wanted,
    ownership: Ownership<'_>,
) -> Result<Option<Change>, RouterError> {
    let mut attrs = vec![("name".to_owned(), want.name.clone())];
    attrs.extend(want.attrs.iter().filter(|(_, v)| !v.is_empty()).cloned());
    if let Ownership::Recorded(owned) = ownership {
        // Recorded before the add: if the agent dies in between, it owns a name that does
        // not exist (forgotten at the next prune) rather than an item it does not know.
        owned.insert(menu, &want.name).await.map_err(storage)?;
    }
    if let Err(e) = router.add(menu, &attrs, "name").await {
        // A refused add certainly created nothing; after a lost connection it may have.
        if let Ownership::Recorded(owned) = ownership
            && !e.is_connection_failure()
        {
            owned.remove(menu, &want.name).await.map_err(storage)?;
        }
        return Err(e);
    }
    Ok(Some(Change::new(
        menu,
        &want.name,
        Action::Added,
        &attrs[1..],
    )))
}

fn storage(e: sled::Error) -> RouterError {
    RouterError::Storage(e.to_string())
}
