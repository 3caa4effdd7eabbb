//! The link to the controller: connect with mutual TLS, run a session, and reconnect for
//! ever with backoff. Nothing here is on the RADIUS path: the agent serves from its cache
//! whatever the link does.

mod accounting;
mod commands;
mod session;

use crate::reconnect::Reconnect;

use crate::cache::Cache;
use crate::identity::Identity;
use crate::outbox::Outbox;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What the link is doing, for status and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Trying to connect.
    Connecting,
    /// Session up.
    Connected {
        /// The site name the controller confirmed.
        site_name: String,
    },
    /// Lost or never reached; will retry.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// The controller refused this agent (revoked, unknown, incompatible); retrying slowly.
    Refused {
        /// Why.
        reason: String,
    },
}

/// What a session needs.
pub(crate) struct UplinkContext {
    pub identity: Identity,
    pub controller_addr: String,
    pub cache: Arc<Cache>,
    pub outbox: Arc<Outbox>,
    pub commands: Arc<crate::commands::Applier>,
    /// The managed router's state, reported to controllers that understand it.
    pub router_state: Option<watch::Receiver<crate::router::RouterState>>,
    pub link: watch::Sender<LinkState>,
    pub reconnect_max: Duration,
    pub started: Instant,
}

/// Runs sessions until `shutdown` turns true.
pub(crate) async fn run(ctx: Arc<UplinkContext>, mut shutdown: watch::Receiver<bool>) {
    let mut pacing = Reconnect::new(ctx.reconnect_max);
    loop {
        ctx.link.send_replace(LinkState::Connecting);
        let end = tokio::select! {
            end = session::run(&ctx) => end,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let delay = match end {
            session::End::Lost { was_up, reason } => {
                if was_up {
                    pacing.reset();
                    tracing::warn!("controller link lost: {reason}");
                } else {
                    tracing::warn!(
                        "cannot connect to the controller at {}: {reason}",
                        ctx.controller_addr
                    );
                }
                ctx.link.send_replace(LinkState::Disconnected { reason });
                pacing.next_delay()
            }
            session::End::Refused(reason) => {
                tracing::error!("the controller refused this agent: {reason}");
                ctx.link.send_replace(LinkState::Refused { reason });
                pacing.max_delay()
            }
        };
        tracing::debug!(?delay, "reconnecting after delay");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
