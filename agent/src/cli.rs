//! The `mikrobill-agent` command line.

use crate::uplink::LinkState;
use crate::{Agent, AgentOptions, identity};
use anyhow::Context;
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
    /// Export traces over OTLP/HTTP to this collector (e.g. http://127.0.0.1:4318); off by
    /// default, or from `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    #[arg(long, global = true, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// What to do.
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
        /// The router to manage.
        #[command(flatten)]
        router: RouterArgs,
        /// Where to serve /metrics, /health and /status (host:port), or `off`; keep it on
        /// loopback or a trusted network: /status names the accounts of recent rejects.
        #[arg(long, env = "MIKROBILL_AGENT_STATUS_LISTEN", default_value = crate::status::DEFAULT_LISTEN)]
        status_listen: String,
    },
    /// What the agent is doing: link, sync, outbox, cache, router, RADIUS and its last
    /// rejects, certificate. Asks the running agent on its status port, or reads the data
    /// directory when none answers.
    Status {
        /// The running agent's status listener.
        #[arg(long, env = "MIKROBILL_AGENT_STATUS_LISTEN", default_value = crate::status::DEFAULT_LISTEN)]
        status_listen: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 when the running agent answers `/health` with 200 (RADIUS running), 1
    /// otherwise: a container's health check, which has no curl.
    Health {
        /// The running agent's status listener.
        #[arg(long, env = "MIKROBILL_AGENT_STATUS_LISTEN", default_value = crate::status::DEFAULT_LISTEN)]
        status_listen: String,
    },
    /// The MikroTik router the agent manages over its API (`[router]` in the config file).
    Router {
        /// What to do with the router.
        #[command(subcommand)]
        command: RouterCommand,
    },
}

/// A listen address, or `None` for `off`.
fn parse_listen(text: &str) -> anyhow::Result<Option<std::net::SocketAddr>> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| anyhow::anyhow!("--status-listen {text:?} is not host:port or `off`"))
}

/// `router` subcommands.
#[derive(Debug, Subcommand)]
pub enum RouterCommand {
    /// Make the router use this agent for RADIUS (hotspot and PPP, accounting, interim
    /// updates, incoming CoA); changes only what differs and prints each change.
    Bootstrap {
        /// The router.
        #[command(flatten)]
        target: RouterTarget,
    },
    /// Connect to the router and print what it reports.
    Status {
        /// The router.
        #[command(flatten)]
        target: RouterTarget,
    },
}

/// Where the `router` commands find the router.
#[derive(Debug, clap::Args)]
pub struct RouterTarget {
    /// TOML configuration file with the `[router]` (and `[radius]`) sections.
    #[arg(long, env = "MIKROBILL_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The router's RADIUS secret when no `[router] radius_secret` or RADIUS client entry
    /// gives one (environment only).
    #[arg(
        long,
        env = "MIKROBILL_RADIUS_SECRET",
        hide_env_values = true,
        hide = true
    )]
    pub radius_secret: Option<String>,
    /// Settings overriding the file's `[router]`.
    #[command(flatten)]
    pub router: RouterArgs,
}

/// `[router]` settings from the command line or environment (for containers); they
/// override the config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RouterArgs {
    /// Router API address, host or host:port (default port 8728).
    #[arg(long, env = "MIKROBILL_ROUTER_ADDRESS")]
    pub router_address: Option<String>,
    /// Router API user.
    #[arg(long, env = "MIKROBILL_ROUTER_USERNAME")]
    pub router_username: Option<String>,
    /// Router API password (environment only).
    #[arg(
        long,
        env = "MIKROBILL_ROUTER_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub router_password: Option<String>,
    /// `radius` (the router asks this agent) or `api` (users pushed to the router).
    #[arg(long, env = "MIKROBILL_ROUTER_MODE")]
    pub router_mode: Option<crate::router::Mode>,
    /// Point the router's RADIUS at the agent when `run` starts.
    #[arg(long, env = "MIKROBILL_ROUTER_BOOTSTRAP", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub router_bootstrap: Option<bool>,
    /// The agent's address as the router reaches it (for the router's RADIUS entry).
    #[arg(long, env = "MIKROBILL_ROUTER_RADIUS_ADDRESS")]
    pub router_radius_address: Option<std::net::IpAddr>,
}

