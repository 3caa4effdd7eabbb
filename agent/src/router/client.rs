//! The only code that touches mikrotik-rs: connect and log in within a time limit, and run
//! one command with a time limit, collecting its rows.
//!
//! What mikrotik-rs 0.10 does not do, and how this file makes up for it:
//! - no connect or login timeout: the whole connect is wrapped in one;
//! - no per-command timeout: every call is wrapped in one, and the supervisor then drops the
//!   connection, since replies may still arrive on it for a command nobody waits for;
//! - it drops the `=ret=` word of `!done`, so the id of an item just added (and the number a
//!   `count-only` print answers) cannot be read: [`Client::add`] reads the id back with a
//!   `print` on a unique key, and counts are taken by printing `.id`s;
//! - on EOF its background task ends silently: a command then sees its receiver close (or the
//!   send fail) and reports [`RouterError::ConnectionLost`].

use super::{RouterError, Row};
use mikrotik_rs::{CommandBuilder, DeviceError, Event, LoginError, MikrotikDevice};
use std::time::Duration;

/// One logged-in API connection.
pub(crate) struct Client {
    device: MikrotikDevice,
    call_timeout: Duration,
}

impl Client {
    /// Connects to `addr` and logs in; both within `connect_timeout`.
    pub(crate) async fn connect(
        addr: &str,
        username: &str,
        password: &str,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<Client, RouterError> {
        let attempt = MikrotikDevice::connect(addr, username, Some(password));
        match tokio::time::timeout(connect_timeout, attempt).await {
            Ok(Ok(device)) => Ok(Client {
                device,
                call_timeout,
            }),
            Ok(Err(e)) => Err(connect_error(addr, username, e)),
            Err(_) => Err(RouterError::Connect {
                addr: addr.to_owned(),
                message: format!("no connection and login within {connect_timeout:?}"),
            }),
        }
    }

    /// Runs `path` with `=key=value` attributes and `?key=value` queries; the rows it
    /// returns, or the router's refusal.
    pub(crate) async fn call(
        &self,
        path: &str,
        attrs: &[(String, String)],
        queries: &[(String, String)],
    ) -> Result<Vec<Row>, RouterError> {
        let mut builder = CommandBuilder::new().command(path);
        for (k, v) in attrs {
            builder = builder.attribute(k, Some(v));
        }
        for (k, v) in queries {
            builder = builder.query_equal(k, v);
        }
        let command = builder.build();
        let lost = || RouterError::ConnectionLost {
            path: path.to_owned(),
        };
        let exchange = async {
            let mut events = self
                .device
                .send_command(command)
                .await
                .map_err(|_| lost())?;
            let mut rows = Vec::new();
            loop {
                match events.recv().await {
                    Some(Event::Reply { response, .. }) => {
                        let mut row = Row::new();
                        for (key, value) in response.attributes {
                            let value = match value {
                                Some(v) => v,
                                // Not UTF-8 (or empty): keep what can be shown.
                                None => response
                                    .attributes_raw
                                    .get(&key)
                                    .and_then(|raw| raw.as_deref())
                                    .map(|raw| String::from_utf8_lossy(raw).into_owned())
                                    .unwrap_or_default(),
                            };
                            row.insert(key, value);
                        }
                        rows.push(row);
                    }
                    Some(Event::Done { .. } | Event::Empty { .. }) => return Ok(rows),
                    Some(Event::Trap { response, .. }) => {
                        return Err(RouterError::Trap {
                            path: path.to_owned(),
                            message: response.message,
                        });
                    }
                    Some(Event::Fatal { reason }) => return Err(RouterError::Fatal(reason)),
                    None => return Err(lost()),
                }
            }
        };
        match tokio::time::timeout(self.call_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(RouterError::Timeout {
                path: path.to_owned(),
                after: self.call_timeout,
            }),
        }
    }

    /// Adds an item to `menu` and returns its `.id`, read back by `key` (whose value must
    /// be unique in the menu, like a name or our marker comment): mikrotik-rs drops `=ret=`.
    pub(crate) async fn add(
        &self,
        menu: &str,
        attrs: &[(String, String)],
        key: &str,
    ) -> Result<String, RouterError> {
        let print = format!("{menu}/print");
        let value = attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| RouterError::Unexpected {
                path: format!("{menu}/add"),
                message: format!("no {key} to read the new item back by"),
            })?;
        self.call(&format!("{menu}/add"), attrs, &[]).await?;
        let rows = self
            .call(
                &print,
                &[(".proplist".into(), ".id".into())],
                &[(key.to_owned(), value.clone())],
            )
            .await?;
        // The newest of several matches: ids only grow.
        rows.iter()
            .filter_map(|r| r.get(".id"))
            .max_by_key(|id| parse_id(id))
            .cloned()
            .ok_or_else(|| RouterError::Unexpected {
                path: print,
                message: format!("the item added with {key}={value:?} is not there"),
            })
    }
}

/// `*1A` → 26; unparsable ids sort first.
fn parse_id(id: &str) -> u64 {
    id.strip_prefix('*')
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(0)
}

fn connect_error(addr: &str, username: &str, e: DeviceError) -> RouterError {
    let connect = |message: String| RouterError::Connect {
        addr: addr.to_owned(),
        message,
    };
    match e {
        DeviceError::Login(LoginError::Authentication(trap))
        | DeviceError::Authentication { response: trap } => RouterError::Login {
            username: username.to_owned(),
            message: trap.message,
        },
        DeviceError::Login(LoginError::Fatal(reason)) => connect(format!(
            "the router ended the session during login: {reason}"
        )),
        DeviceError::ConnectionClosed => {
            connect("the router closed the connection before the login finished".into())
        }
        DeviceError::Connection(io) => connect(io.to_string()),
        other => connect(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_as_hex_numbers() {
        assert!(parse_id("*1A") > parse_id("*9"));
        assert_eq!(parse_id("junk"), 0);
    }
}
