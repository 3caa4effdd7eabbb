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
    /// Import a site's router: its hotspot users (Mikhmon's vouchers, with the time and bytes
    /// they used) as vouchers and its PPP secrets as PPPoE subscriptions, read by the site's
    /// agent through the running controller (`serve` must be running and the agent online).
    /// Then the router's entries are adopted (API mode) or retired in favour of RADIUS;
    /// nobody online is disconnected. Re-running skips what an earlier run imported.
    Router(RouterArgs),
}

/// Arguments of `import router`.
#[derive(Debug, Args)]
pub struct RouterArgs {
    /// The site whose router is read.
    #[arg(long, value_name = "NAME")]
    pub site: String,
    /// Report what would be created and skipped, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `adopt`: the agent manages the entries from now on (API mode); `retire`: entries of
    /// logins not online are removed from the router so RADIUS answers them (RADIUS mode).
    #[arg(long, value_name = "adopt|retire", required_unless_present = "dry_run")]
    pub mode: Option<String>,
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
    let args = match cmd {
        ImportCommand::Phpnuxbill(args) => args,
        ImportCommand::Router(args) => return router(db, args).await,
    };
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

/// How often the CLI looks whether the agent has answered the read.
const POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// `import router`: queues the read (the running controller's edge delivers it), waits for
/// the agent's answer, then prints the dry run or applies it.
async fn router(db: &Db, args: RouterArgs) -> anyhow::Result<()> {
    use mikrobill_core::commands::CommandStatus;
    use mikrobill_core::importer::router;
    let mode = args.mode.as_deref().map(router::parse_mode).transpose()?;
    let site = mikrobill_core::sites::by_name(db, &args.site).await?;
    let actor = Actor::cli();
    let started = router::start(db, &actor, &site.id).await?;
    let id = started.read.id;
    eprintln!(
        "waiting for the agent of {} to read its router (command {id}; the controller must be running)",
        site.name
    );
    let read = loop {
        let read = mikrobill_core::commands::get(db, id).await?;
        if read.status != CommandStatus::Pending {
            break read;
        }
        // Only a live session marks an undelivered command expired: an offline site's read
        // would stay pending.
        if now_ms() > read.expires_at + POLL.as_millis() as i64 * 4 {
            anyhow::bail!(
                "the agent of {} did not answer before the read's deadline: is the site online and the controller running?",
                site.name
            );
        }
        tokio::time::sleep(POLL).await;
    };
    if read.status != CommandStatus::Applied {
        anyhow::bail!(
            "the router read is {}: {}",
            read.status.as_str(),
            read.result.as_deref().unwrap_or("no reason given")
        );
    }
    let done = match mode {
        Some(mode) if !args.dry_run => {
            router::apply(db, &actor, &site.id, id, mode, now_ms()).await?
        }
        _ => router::show(db, &actor, &site.id, id, now_ms()).await?,
    };
    if let Some(report) = &done.report {
        print!("{}", report.render());
    }
    if let Some(take_over) = &done.take_over {
        println!(
            "router entries: command {} queued for the agent ({} mode)",
            take_over.id,
            args.mode.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}
