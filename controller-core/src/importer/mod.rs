//! Moving in from another billing system. `mysqldump` reads the rows of a MySQL dump without
//! a MySQL server, `customers_csv` PHPNuxBill's customer CSV exports; `phpnuxbill` decides
//! purely what PHPNuxBill's rows become; `routeros` decides purely what a router's own
//! hotspot users and PPP secrets (Mikhmon's vouchers) become, and `router` runs that import
//! from what an agent read (kept with its command); `apply` writes a mapping in one
//! transaction, remembering each source id in `import_sources` so a re-run is idempotent;
//! `report` says what was created, already imported or skipped and why.

pub mod apply;
pub mod customers_csv;
pub mod mysqldump;
pub mod phpnuxbill;
pub mod report;
pub mod router;
pub mod routeros;

use crate::audit::Actor;
use crate::auth::Perm;
use crate::db::Db;
use crate::error::DomainError;

/// What an importer must be allowed: it creates every one of these kinds of record.
pub const PERMS: [Perm; 5] = [
    Perm::WriteSites,
    Perm::WritePlans,
    Perm::WriteCustomers,
    Perm::WriteSubscriptions,
    Perm::WriteVouchers,
];

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The dump cannot be read.
    #[error("the dump is not readable ({0}); nothing was imported")]
    Dump(#[from] mysqldump::DumpError),
    /// Storage failed; the transaction rolled back.
    #[error("the import failed ({0}); nothing was imported")]
    Domain(#[from] DomainError),
}

/// What to do with a PHPNuxBill dump.
#[derive(Debug, Clone, Default)]
pub struct PhpnuxbillOptions {
    /// Report only; write nothing.
    pub dry_run: bool,
    /// The site for rows whose router was not imported (created when missing).
    pub site_for_unassigned: Option<String>,
}

/// Reads a PHPNuxBill mysqldump or customer CSV export from `input` (on a blocking thread: a
/// dump may be large), maps it and writes it in one transaction at `now`, as the CLI and the
/// API do.
pub async fn import_phpnuxbill(
    db: &Db,
    actor: &Actor,
    input: impl std::io::BufRead + Send + 'static,
    options: PhpnuxbillOptions,
    now: i64,
) -> Result<report::Report, ImportError> {
    let dump = tokio::task::spawn_blocking(move || read_export(input))
        .await
        .map_err(|e| mysqldump::DumpError::Io(std::io::Error::other(e.to_string())))??;
    let settings = crate::settings::billing(db).await?;
    let mapped = phpnuxbill::map(
        &dump,
        &phpnuxbill::Options {
            now,
            utc_offset_minutes: settings.utc_offset_minutes,
            currency_exponent: settings.currency_exponent,
            site_for_unassigned: options.site_for_unassigned,
        },
    );
    drop(dump);
    Ok(apply::apply(
        db,
        &apply::Run {
            actor,
            settings: &settings,
            now,
            dry_run: options.dry_run,
            source: apply::SOURCE,
        },
        mapped,
    )
    .await?)
}

/// Reads a mysqldump, or a customer CSV export when the first line is a CSV header naming
/// `id` and `username` (a dump's first line is a comment or a statement).
fn read_export(mut input: impl std::io::BufRead) -> Result<mysqldump::Dump, mysqldump::DumpError> {
    let start = input.fill_buf()?;
    let first_line = start.split(|&b| b == b'\n').next().unwrap_or_default();
    if customers_csv::looks_like_csv(&String::from_utf8_lossy(first_line)) {
        customers_csv::read(input)
    } else {
        mysqldump::read(input, &phpnuxbill::TABLES)
    }
}
