//! The HTTP client every gateway's API is called with: one timeout, a bounded answer, and
//! errors that never carry a URL (they may hold an order id) or a key.

use serde_json::Value;
use std::time::Duration;

/// How long a gateway call may take before it counts as unavailable.
const TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer read from a gateway; status and create answers are a few KiB.
const MAX_ANSWER: usize = 1 << 20;

/// A gateway's API at one base URL.
pub(crate) struct ApiClient {
    client: reqwest::Client,
    base_url: String,
}

/// A gateway's answer: the HTTP status and the body as JSON (`Null` when it is not JSON).
pub(crate) struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl ApiClient {
    /// A client for `base_url` (no trailing slash needed). The process's rustls crypto
    /// provider must be installed first.
    pub(super) fn new(base_url: &str) -> Result<ApiClient, String> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(ApiClient {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
        })
    }

    /// The base URL, for `Debug` output.
    pub(super) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET {base}{path}` with an `Authorization` header.
    pub(super) async fn get(&self, path: &str, authorization: &str) -> Result<Answer, String> {
        let request = self
            .client
            .get(format!("{}{path}", self.base_url))
            .header("Authorization", authorization)
            .header("Accept", "application/json");
        send(request).await
    }

    /// `POST {base}{path}` with a JSON body and an `Authorization` header.
    pub(super) async fn post(
        &self,
        path: &str,
        authorization: &str,
        body: &Value,
    ) -> Result<Answer, String> {
        let request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("Authorization", authorization)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body.to_string());
        send(request).await
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let mut response = request
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("answer larger than {MAX_ANSWER} bytes"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

/// An order id as one URL path segment: everything but unreserved characters escaped.
pub(crate) fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// HTTP Basic authorization with `user` and an empty password (Midtrans, Xendit).
pub(crate) fn basic(user: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:"))
    )
}

/// Why a gateway refused to create a payment page: a busy or failing gateway (5xx, 429) may
/// work later, anything else needs the request or the configuration changed.
pub(crate) fn link_refusal(status: u16, why: String) -> super::LinkError {
    if status >= 500 || status == 429 {
        super::LinkError::Unavailable(why)
    } else {
        super::LinkError::Refused(why)
    }
}

/// The payment page in a gateway's answer, at `url` (the field is named in the error).
pub(crate) fn payment_link(
    url: &serde_json::Value,
    field: &str,
) -> Result<super::PaymentLink, super::LinkError> {
    redirect_url(url.as_str())
        .map(|redirect_url| super::PaymentLink { redirect_url })
        .ok_or_else(|| super::LinkError::Unavailable(format!("answer has no {field}")))
}

/// A redirect URL fit for a `Location` header: absolute http(s), visible ASCII only.
pub(crate) fn redirect_url(url: Option<&str>) -> Option<String> {
    url.filter(|u| {
        (u.starts_with("https://") || u.starts_with("http://"))
            && u.bytes().all(|b| b.is_ascii_graphic())
    })
    .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_urls_must_be_absolute_and_visible() {
        assert_eq!(
            redirect_url(Some("https://pay.example/x")).as_deref(),
            Some("https://pay.example/x")
        );
        assert_eq!(redirect_url(Some("javascript:alert(1)")), None);
        assert_eq!(redirect_url(Some("https://a\r\nSet-Cookie: x")), None);
        assert_eq!(redirect_url(None), None);
    }

    #[test]
    fn order_ids_are_escaped_in_the_path() {
        assert_eq!(path_segment("INV-2026-000001~ab"), "INV-2026-000001~ab");
        assert_eq!(path_segment("a/../b?c"), "a%2F..%2Fb%3Fc");
    }

    #[test]
    fn basic_has_an_empty_password() {
        assert_eq!(basic("key"), "Basic a2V5Og==");
    }
}
