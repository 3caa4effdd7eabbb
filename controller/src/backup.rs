//! Backups from the command line (`backup`, `restore`) and on a schedule inside `serve`
//! (`--backup-dir`): the archive itself is `mikrobill_core::backup`'s.

use crate::config::{BackupSchedule as Schedule, StoreConfig};
use anyhow::Context;
use clap::Args;
use mikrobill_core::backup::{self, retention};
use mikrobill_core::db::{Backend, Db, now_ms, redact_url};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the passphrase of a sealed archive comes from.
#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from the first line of this file.
    #[arg(
        long,
        env = "MIKROBILL_BACKUP_PASSPHRASE_FILE",
        conflicts_with = "passphrase_stdin"
    )]
    pub passphrase_file: Option<PathBuf>,
    /// Read the passphrase from the first line of standard input.
    #[arg(long)]
    pub passphrase_stdin: bool,
}

impl PassphraseArgs {
    fn read(&self) -> anyhow::Result<Option<String>> {
        if let Some(path) = &self.passphrase_file {
            return read_passphrase_file(path).map(Some);
        }
        if self.passphrase_stdin {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the passphrase from standard input")?;
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            anyhow::ensure!(
                !line.is_empty(),
                "the passphrase on standard input is empty"
            );
            return Ok(Some(line));
        }
        Ok(None)
    }
}

fn read_passphrase_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the passphrase file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").to_string();
    anyhow::ensure!(
        !line.is_empty(),
        "the passphrase file {} is empty",
        path.display()
    );
    Ok(line)
}

/// Options of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Archive to write (must not exist) [default: mikrobill-backup-<UTC time>.tar.gz, with
    /// `.sealed` when a passphrase is given, in the current directory].
    pub output: Option<PathBuf>,
    /// Seal the archive with a passphrase (at least 12 characters).
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// Options of `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Archive written by `backup` or by the scheduled backups.
    pub archive: PathBuf,
    /// The passphrase of a sealed archive.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// `mikrobill-controller backup`: an online snapshot next to a running controller.
pub async fn run_backup(store: &StoreConfig, args: BackupArgs) -> anyhow::Result<()> {
    let passphrase = args.passphrase.read()?;
    let now = now_ms();
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(retention::file_name(now, passphrase.is_some())));
    let url = store.database_url();
    let db = Db::connect(&url)
        .await
        .with_context(|| format!("cannot open database {}", redact_url(&url)))?;
    let manifest =
        backup::create(&db, &store.data_dir, &output, passphrase.as_deref(), now).await?;
    println!(
        "backup written to {} ({} files{}, schema version {})",
        output.display(),
        manifest.files.len(),
        if passphrase.is_some() { ", sealed" } else { "" },
        manifest.schema_version
    );
    if db.backend == Backend::Postgres {
        println!(
            "the database is PostgreSQL: this archive holds the keys only; back the database up with pg_dump (see the README)"
        );
    }
    Ok(())
}

/// `mikrobill-controller restore`: unpacks an archive into the (new or empty) data directory.
pub async fn run_restore(store: &StoreConfig, args: RestoreArgs) -> anyhow::Result<()> {
    let passphrase = args.passphrase.read()?;
    let backend = if store.database_url.is_some() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    if backend == Backend::Postgres {
        // The database came back from pg_restore, perhaps older than what agents have seen:
        // a new sync epoch makes each take a snapshot (the SQLite restore does this itself).
        let url = store.database_url();
        let db = Db::connect(&url)
            .await
            .with_context(|| format!("cannot open database {}", redact_url(&url)))?;
        mikrobill_core::sync_log::start_new_epoch(&db)
            .await
            .context("restore the PostgreSQL database (pg_restore) before the keys")?;
        db.close().await;
    }
    let manifest = backup::restore(
        &args.archive,
        &store.data_dir,
        passphrase.as_deref(),
        backend,
    )
    .await?;
    println!(
        "restored into {}: {} (taken {} by controller {})",
        store.data_dir.display(),
        manifest
            .files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        mikrobill_core::db::format_ms(manifest.created_at),
        manifest.controller_version
    );
    if backend == Backend::Postgres {
        println!(
            "the database is PostgreSQL: the keys are restored and agents will take a fresh snapshot; the database itself comes from pg_restore (see the README)"
        );
    }
    Ok(())
}