impl RouterArgs {
    /// Lays these over the file's section.
    pub fn apply(&self, section: &mut crate::config::RouterSection) {
        let secret = |s: &String| crate::router::Secret::new(s.clone());
        if let Some(v) = &self.router_address {
            section.address = Some(v.clone());
        }
        if let Some(v) = &self.router_username {
            section.username = Some(v.clone());
        }
        if let Some(v) = &self.router_password {
            section.password = Some(secret(v));
        }
        if let Some(v) = self.router_mode {
            section.mode = Some(v);
        }
        if let Some(v) = self.router_bootstrap {
            section.bootstrap_on_start = Some(v);
        }
        if let Some(v) = self.router_radius_address {
            section.radius_address = Some(v);
        }
    }
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

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before the runtime: the trace exporter's HTTP client runs its own.
    let telemetry = match mikrobill_telemetry::init(mikrobill_telemetry::Options {
        service: "mikrobill-agent",
        log_format: cli.log_format.clone(),
        otlp_endpoint: cli.otlp_endpoint.clone(),
    }) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(run(cli));
    // Exports the spans still queued.
    drop(telemetry);
    match outcome {
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
        Command::Status {
            status_listen,
            json,
        } => crate::status::local::print(&cli.data_dir, &status_listen, json).await,
        Command::Health { status_listen } => {
            let addr =
                parse_listen(&status_listen)?.context("the status port is off: nothing to ask")?;
            let (code, body) = crate::status::local::get(addr, "/health").await?;
            println!("{}", body.trim_end());
            anyhow::ensure!(code == 200, "unhealthy (HTTP {code})");
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
            router,
            status_listen,
        } => {
            let status_listen = parse_listen(&status_listen)?;
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
            router.apply(&mut file.router);
            let router = file.router.resolve(&file.radius.clients, None)?;
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
                interim: file
                    .router
                    .interim_update
                    .unwrap_or(crate::radius::DEFAULT_INTERIM),
                isolation_rate_limit: file.router.isolation_rate_limit.clone(),
            };
            let options = AgentOptions {
                data_dir: cli.data_dir,
                controller_addr: controller,
                reconnect_max,
                radius: Some(radius),
                router,
                status_listen,
                clock: crate::clock::Clock::system(),
            };
            let agent = Agent::start(options).await?;
            if let Some(r) = agent.radius() {
                tracing::info!(auth = %r.auth_addr, acct = %r.acct_addr, "RADIUS listening");
            }
            if let Some(addr) = agent.status_addr() {
                tracing::info!(%addr, "serving /metrics, /health and /status");
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
        Command::Router { command } => router_command(command).await,
    }
}

async fn router_command(command: RouterCommand) -> anyhow::Result<()> {
    use crate::router::{Mode, Router};
    let target = match &command {
        RouterCommand::Bootstrap { target } | RouterCommand::Status { target } => target,
    };
    let mut file = match &target.config {
        Some(path) => crate::config::AgentConfig::load(path)?,
        None => crate::config::AgentConfig::default(),
    };
    target.router.apply(&mut file.router);
    let config = file
        .router
        .resolve(&file.radius.clients, target.radius_secret.as_deref())?
        .context(
            "no router configured: set [router] address and username in the config file \
             (--config) or MIKROBILL_ROUTER_ADDRESS and MIKROBILL_ROUTER_USERNAME",
        )?;
    let router = Router::spawn(&config);
    let result = match command {
        RouterCommand::Bootstrap { .. } => {
            if config.mode == Mode::Api {
                println!(
                    "API mode: the router does not use RADIUS; `mikrobill-agent run` pushes hotspot users and PPP secrets"
                );
                Ok(())
            } else {
                match crate::router::bootstrap(&router, &config.radius).await {
                    Ok(changes) if changes.is_empty() => {
                        println!("router already configured");
                        Ok(())
                    }
                    Ok(changes) => {
                        for change in changes {
                            println!("{change}");
                        }
                        Ok(())
                    }
                    Err(e) => Err(anyhow::anyhow!("router bootstrap failed: {e}")),
                }
            }
        }
        RouterCommand::Status { .. } => {
            let result = router.refresh().await;
            print!(
                "router:         {}\n{}",
                config.address,
                *router.state().borrow()
            );
            result
                .map(drop)
                .map_err(|e| anyhow::anyhow!("router unreachable: {e}"))
        }
    };
    router.shutdown();
    result
}

/// Enrolls, retrying while the controller is unreachable (a site's uplink may come up after
/// the agent); a refusal or a bad token ends the attempt with its reason.
async fn enroll_until_done(token: &str, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let mut pacing = crate::reconnect::Reconnect::new(Duration::from_secs(60));
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
