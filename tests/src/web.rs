//! A cookie-keeping client of the admin web UI for tests that need no browser (the role x
//! page matrix): signs in through the login form and posts forms with their CSRF token.

use crate::http::{Api, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A browser-like session of the admin UI over plain HTTP.
#[derive(Debug, Clone)]
pub struct WebClient {
    api: Api,
    cookies: BTreeMap<String, String>,
}

/// The value of the first `name="NAME" value="..."` in a page.
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker)?;
    let rest = &html[at + marker.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The admin UI's anti-forgery token: the first `_csrf` field of a page.
pub fn csrf_of(html: &str) -> Option<String> {
    form_field(html, "_csrf")
}

impl WebClient {
    /// A client without cookies.
    pub fn new(addr: SocketAddr) -> WebClient {
        WebClient {
            api: Api::new(addr),
            cookies: BTreeMap::new(),
        }
    }

    fn remember(&mut self, res: &Response) {
        for (name, value) in &res.headers {
            if name != "set-cookie" {
                continue;
            }
            let pair = value.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || value.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// GET a page (redirects are not followed).
    pub async fn get(&mut self, path: &str) -> Response {
        self.get_with(path, &[]).await
    }

    /// GET a page with extra headers.
    pub async fn get_with(&mut self, path: &str, extra: &[(&str, &str)]) -> Response {
        let cookie = self.cookie_header();
        let mut headers = vec![("Cookie", cookie.as_str()), ("Accept", "text/html")];
        headers.extend_from_slice(extra);
        let res = self
            .api
            .request_with_headers("GET", path, None, "", &headers)
            .await;
        self.remember(&res);
        res
    }

    /// A cookie this client holds.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name).cloned()
    }

    /// POST form fields as they are (the caller adds `_csrf` or leaves it out).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = form_encode(fields);
        let cookie = self.cookie_header();
        let origin = format!("http://{}", self.api.addr);
        let res = self
            .api
            .request_with_headers(
                "POST",
                path,
                Some(body.into_bytes()),
                "application/x-www-form-urlencoded",
                &[("Cookie", &cookie), ("Origin", &origin)],
            )
            .await;
        self.remember(&res);
        res
    }

    /// POST a `multipart/form-data` form as a browser sends it: the text fields in order
    /// (the caller puts `_csrf` where the page has it), then the file when one is given as
    /// (field name, file name, contents).
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &[u8])>,
    ) -> Response {
        let boundary = "----mikrobill-test-boundary-7f3a9c";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((name, filename, contents)) = file {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(contents);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let cookie = self.cookie_header();
        let origin = format!("http://{}", self.api.addr);
        let res = self
            .api
            .request_with_headers(
                "POST",
                path,
                Some(body),
                &format!("multipart/form-data; boundary={boundary}"),
                &[("Cookie", &cookie), ("Origin", &origin)],
            )
            .await;
        self.remember(&res);
        res
    }

    /// POST a form with the CSRF token of the page at `form_page`.
    pub async fn post_form(
        &mut self,
        form_page: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Response {
        let page = self.get(form_page).await;
        let token = csrf_of(&page.text).expect("the page has a form with a CSRF token");
        let mut all = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Signs in through the login form; panics unless it redirects.
    pub async fn login(addr: SocketAddr, username: &str, password: &str) -> WebClient {
        let mut c = WebClient::new(addr);
        let res = c
            .post_form(
                "/login",
                "/login",
                &[
                    ("username", username),
                    ("password", password),
                    ("next", "/"),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "login failed: {}", res.text);
        assert!(c.cookies.contains_key("mb_admin"));
        c
    }
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
