//! The `import` command: moving in from another billing system, with a dry run that reports
//! what would be created and skipped. A dump that cannot be read imports nothing and fails.

use anyhow::Context;
use clap::{Args, Subcommand};
use mikrobill_core::audit::Actor;
use mikrobill_core::db::{Db, now_ms};
use mikrobill_core::importer::{apply, mysqldump, phpnuxbill};
use std::path::PathBuf;

/// `import` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import PHPNuxBill's routers (as sites), plans, customers with balances, active
    /// recharges (PPPoE as subscriptions billed from their expiration, hotspot as vouchers in
    /// use) and unused vouchers from a mysqldump SQL file. Re-running skips what an earlier
    /// run imported.
    Phpnuxbill(PhpnuxbillArgs),
}

/// Arguments of `import phpnuxbill`.
#[derive(Debug, Args)]
pub struct PhpnuxbillArgs {
    /// The `mysqldump` SQL file of PHPNuxBill's database.
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
    let path = args.dump.clone();
    // Reading is blocking and may take a while on a large dump.
    let dump = tokio::task::spawn_blocking(move || -> anyhow::Result<mysqldump::Dump> {
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        mysqldump::read(std::io::BufReader::new(file), &phpnuxbill::TABLES).with_context(|| {
            format!(
                "{} is not a readable dump; nothing was imported",
                path.display()
            )
        })
    })
    .await??;
    let settings = mikrobill_core::settings::billing(db).await?;
    let now = now_ms();
    let mapped = phpnuxbill::map(
        &dump,
        &phpnuxbill::Options {
            now,
            utc_offset_minutes: settings.utc_offset_minutes,
            currency_exponent: settings.currency_exponent,
            site_for_unassigned: args.site_for_unassigned,
        },
    );
    drop(dump);
    let actor = Actor::cli();
    let report = apply::apply(
        db,
        &apply::Run {
            actor: &actor,
            settings: &settings,
            now,
            dry_run: args.dry_run,
        },
        mapped,
    )
    .await
    .context("the import failed; nothing was imported")?;
    print!("{}", report.render());
    Ok(())
}
