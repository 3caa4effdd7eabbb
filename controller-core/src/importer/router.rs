//! The import of a site's router, in two steps because only its agent can read the router:
//! `start` queues `ReadRouterAccounts`, whose answer the command's completion stores
//! (`commands::router_accounts`); `show` maps what was read and reports it as a dry run; `apply` writes it
//! in one transaction and queues, in that same transaction, the take-over of the imported
//! router entries (adopt: the agent owns them, API mode; retire: their local entries go so
//! RADIUS answers, never while they are online).

use super::apply::{self, Run};
use super::report::{Kind, Outcome, Report};
use super::routeros::{self, HOTSPOT_USERS, PPP_SECRETS};
use crate::audit::Actor;
use crate::commands::{self, QueuedCommand};
use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use mikrobill_protocol::inventory::{EntryRef, TakeOver};
use mikrobill_protocol::messages::Command;
use serde::Serialize;

/// How long the read may wait for the site and its router: an unreachable router fails
/// the read with the reason instead of leaving it pending for a day.
pub const READ_TTL_SECS: u32 = 300;

/// `adopt` or `retire`, as the API and the CLI name them.
pub fn parse_mode(s: &str) -> DomainResult<TakeOver> {
    match s {
        "adopt" => Ok(TakeOver::Adopt),
        "retire" => Ok(TakeOver::Retire),
        _ => Err(DomainError::invalid(
            "mode",
            format!("{s:?} is neither adopt (API mode) nor retire (RADIUS mode)"),
        )),
    }
}

/// An import of a router: the read, and once it is answered, the report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RouterImport {
    /// The read command (`status` pending until the agent answers; `result` says why a
    /// read failed).
    pub read: QueuedCommand,
    /// What was (dry run: would be) created, already imported or skipped; absent until the
    /// router has been read.
    pub report: Option<Report>,
    /// The command that adopts or retires the imported router entries (after an apply that
    /// imported any).
    pub take_over: Option<QueuedCommand>,
}

/// Queues the read of a site's router accounts.
pub async fn start(db: &Db, actor: &Actor, site_id: &str) -> DomainResult<RouterImport> {
    let read = commands::queue_manual(
        db,
        actor,
        site_id,
        None,
        Command::ReadRouterAccounts,
        Some(READ_TTL_SECS),
    )
    .await?;
    Ok(RouterImport {
        read,
        report: None,
        take_over: None,
    })
}

/// The read command `id` of `site_id`.
async fn read_command(
    conn: &mut sqlx::AnyConnection,
    site_id: &str,
    id: i64,
) -> DomainResult<QueuedCommand> {
    let read = commands::fetch(conn, id).await?;
    if read.site_id != site_id || read.kind != "read_router_accounts" {
        return Err(DomainError::not_found("router import", id.to_string()));
    }
    Ok(read)
}

/// The router entries an import took over: those created now or by an earlier run.
fn taken(report: &Report, table: &str) -> Vec<EntryRef> {
    report
        .entries
        .iter()
        .filter(|e| e.source.table == table)
        .filter(|e| {
            matches!(
                e.kind,
                Kind::Voucher | Kind::ActiveVoucher | Kind::Subscription
            )
        })
        .filter(|e| {
            matches!(
                e.outcome,
                Outcome::Created { .. } | Outcome::AlreadyImported
            )
        })
        .filter_map(|e| {
            Some(EntryRef {
                id: e.source.id.clone(),
                name: e.source.name.clone()?,
            })
        })
        .collect()
}

/// Maps and writes the read `id` at `now`; with `mode`, for real, queuing the take-over in
/// the same transaction; without, as a dry run.
async fn run(
    db: &Db,
    actor: &Actor,
    site_id: &str,
    id: i64,
    mode: Option<TakeOver>,
    now: i64,
) -> DomainResult<RouterImport> {
    // Also checks the read belongs to the site before anything else.
    read_command(&mut *db.pool.acquire().await?, site_id, id).await?;
    let settings = crate::settings::billing(db).await?;
    let mut tx = db.begin().await?;
    let accounts = commands::router_accounts(&mut tx, id, site_id).await?;
    // Read after the accounts: the answer and the read's status commit together, so a status
    // read before them could still say pending beside a report.
    let read = read_command(&mut tx, site_id, id).await?;
    let Some(accounts) = accounts else {
        tx.rollback().await?;
        if mode.is_some() {
            return Err(DomainError::conflict(
                "not_read",
                format!(
                    "the router has not been read (the read is {}): apply once it is applied",
                    read.status.as_str()
                ),
            ));
        }
        return Ok(RouterImport {
            read,
            report: None,
            take_over: None,
        });
    };
    let mapped = routeros::map(
        &accounts,
        &routeros::Options {
            now,
            site_id: site_id.to_string(),
            utc_offset_minutes: settings.utc_offset_minutes,
            currency_exponent: settings.currency_exponent,
        },
    );
    let source = apply::router_source(site_id);
    let report = apply::apply_in(
        &mut tx,
        &Run {
            actor,
            settings: &settings,
            now,
            dry_run: mode.is_none(),
            source: &source,
        },
        mapped,
    )
    .await?;
    let Some(mode) = mode else {
        tx.rollback().await?;
        return Ok(RouterImport {
            read,
            report: Some(report),
            take_over: None,
        });
    };
    let (hotspot_users, ppp_secrets) = (taken(&report, HOTSPOT_USERS), taken(&report, PPP_SECRETS));
    let take_over_id = if hotspot_users.is_empty() && ppp_secrets.is_empty() {
        None
    } else {
        let command = Command::TakeOverRouterAccounts {
            mode,
            hotspot_users,
            ppp_secrets,
        };
        let queued = commands::enqueue(
            &mut tx,
            site_id,
            &command,
            None,
            &actor.name,
            commands::DEFAULT_TTL_MS,
        )
        .await?;
        Some(queued)
    };
    #[derive(Serialize)]
    struct Applied {
        read_command_id: i64,
        mode: TakeOver,
        take_over_command_id: Option<i64>,
        created: usize,
        skipped: usize,
    }
    let count = |f: fn(&Outcome) -> bool| report.entries.iter().filter(|e| f(&e.outcome)).count();
    crate::audit::record(
        &mut tx,
        actor,
        "router_import.apply",
        "site",
        Some(site_id),
        None::<&()>,
        Some(&Applied {
            read_command_id: id,
            mode,
            take_over_command_id: take_over_id,
            created: count(|o| matches!(o, Outcome::Created { .. })),
            skipped: count(|o| matches!(o, Outcome::Skipped { .. })),
        }),
    )
    .await?;
    tx.commit().await?;
    let take_over = match take_over_id {
        Some(id) => Some(commands::get(db, id).await?),
        None => None,
    };
    Ok(RouterImport {
        read,
        report: Some(report),
        take_over,
    })
}

/// The read `id` and, once the router answered, what applying it would do (nothing is
/// written).
pub async fn show(
    db: &Db,
    actor: &Actor,
    site_id: &str,
    id: i64,
    now: i64,
) -> DomainResult<RouterImport> {
    run(db, actor, site_id, id, None, now).await
}

/// Imports what the read `id` found, in one transaction, and queues the take-over of the
/// router entries in `mode`. Re-running imports nothing twice and takes over again what
/// is still on the router (e.g. logins that were online the first time).
pub async fn apply(
    db: &Db,
    actor: &Actor,
    site_id: &str,
    id: i64,
    mode: TakeOver,
    now: i64,
) -> DomainResult<RouterImport> {
    run(db, actor, site_id, id, Some(mode), now).await
}
