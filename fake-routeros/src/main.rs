//! `fake-routeros --listen 127.0.0.1:8728 --user admin --password x`: the fake router as a
//! process, for tools that are not written in Rust. Prints `listening on ADDR`, then serves
//! until interrupted.

use std::net::SocketAddr;
use std::process::ExitCode;

use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};

const USAGE: &str = "usage: fake-routeros [--listen ADDR] [--user NAME] [--password PASSWORD]\n\
     defaults: --listen 127.0.0.1:8728 --user admin --password ''";

struct Args {
    listen: SocketAddr,
    config: FakeRouterConfig,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8728)),
        config: FakeRouterConfig::default(),
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        if !matches!(flag.as_str(), "--listen" | "--user" | "--password") {
            return Err(format!("unknown argument {flag}"));
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => {
                parsed.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?;
            }
            "--user" => parsed.config.username = value,
            _ => parsed.config.password = value,
        }
    }
    Ok(Some(parsed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fake-routeros: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let router = match FakeRouter::start_on(args.listen, args.config).await {
        Ok(router) => router,
        Err(e) => {
            eprintln!("fake-routeros: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    // Drivers wait for this line before connecting.
    println!("listening on {}", router.addr());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("fake-routeros: cannot wait for Ctrl-C: {e}");
    }
    router.stop().await;
    ExitCode::SUCCESS
}