/// Scheduled backup options of `serve`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Directory for scheduled backups; none are taken without it.
    #[arg(long, env = "MIKROBILL_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Time between scheduled backups [default: 24h].
    #[arg(long, env = "MIKROBILL_BACKUP_INTERVAL", value_parser = humantime::parse_duration)]
    pub backup_interval: Option<Duration>,
    /// Scheduled backups kept; older ones are deleted [default: 7].
    #[arg(long, env = "MIKROBILL_BACKUP_KEEP")]
    pub backup_keep: Option<usize>,
    /// Seal scheduled backups with the passphrase on the first line of this file.
    #[arg(long, env = "MIKROBILL_BACKUP_PASSPHRASE_FILE")]
    pub backup_passphrase_file: Option<PathBuf>,
}

impl ScheduleArgs {
    /// The schedule in effect: flags and environment over the file's `[backup]` table.
    pub fn resolve(self, file: &crate::config::FileBackup) -> anyhow::Result<Option<Schedule>> {
        let Some(dir) = self.backup_dir.or_else(|| file.dir.clone()) else {
            return Ok(None);
        };
        let interval = match (self.backup_interval, &file.interval) {
            (Some(d), _) => d,
            (None, Some(text)) => humantime::parse_duration(text).with_context(|| {
                format!("[backup] interval {text:?} in the config file is not a duration")
            })?,
            (None, None) => Duration::from_secs(24 * 3600),
        };
        anyhow::ensure!(
            interval >= Duration::from_secs(1),
            "the backup interval must be at least 1s"
        );
        let keep = self.backup_keep.or(file.keep).unwrap_or(7);
        anyhow::ensure!(keep >= 1, "--backup-keep must be at least 1");
        let passphrase_file = self
            .backup_passphrase_file
            .or_else(|| file.passphrase_file.clone());
        if let Some(path) = &passphrase_file {
            // Refuse to start with a passphrase that cannot seal, not on the first run.
            let p = read_passphrase_file(path)?;
            anyhow::ensure!(
                p.chars().count() >= backup::sealed::MIN_PASSPHRASE,
                "the backup passphrase in {} must be at least {} characters",
                path.display(),
                backup::sealed::MIN_PASSPHRASE
            );
        }
        Ok(Some(Schedule {
            dir,
            interval,
            keep,
            passphrase_file,
        }))
    }
}

/// Takes a backup whenever one is due and deletes those beyond `keep`, until `stop`. A
/// failed run is logged, counted in `mikrobill_backup_failures_total` and retried after a
/// tenth of the interval (at most 5 minutes).
pub async fn run_schedule(
    db: Db,
    data_dir: PathBuf,
    schedule: Schedule,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    if let Err(e) = std::fs::create_dir_all(&schedule.dir) {
        tracing::error!(dir = %schedule.dir.display(), "scheduled backups are off: cannot create the directory: {e}");
        return;
    }
    let interval_ms = i64::try_from(schedule.interval.as_millis()).unwrap_or(i64::MAX);
    let retry = (schedule.interval / 10).min(Duration::from_secs(300));
    let mut failed_at: Option<i64> = None;
    loop {
        let now = now_ms();
        let due = match failed_at {
            Some(at) => at + retry.as_millis() as i64,
            None => retention::next_due(&list(&schedule.dir), interval_ms, now),
        };
        let wait = Duration::from_millis(due.saturating_sub(now).max(0) as u64);
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match run_once(&db, &data_dir, &schedule).await {
            Ok(path) => {
                failed_at = None;
                tracing::info!(path = %path.display(), "scheduled backup written");
                metrics::gauge!("mikrobill_backup_last_success_timestamp_seconds")
                    .set(now_ms() as f64 / 1000.0);
            }
            Err(e) => {
                failed_at = Some(now_ms());
                tracing::error!("scheduled backup failed: {e:#}");
                metrics::counter!("mikrobill_backup_failures_total").increment(1);
            }
        }
    }
}

async fn run_once(db: &Db, data_dir: &Path, schedule: &Schedule) -> anyhow::Result<PathBuf> {
    let passphrase = match &schedule.passphrase_file {
        Some(path) => Some(read_passphrase_file(path)?),
        None => None,
    };
    let now = now_ms();
    let path = schedule
        .dir
        .join(retention::file_name(now, passphrase.is_some()));
    backup::create(db, data_dir, &path, passphrase.as_deref(), now).await?;
    for old in retention::to_delete(&list(&schedule.dir), schedule.keep) {
        let old = schedule.dir.join(old);
        match std::fs::remove_file(&old) {
            Ok(()) => tracing::info!(path = %old.display(), "old backup deleted"),
            Err(e) => tracing::warn!(path = %old.display(), "cannot delete an old backup: {e}"),
        }
    }
    Ok(path)
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
