//! Scheduled jobs (invoice runs, isolation and voucher expiry sweeps): each runs on an interval on
//! whichever replica holds its lease; every job is also idempotent on its own, so a lease
//! lost mid-run costs time, never a double invoice.

use crate::db::{Db, now_ms};
use crate::lease;
use std::time::Duration;

/// A scheduled job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Job {
    /// Issue invoices for cycles that have started.
    InvoiceRun,
    /// Isolate subscriptions unpaid past due + grace.
    IsolationSweep,
    /// Expire active vouchers whose validity has ended.
    VoucherExpiry,
    /// Queues payment reminders before due dates.
    NotificationReminders,
    /// Deletes change-log entries no connected agent needs (see `sync_compaction`).
    SyncCompaction,
}

/// Every job, in the order a tick runs them (invoices first, so a new cycle's invoice exists
/// before isolation looks at it).
pub const ALL_JOBS: [Job; 5] = [
    Job::InvoiceRun,
    Job::IsolationSweep,
    Job::VoucherExpiry,
    Job::NotificationReminders,
    Job::SyncCompaction,
];

/// How long a lease lasts; a crashed holder's job resumes elsewhere after this.
const LEASE_TTL_MS: i64 = 5 * 60 * 1000;

impl Job {
    /// The job's name in leases, logs and the API.
    pub fn name(self) -> &'static str {
        match self {
            Job::InvoiceRun => "invoice-run",
            Job::IsolationSweep => "isolation-sweep",
            Job::VoucherExpiry => "voucher-expiry",
            Job::NotificationReminders => "notification-reminders",
            Job::SyncCompaction => "sync-compaction",
        }
    }

    /// Parses a job name.
    pub fn from_name(name: &str) -> Option<Job> {
        ALL_JOBS.into_iter().find(|j| j.name() == name)
    }

    async fn execute(self, db: &Db) -> Result<u64, crate::error::DomainError> {
        match self {
            Job::InvoiceRun => crate::subscriptions::invoice_run(db, now_ms()).await,
            Job::IsolationSweep => crate::subscriptions::isolation_sweep(db, now_ms()).await,
            Job::VoucherExpiry => crate::vouchers::sweep::expire_due(db, now_ms()).await,
            Job::NotificationReminders => crate::notify::reminders::run(db, now_ms()).await,
            Job::SyncCompaction => Ok(crate::sync_compaction::compact(db, now_ms()).await?),
        }
    }
}

/// The outcome of one attempt to run a job.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RunOutcome {
    /// The job.
    pub job: Job,
    /// False when another replica held the lease.
    pub ran: bool,
    /// Records the job changed (invoices issued, subscriptions isolated).
    pub changed: u64,
}

/// Runs `job` now if this holder can take its lease.
pub async fn run_once(
    db: &Db,
    job: Job,
    holder: &str,
) -> Result<RunOutcome, crate::error::DomainError> {
    if !lease::acquire(db, job.name(), holder, LEASE_TTL_MS).await? {
        return Ok(RunOutcome {
            job,
            ran: false,
            changed: 0,
        });
    }
    let span = tracing::info_span!("job", job = job.name(), changed = tracing::field::Empty);
    let result = tracing::Instrument::instrument(job.execute(db), span.clone()).await;
    if let Ok(n) = &result {
        span.record("changed", n);
    }
    let outcome = match &result {
        Ok(n) => format!("ok: {n} changed"),
        Err(e) => format!("failed: {e}"),
    };
    lease::release(db, job.name(), holder, &outcome).await?;
    let changed = result?;
    if changed > 0 {
        tracing::info!(job = job.name(), changed, "job ran");
    }
    Ok(RunOutcome {
        job,
        ran: true,
        changed,
    })
}

/// Runs every job every `interval` until `stop` resolves.
pub async fn scheduler(
    db: Db,
    holder: String,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        for job in ALL_JOBS {
            if let Err(e) = run_once(&db, job, &holder).await {
                tracing::warn!(job = job.name(), "job failed: {e}");
            }
        }
    }
}
