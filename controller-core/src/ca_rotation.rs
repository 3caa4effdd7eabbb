//! CA rotation: replacing the controller's CA while every agent keeps working.
//!
//! A rotation moves through three phases, each an operator's step (`ca rotate`, `ca
//! activate`, `ca retire`), decided by [`decide`] (pure, `now` passed in) and recorded in
//! `ca_rotations`:
//! - **published**: the new CA exists (in the other file slot, with a cross certificate
//!   signed by the current one); agents are sent both as their trust bundle, the current CA
//!   still issues and the edge still presents it;
//! - **active**: the new CA issues agent and edge certificates; the edge presents its
//!   certificate with the cross certificate, so an agent that trusts only the previous CA
//!   still connects; agents renew onto the new CA over the link; both CAs are trusted;
//! - **retired**: the previous CA is trusted no more and its live agent certificates are
//!   revoked; refused unless every live site's agent runs on the new CA, or forced.
//!
//! Every replica's edge notices a step within a poll interval (`stamp`) and reloads.

use crate::audit::{self, Actor};
use crate::db::{Db, DbError};
use crate::pki::{Ca, CaSet, PkiError, Slot};
use sqlx::Row;
use std::path::Path;

/// Where a rotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Trusted by agents, not issuing yet.
    Published,
    /// Issuing; the previous CA is still trusted.
    Active,
    /// The previous CA is trusted no more.
    Retired,
}

impl Phase {
    /// The phase's name as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Published => "published",
            Phase::Active => "active",
            Phase::Retired => "retired",
        }
    }
}

/// One rotation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Row id.
    pub id: i64,
    /// The file slot of the new CA.
    pub slot: Slot,
    /// The new CA's fingerprint (hex).
    pub fingerprint: String,
    /// The previous CA's fingerprint (hex).
    pub previous_fingerprint: String,
    /// When it was published (UTC ms).
    pub published_at: i64,
    /// When the new CA began issuing.
    pub activated_at: Option<i64>,
    /// When the previous CA was retired.
    pub retired_at: Option<i64>,
    /// Agents still on the previous CA when its retirement was forced.
    pub forced_pending: i64,
}

impl Rotation {
    /// The rotation's phase.
    pub fn phase(&self) -> Phase {
        match (self.activated_at, self.retired_at) {
            (_, Some(_)) => Phase::Retired,
            (Some(_), None) => Phase::Active,
            (None, None) => Phase::Published,
        }
    }
}

/// The slot of the CA that issues now, given the newest rotation.
pub fn active_slot(latest: Option<&Rotation>) -> Slot {
    match latest {
        None => Slot::First,
        Some(r) if r.activated_at.is_some() => r.slot,
        Some(r) => r.slot.other(),
    }
}

/// What an operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Create and publish a new CA.
    Publish,
    /// Make the published CA the issuing one.
    Activate,
    /// Stop trusting the previous CA; `force` even with agents still on it.
    Retire {
        /// Retire although agents still run on the previous CA (they must enroll again).
        force: bool,
    },
}

/// What a step does, when allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Create the new CA in `slot` (never the slot of a CA still trusted).
    Publish {
        /// Where the new CA goes.
        slot: Slot,
    },
    /// Set `activated_at`.
    Activate {
        /// The time recorded.
        at: i64,
    },
    /// Set `retired_at`.
    Retire {
        /// The time recorded.
        at: i64,
        /// Agents left behind (0 unless forced).
        forced_pending: i64,
    },
}

