//! E-mail over SMTP (lettre): STARTTLS that must succeed, implicit TLS, or plain for a local
//! relay. A permanent SMTP refusal (5xx) is final; anything else is retried.

use super::{Outgoing, SendError};
use crate::notify::channels::{ChannelConfig, SmtpSecurity};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

fn permanent(detail: String) -> SendError {
    SendError::Permanent {
        status: None,
        detail,
    }
}

/// Sends a plain-text e-mail.
pub async fn send(
    config: &ChannelConfig,
    msg: &Outgoing<'_>,
    timeout: Duration,
) -> Result<Option<u16>, SendError> {
    let ChannelConfig::Smtp {
        host,
        port,
        security,
        username,
        password,
        from,
        ca_pem,
        ..
    } = config
    else {
        unreachable!("dispatched by kind")
    };
    let from: Mailbox = from
        .parse()
        .map_err(|e| permanent(format!("sender address: {e}")))?;
    let to: Mailbox = msg
        .to
        .parse()
        .map_err(|e| permanent(format!("recipient address {:?}: {e}", msg.to)))?;
    let domain = from.email.domain().to_string();
    let email = Message::builder()
        .from(from)
        .to(to)
        .subject(msg.subject)
        // The message id is stable across resends, so a mail system can spot a duplicate.
        .message_id(Some(format!("<{}@{}>", msg.id, domain)))
        .header(ContentType::TEXT_PLAIN)
        .body(msg.text.to_string())
        .map_err(|e| permanent(format!("cannot build the e-mail: {e}")))?;

    let tls = || -> Result<TlsParameters, SendError> {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(pem) = ca_pem {
            let cert = Certificate::from_pem(pem.as_bytes())
                .map_err(|e| permanent(format!("ca_pem: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls()
            .map_err(|e| permanent(format!("TLS settings: {e}")))
    };
    let tls = match security {
        SmtpSecurity::Starttls => Tls::Required(tls()?),
        SmtpSecurity::Tls => Tls::Wrapper(tls()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(*port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some(user) = username {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.clone().unwrap_or_default(),
        ));
    }
    let transport = builder.build();
    match transport.send(email).await {
        Ok(response) => Ok(Some(u16::from(response.code()))),
        Err(e) => {
            let status = e.status().map(u16::from);
            let detail = format!("SMTP: {e}");
            // A refused login is the channel's fault, not the message's: keep the queue.
            let auth = matches!(status, Some(530 | 534 | 535));
            if e.is_permanent() && !auth {
                Err(SendError::Permanent { status, detail })
            } else {
                Err(SendError::Retryable { status, detail })
            }
        }
    }
}
