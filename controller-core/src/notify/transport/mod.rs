//! Sending one message through a channel's gateway. Each gateway's wire format lives in its
//! own file; this module classifies failures the same way for all of them: timeouts,
//! connection errors, 408, 429 and 5xx are worth retrying, and so are 401 and 407, which say
//! the channel's credentials are wrong (the operator fixes them, the queue waits); any other
//! refusal is about the message itself and final.
//! Error texts never contain a URL, because some gateways (Telegram) carry the token in it.

pub mod http;
pub mod smtp;
pub mod telegram;
pub mod whatsapp;

use super::channels::ChannelConfig;
use std::time::Duration;

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// Stable message id: sent as `Idempotency-Key` (HTTP) or in the Message-ID (e-mail) so a
    /// gateway that keeps them can drop a resend after a crash.
    pub id: &'a str,
    /// Address on the channel.
    pub to: &'a str,
    /// Subject line (e-mail).
    pub subject: &'a str,
    /// Text.
    pub text: &'a str,
}

/// Why a send failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later.
    #[error("{detail}")]
    Retryable {
        /// HTTP status, if the gateway answered.
        status: Option<u16>,
        /// What went wrong.
        detail: String,
    },
    /// The gateway refused the message; sending it again would not help.
    #[error("{detail}")]
    Permanent {
        /// HTTP status, if the gateway answered.
        status: Option<u16>,
        /// What went wrong.
        detail: String,
    },
}

impl SendError {
    /// The gateway's HTTP status, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            SendError::Retryable { status, .. } | SendError::Permanent { status, .. } => *status,
        }
    }
}

/// Sends `msg` through `config`; the HTTP status of the accepting answer, if any.
pub async fn send(
    client: &reqwest::Client,
    config: &ChannelConfig,
    msg: &Outgoing<'_>,
    timeout: Duration,
) -> Result<Option<u16>, SendError> {
    match config {
        ChannelConfig::WhatsappCloud { .. } => whatsapp::send(client, config, msg, timeout).await,
        ChannelConfig::Http { .. } => http::send(client, config, msg, timeout).await,
        ChannelConfig::Telegram { .. } => telegram::send(client, config, msg, timeout).await,
        ChannelConfig::Smtp { .. } => smtp::send(config, msg, timeout).await,
    }
}

/// Puts a JSON body on a request.
pub(crate) fn json(
    request: reqwest::RequestBuilder,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

/// Sends a prepared request and classifies the answer.
pub(crate) async fn execute(request: reqwest::RequestBuilder) -> Result<Option<u16>, SendError> {
    execute_expecting(request, None).await
}

/// [`execute`], where a 2xx answer counts as accepted only if its body contains `success`
/// (gateways that answer 200 with `{"status":false}`).
pub(crate) async fn execute_expecting(
    request: reqwest::RequestBuilder,
    success: Option<&str>,
) -> Result<Option<u16>, SendError> {
    let response = request.send().await.map_err(|e| SendError::Retryable {
        status: None,
        detail: format!("gateway unreachable: {}", e.without_url()),
    })?;
    let status = response.status();
    let code = status.as_u16();
    // The start of the gateway's answer helps an operator see why; bounded so a chatty gateway
    // cannot bloat the attempt log.
    let body = response.text().await.unwrap_or_default();
    let snippet: String = body.chars().take(300).collect();
    if status.is_success() {
        return match success {
            Some(marker) if !body.contains(marker) => Err(SendError::Permanent {
                status: Some(code),
                detail: format!("gateway answered {code} without {marker:?}: {snippet}"),
            }),
            _ => Ok(Some(code)),
        };
    }
    let detail = format!("gateway answered {code}: {snippet}");
    if matches!(code, 401 | 407 | 408 | 429) || status.is_server_error() {
        Err(SendError::Retryable {
            status: Some(code),
            detail,
        })
    } else {
        Err(SendError::Permanent {
            status: Some(code),
            detail,
        })
    }
}
