//! The one-shot message a form leaves for the page it redirects to, carried in a cookie.

use base64::Engine;

/// The cookie carrying a message to the page a form redirects to.
pub const FLASH_COOKIE: &str = "mb_flash";

/// A one-shot message shown at the top of the next page.
#[derive(Debug, Clone)]
pub struct Flash {
    /// `ok` or `error`, used as the CSS class and ARIA role choice.
    pub kind: &'static str,
    /// The message.
    pub text: String,
}

impl Flash {
    /// The cookie value.
    pub(super) fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.kind,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.text.as_bytes())
        )
    }

    /// Reads a cookie value; `None` for anything this code did not write.
    pub(super) fn decode(v: &str) -> Option<Flash> {
        let (kind, text) = v.split_once('.')?;
        let kind = match kind {
            "ok" => "ok",
            "error" => "error",
            _ => return None,
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let text: String = String::from_utf8(bytes).ok()?.chars().take(500).collect();
        Some(Flash { kind, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_messages_round_trip_and_reject_garbage() {
        let f = Flash {
            kind: "error",
            text: "nama: wajib diisi; «ü»".into(),
        };
        let back = Flash::decode(&f.encode()).unwrap();
        assert_eq!((back.kind, back.text.as_str()), ("error", f.text.as_str()));
        assert!(Flash::decode("script.AAAA").is_none());
        assert!(Flash::decode("ok.%%%").is_none());
    }
}