/// Why a step was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// Publishing while a rotation is open.
    #[error(
        "a CA rotation is already under way ({0}): finish it with `ca activate` and `ca retire` first"
    )]
    InProgress(&'static str),
    /// Activating or retiring with no rotation open.
    #[error("no CA rotation is under way: start one with `ca rotate`")]
    NothingPublished,
    /// Activating twice.
    #[error("the new CA is already active; retire the previous one with `ca retire`")]
    AlreadyActive,
    /// Retiring before activating.
    #[error("the new CA is not active yet: `ca activate` first, so agents can renew onto it")]
    NotActive,
    /// Agents still need the previous CA.
    #[error(
        "{0} site(s) still run on the previous CA; wait until their agents renew onto the new one (`ca status`), or `ca retire --force` (they will have to enroll again)"
    )]
    AgentsPending(i64),
    /// The clock reads earlier than the rotation's last step.
    #[error("the clock reads earlier than the rotation's last step; check the system time")]
    ClockBehind,
    /// The files do not match the database.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The data directory's CA is not the one the database names.
    #[error("{0}")]
    Mismatch(String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for RotationError {
    fn from(e: sqlx::Error) -> Self {
        RotationError::Db(e.into())
    }
}

/// Decides `step` given the newest rotation and how many live sites still run on the
/// previous CA. Pure.
pub fn decide(
    latest: Option<&Rotation>,
    step: Step,
    pending: i64,
    now: i64,
) -> Result<Transition, RotationError> {
    let open = latest.filter(|r| r.retired_at.is_none());
    match step {
        Step::Publish => match open {
            Some(r) => Err(RotationError::InProgress(r.phase().as_str())),
            None => Ok(Transition::Publish {
                slot: active_slot(latest).other(),
            }),
        },
        Step::Activate => {
            let r = open.ok_or(RotationError::NothingPublished)?;
            if r.activated_at.is_some() {
                return Err(RotationError::AlreadyActive);
            }
            if now < r.published_at {
                return Err(RotationError::ClockBehind);
            }
            Ok(Transition::Activate { at: now })
        }
        Step::Retire { force } => {
            let r = open.ok_or(RotationError::NothingPublished)?;
            let activated = r.activated_at.ok_or(RotationError::NotActive)?;
            if now < activated {
                return Err(RotationError::ClockBehind);
            }
            if pending > 0 && !force {
                return Err(RotationError::AgentsPending(pending));
            }
            Ok(Transition::Retire {
                at: now,
                forced_pending: pending.max(0),
            })
        }
    }
}

const LATEST_SQL: &str = "SELECT id, slot, fingerprint, previous_fingerprint, published_at, \
     activated_at, retired_at, forced_pending FROM ca_rotations ORDER BY id DESC LIMIT 1";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Rotation, RotationError> {
    let slot: String = row.try_get("slot")?;
    Ok(Rotation {
        id: row.try_get("id")?,
        slot: Slot::parse(&slot)
            .ok_or_else(|| RotationError::Mismatch(format!("unknown CA slot {slot:?}")))?,
        fingerprint: row.try_get("fingerprint")?,
        previous_fingerprint: row.try_get("previous_fingerprint")?,
        published_at: row.try_get("published_at")?,
        activated_at: row.try_get("activated_at")?,
        retired_at: row.try_get("retired_at")?,
        forced_pending: row.try_get("forced_pending")?,
    })
}

async fn latest_in(conn: &mut sqlx::AnyConnection) -> Result<Option<Rotation>, RotationError> {
    let row = sqlx::query(LATEST_SQL).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// The newest rotation, if any.
pub async fn latest(db: &Db) -> Result<Option<Rotation>, RotationError> {
    let mut conn = db.pool.acquire().await.map_err(DbError::from)?;
    latest_in(&mut conn).await
}

/// A number that grows with every step of every rotation: the edge reloads when it moves.
pub async fn stamp(db: &Db) -> Result<i64, RotationError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) + COUNT(activated_at) + COUNT(retired_at) FROM ca_rotations",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}

const PENDING_SQL: &str = "SELECT COUNT(DISTINCT c.site_id) FROM agent_certificates c \
     JOIN sites s ON s.id = c.site_id \
     WHERE s.revoked_at IS NULL AND c.revoked_at IS NULL AND c.not_after > $2 \
       AND (c.ca_fingerprint IS NULL OR c.ca_fingerprint <> $1)";

async fn pending_in(
    conn: &mut sqlx::AnyConnection,
    fingerprint: &str,
    now: i64,
) -> Result<i64, RotationError> {
    Ok(sqlx::query_scalar(PENDING_SQL)
        .bind(fingerprint)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?)
}

/// Live (not revoked) sites whose agent still holds a live certificate of another CA than
/// `fingerprint`: a renewed agent's old certificate is retired when it first connects with
/// the new one, so a site counts until its agent runs on the new CA.
pub async fn pending_agents(db: &Db, fingerprint: &str, now: i64) -> Result<i64, RotationError> {
    let mut conn = db.pool.acquire().await.map_err(DbError::from)?;
    pending_in(&mut conn, fingerprint, now).await
}

fn check(ca: &Ca, fingerprint: &str, what: &str) -> Result<(), RotationError> {
    if ca.fingerprint_hex() != fingerprint {
        return Err(RotationError::Mismatch(format!(
            "the {what} CA in the data directory (fingerprint {}) is not the one the database records ({fingerprint}): restore the data directory that belongs to this database",
            ca.fingerprint_hex()
        )));
    }
    Ok(())
}

/// The CAs of the current phase, from the database and the data directory (creating the
/// first CA on first use).
pub async fn load(db: &Db, dir: &Path) -> Result<CaSet, RotationError> {
    let Some(r) = latest(db).await? else {
        return Ok(CaSet::single(Ca::load_or_create(dir)?));
    };
    let new = Ca::load(dir, r.slot)?;
    check(&new, &r.fingerprint, "new")?;
    if r.phase() == Phase::Retired {
        return Ok(CaSet::single(new));
    }
    let previous = Ca::load(dir, r.slot.other())?;
    check(&previous, &r.previous_fingerprint, "previous")?;
    Ok(match r.phase() {
        Phase::Published => CaSet {
            also_trusted: vec![new.cert_der().clone()],
            active: previous,
            cross: None,
        },
        _ => CaSet {
            also_trusted: vec![previous.cert_der().clone()],
            cross: Ca::cross_cert(dir)?,
            active: new,
        },
    })
}

/// The fingerprint new enrollment tokens pin: the issuing CA's.
pub async fn enrollment_fingerprint(db: &Db, dir: &Path) -> Result<[u8; 32], RotationError> {
    Ok(load(db, dir).await?.active.fingerprint())
}

/// Creates a new CA and publishes it (agents are sent it; nothing else changes yet).
pub async fn publish(
    db: &Db,
    dir: &Path,
    actor: &Actor,
    now: i64,
) -> Result<Rotation, RotationError> {
    let current = load(db, dir).await?.active;
    let mut tx = db.begin().await?;
    let latest = latest_in(&mut tx).await?;
    let Transition::Publish { slot } = decide(latest.as_ref(), Step::Publish, 0, now)? else {
        unreachable!("publishing decides a publish")
    };
    // The row first: its unique index makes a concurrent publish fail before it could write
    // over this one's files.
    sqlx::query(
        "INSERT INTO ca_rotations (slot, fingerprint, previous_fingerprint, published_at) \
         VALUES ($1, '', $2, $3)",
    )
    .bind(slot.as_str())
    .bind(current.fingerprint_hex())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let new = current.create_successor(slot)?;
    sqlx::query("UPDATE ca_rotations SET fingerprint = $1 WHERE slot = $2 AND retired_at IS NULL")
        .bind(new.fingerprint_hex())
        .bind(slot.as_str())
        .execute(&mut *tx)
        .await?;
    let rotation = latest_in(&mut tx)
        .await?
        .ok_or(RotationError::NothingPublished)?;
    audit::record(
        &mut tx,
        actor,
        "ca.published",
        "ca",
        Some(&rotation.fingerprint),
        None::<&()>,
        Some(&serde_json::json!({
            "fingerprint": rotation.fingerprint,
            "previous_fingerprint": rotation.previous_fingerprint,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(rotation)
}

/// Makes the published CA the issuing one.
pub async fn activate(db: &Db, actor: &Actor, now: i64) -> Result<Rotation, RotationError> {
    let mut tx = db.begin().await?;
    let latest = latest_in(&mut tx).await?;
    let Transition::Activate { at } = decide(latest.as_ref(), Step::Activate, 0, now)? else {
        unreachable!("activating decides an activation")
    };
    let r = latest.ok_or(RotationError::NothingPublished)?;
    sqlx::query("UPDATE ca_rotations SET activated_at = $1 WHERE id = $2")
        .bind(at)
        .bind(r.id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        actor,
        "ca.activated",
        "ca",
        Some(&r.fingerprint),
        None::<&()>,
        Some(&serde_json::json!({ "fingerprint": r.fingerprint })),
    )
    .await?;
    let r = latest_in(&mut tx)
        .await?
        .ok_or(RotationError::NothingPublished)?;
    tx.commit().await?;
    Ok(r)
}

/// Retires the previous CA: it is trusted no more, and its live agent certificates are
/// revoked (so sessions still running on one are closed).
pub async fn retire(
    db: &Db,
    actor: &Actor,
    force: bool,
    now: i64,
) -> Result<Rotation, RotationError> {
    let mut tx = db.begin().await?;
    let latest = latest_in(&mut tx).await?;
    let fingerprint = latest
        .as_ref()
        .map(|r| r.fingerprint.clone())
        .unwrap_or_default();
    let pending = pending_in(&mut tx, &fingerprint, now).await?;
    let Transition::Retire { at, forced_pending } =
        decide(latest.as_ref(), Step::Retire { force }, pending, now)?
    else {
        unreachable!("retiring decides a retirement")
    };
    let r = latest.ok_or(RotationError::NothingPublished)?;
    sqlx::query("UPDATE ca_rotations SET retired_at = $1, forced_pending = $2 WHERE id = $3")
        .bind(at)
        .bind(forced_pending)
        .bind(r.id)
        .execute(&mut *tx)
        .await?;
    let revoked = sqlx::query(
        "UPDATE agent_certificates SET revoked_at = $1 \
         WHERE revoked_at IS NULL AND (ca_fingerprint IS NULL OR ca_fingerprint <> $2)",
    )
    .bind(at)
    .bind(&r.fingerprint)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    audit::record(
        &mut tx,
        actor,
        "ca.retired",
        "ca",
        Some(&r.previous_fingerprint),
        None::<&()>,
        Some(&serde_json::json!({
            "fingerprint": r.previous_fingerprint,
            "forced_pending": forced_pending,
            "certificates_revoked": revoked,
        })),
    )
    .await?;
    let r = latest_in(&mut tx)
        .await?
        .ok_or(RotationError::NothingPublished)?;
    tx.commit().await?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Publish),
            Just(Step::Activate),
            any::<bool>().prop_map(|force| Step::Retire { force }),
        ]
    }

    /// Applies a transition the way the database functions do.
    fn apply(history: &mut Vec<Rotation>, t: Transition, now: i64) {
        match t {
            Transition::Publish { slot } => history.push(Rotation {
                id: history.len() as i64 + 1,
                slot,
                fingerprint: format!("ca{}", history.len() + 1),
                previous_fingerprint: String::new(),
                published_at: now,
                activated_at: None,
                retired_at: None,
                forced_pending: 0,
            }),
            Transition::Activate { at } => history.last_mut().unwrap().activated_at = Some(at),
            Transition::Retire { at, forced_pending } => {
                let r = history.last_mut().unwrap();
                r.retired_at = Some(at);
                r.forced_pending = forced_pending;
            }
        }
    }

    proptest! {
        #[test]
        fn rotations_move_forward_and_never_drop_a_ca_in_use(
            steps in proptest::collection::vec((step(), 0i64..3, -5i64..100), 1..40),
        ) {
            let mut history: Vec<Rotation> = Vec::new();
            let mut now = 1_000i64;
            for (step, pending, dt) in steps {
                now += dt;
                let before_active = active_slot(history.last());
                let open_before = history.last().is_some_and(|r| r.retired_at.is_none());
                match decide(history.last(), step, pending, now) {
                    Ok(t) => {
                        match (step, t) {
                            (Step::Publish, Transition::Publish { slot }) => {
                                prop_assert!(!open_before, "one rotation at a time");
                                prop_assert_ne!(slot, before_active, "a trusted CA is never overwritten");
                            }
                            (Step::Activate, Transition::Activate { at }) => {
                                let r = history.last().unwrap();
                                prop_assert!(r.activated_at.is_none() && r.retired_at.is_none());
                                prop_assert!(at >= r.published_at);
                            }
                            (Step::Retire { force }, Transition::Retire { at, forced_pending }) => {
                                let r = history.last().unwrap();
                                prop_assert!(r.activated_at.is_some_and(|a| a <= at), "retired only after activation");
                                prop_assert!(pending == 0 || force, "agents left behind only when forced");
                                prop_assert_eq!(forced_pending, pending);
                            }
                            (s, t) => prop_assert!(false, "{s:?} decided {t:?}"),
                        }
                        apply(&mut history, t, now);
                    }
                    Err(_) => {
                        // A refused step changes nothing; a retirement refused only for
                        // pending agents goes through when forced.
                        if let Step::Retire { force: false } = step
                            && pending > 0
                            && history.last().is_some_and(|r| r.phase() == Phase::Active && now >= r.activated_at.unwrap())
                        {
                            let forced = decide(history.last(), Step::Retire { force: true }, pending, now);
                            prop_assert!(forced.is_ok());
                        }
                    }
                }
                // The issuing CA changes only by an activation, into the published slot.
                let after_active = active_slot(history.last());
                if after_active != before_active {
                    prop_assert_eq!(history.last().unwrap().phase(), Phase::Active);
                    prop_assert_eq!(after_active, history.last().unwrap().slot);
                }
                prop_assert!(history.iter().filter(|r| r.retired_at.is_none()).count() <= 1);
            }
        }
    }

    #[test]
    fn a_full_rotation_and_the_next_one_alternate_slots() {
        let mut history = Vec::new();
        let t = decide(None, Step::Publish, 0, 10).unwrap();
        assert_eq!(t, Transition::Publish { slot: Slot::Next });
        apply(&mut history, t, 10);
        assert!(matches!(
            decide(history.last(), Step::Retire { force: false }, 0, 11),
            Err(RotationError::NotActive)
        ));
        let t = decide(history.last(), Step::Activate, 0, 12).unwrap();
        apply(&mut history, t, 12);
        assert!(matches!(
            decide(history.last(), Step::Retire { force: false }, 2, 13),
            Err(RotationError::AgentsPending(2))
        ));
        let t = decide(history.last(), Step::Retire { force: false }, 0, 14).unwrap();
        apply(&mut history, t, 14);
        assert_eq!(active_slot(history.last()), Slot::Next);
        assert_eq!(
            decide(history.last(), Step::Publish, 0, 15).unwrap(),
            Transition::Publish { slot: Slot::First }
        );
    }
}
