//! The `import` command: moving in from another billing system, with a dry run that reports
//! what would be created and skipped. A dump that cannot be read imports nothing and fails.

use anyhow::Context;
use clap::{Args, Subcommand};
use mikrobill_core::audit::Actor;
use mikrobill_core::db::{Db, now_ms};
use mikrobill_core::importer;
use std::path::PathBuf;

/// `import` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import PHPNuxBill's routers (as sites), plans, customers with balances, active
    /// recharges (PPPoE as subscriptions billed from their expiration, hotspot as vouchers in
    /// use) and unused vouchers from a mysqldump SQL file, or customers with balances from its
    /// customer CSV export. Re-running skips what an earlier run imported.
    Phpnuxbill(PhpnuxbillArgs),
}

/// Arguments of `import phpnuxbill`.
#[derive(Debug, Args)]
pub struct PhpnuxbillArgs {
    /// The `mysqldump` SQL file of PHPNuxBill's database, or its customer CSV export (told
    /// apart by the first line).
    pub dump: PathBuf,
    /// Report what would be created and skipped, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The site (existing, or created) for plans, recharges and vouchers whose router is not
    /// among the imported routers, e.g. those PHPNuxBill serves over RADIUS.
    #[arg(long, value_name = "NAME")]
    pub site_for_unassigned: Option<String>,
}

/// Runs an import command and prints its report.
pub async fn run(db: &Db, cmd: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Phpnuxbill(args) = cmd;
    let file = std::fs::File::open(&args.dump)
        .with_context(|| format!("cannot open {}", args.dump.display()))?;
    let report = importer::import_phpnuxbill(
        db,
        &Actor::cli(),
        std::io::BufReader::new(file),
        importer::PhpnuxbillOptions {
            dry_run: args.dry_run,
            site_for_unassigned: args.site_for_unassigned,
        },
        now_ms(),
    )
    .await
    .with_context(|| args.dump.display().to_string())?;
    print!("{}", report.render());
    Ok(())
}
