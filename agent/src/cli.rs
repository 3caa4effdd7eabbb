//! The `mikrobill-agent` command line.

use crate::uplink::LinkState;
use crate::{Agent, AgentOptions, identity};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// MikroBill agent: RADIUS and local cache beside a MikroTik router.
#[derive(Debug, Parser)]
#[command(name = "mikrobill-agent", version, about)]
pub struct Cli {
    /// Data directory: key, certificates and the local database.
    #[arg(
        long,
        global = true,
        env = "MIKROBILL_AGENT_DATA_DIR",
        default_value = "/var/lib/mikrobill-agent"
    )]
    pub data_dir: PathBuf,
    /// Log format: text or json.
    #[arg(long, global = true, env = "MIKROBILL_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll with a one-time token from `mikrobill-controller site add`.
    Enroll {
        /// The enrollment token.
        #[arg(long, env = "MIKROBILL_ENROLL_TOKEN", hide_env_values = true)]
        token: String,
        /// Replace an existing enrollment.
        #[arg(long)]
        force: bool,
    },
    /// Run the agent: RADIUS server for the router and the link to the controller.
    Run {
        /// TOML configuration file (RADIUS listeners and clients).
        #[arg(long, env = "MIKROBILL_AGENT_CONFIG")]
        config: Option<PathBuf>,
        /// RADIUS authentication listener [default: 0.0.0.0:1812].
        #[arg(long, env = "MIKROBILL_RADIUS_AUTH_LISTEN")]
        radius_auth_listen: Option<std::net::SocketAddr>,
        /// RADIUS accounting listener [default: 0.0.0.0:1813].
        #[arg(long, env = "MIKROBILL_RADIUS_ACCT_LISTEN")]
        radius_acct_listen: Option<std::net::SocketAddr>,
        /// Address (or CIDR network) of the one router to serve, for setups without a config file.
        #[arg(
            long,
            env = "MIKROBILL_RADIUS_CLIENT_ADDRESS",
            requires = "radius_secret"
        )]
        radius_client_address: Option<String>,
        /// That router's RADIUS secret (environment only: a command line is visible to every user).
        #[arg(
            long,
            env = "MIKROBILL_RADIUS_SECRET",
            hide_env_values = true,
            hide = true
        )]
        radius_secret: Option<String>,
        /// Enroll with this token first when the data directory holds no enrollment yet
        /// (zero-touch installs, e.g. RouterOS containers).
        #[arg(long, env = "MIKROBILL_ENROLL_TOKEN", hide_env_values = true)]
        enroll_token: Option<String>,
        /// Controller edge address, overriding the one from enrollment.
        #[arg(long, env = "MIKROBILL_CONTROLLER_ADDR")]
        controller: Option<String>,
        /// Longest pause between reconnect attempts (e.g. 60s).
        #[arg(long, default_value = "60s", value_parser = humantime_secs)]
        reconnect_max: Duration,
    },
    /// Show the enrollment (works while the agent runs).
    Status,
}

fn humantime_secs(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        (s, 1000)
    };
    num.parse::<u64>()
        .map(|n| Duration::from_millis(n * mult))
        .map_err(|_| format!("{s:?} is not a duration such as 500ms, 30s or 5m"))
}

fn init_logging(format: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init()
    } else {
        builder.init()
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Enroll { token, force } => {
            let enrolled = crate::enroll::enroll(&token, &cli.data_dir, force).await?;
            println!(
                "enrolled as site {:?} ({}); controller {}",
                enrolled.state.site_name, enrolled.state.site_id, enrolled.state.controller_addr
            );
            Ok(())
        }
        Command::Status => {
            let id = identity::load(&cli.data_dir)?;
            println!("site:       {} ({})", id.state.site_name, id.state.site_id);
            println!("controller: {}", id.state.controller_addr);
            if let Some(secs) = identity::cert_expires_in_secs(&id.cert) {
                println!("certificate expires in {} days", secs / 86400);
            }
            Ok(())
        }
        Command::Run {
            config,
            radius_auth_listen,
            radius_acct_listen,
            radius_client_address,
            radius_secret,
            enroll_token,
            controller,
            reconnect_max,
        } => {
            let mut file = match &config {
                Some(path) => crate::config::AgentConfig::load(path)?,
                None => crate::config::AgentConfig::default(),
            };
            if let (Some(address), Some(secret)) = (radius_client_address, radius_secret) {
                file.radius.clients.push(crate::radius::NasClient {
                    name: "router".into(),
                    address,
                    secret,
                    require_message_authenticator: true,
                    coa_port: crate::radius::clients::DEFAULT_COA_PORT,
                });
            }
            if let Some(token) = enroll_token
                && !identity::is_enrolled(&cli.data_dir)
            {
                enroll_until_done(&token, &cli.data_dir).await?;
            }
            let radius = crate::radius::RadiusConfig {
                auth_listen: radius_auth_listen
                    .or(file.radius.auth_listen)
                    .unwrap_or_else(|| {
                        crate::config::DEFAULT_AUTH_LISTEN
                            .parse()
                            .expect("default address")
                    }),
                acct_listen: radius_acct_listen
                    .or(file.radius.acct_listen)
                    .unwrap_or_else(|| {
                        crate::config::DEFAULT_ACCT_LISTEN
                            .parse()
                            .expect("default address")
                    }),
                clients: crate::radius::Clients::new(file.radius.clients)?,
            };
            let options = AgentOptions {
                data_dir: cli.data_dir,
                controller_addr: controller,
                reconnect_max,
                radius: Some(radius),
            };
            let agent = Agent::start(options).await?;
            if let Some(r) = agent.radius() {
                tracing::info!(auth = %r.auth_addr, acct = %r.acct_addr, "RADIUS listening");
            }
            tracing::info!(site = agent.site_name(), "agent running");
            let mut link = agent.link();
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = term.recv() => break,
                    changed = link.changed() => {
                        if changed.is_err() { break }
                        if let LinkState::Refused { reason } = &*link.borrow() {
                            tracing::error!("still serving from the local cache, but the controller refuses this agent: {reason}");
                        }
                    }
                }
            }
            tracing::info!("shutting down");
            agent.shutdown().await;
            Ok(())
        }
    }
}

/// Enrolls, retrying while the controller is unreachable (a site's uplink may come up after
/// the agent); a refusal or a bad token ends the attempt with its reason.
async fn enroll_until_done(token: &str, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let mut pacing = crate::uplink::Reconnect::new(Duration::from_secs(60));
    loop {
        match crate::enroll::enroll(token, data_dir, false).await {
            Ok(enrolled) => {
                tracing::info!(site = enrolled.state.site_name, "enrolled");
                return Ok(());
            }
            Err(crate::enroll::EnrollError::Connect { addr, message }) => {
                let delay = pacing.next_delay();
                tracing::warn!(%addr, ?delay, "cannot reach the controller to enroll, retrying: {message}");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(humantime_secs("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(humantime_secs("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(humantime_secs("5m"), Ok(Duration::from_secs(300)));
        assert!(humantime_secs("soon").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
