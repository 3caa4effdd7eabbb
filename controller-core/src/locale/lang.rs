//! The two languages the front ends speak: Indonesian (the default for an Indonesian ISP)
//! and English.

use serde::{Deserialize, Serialize};

/// A user-facing language.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum Lang {
    /// Bahasa Indonesia.
    #[default]
    #[serde(rename = "id")]
    Id,
    /// English.
    #[serde(rename = "en")]
    En,
}

impl Lang {
    /// Both languages, in the order a language switcher lists them.
    pub const ALL: [Lang; 2] = [Lang::Id, Lang::En];

    /// The BCP 47 code, for `<html lang>` and storage.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    /// Parses a stored or submitted code (`id`, `en`, also `in`, the old code for Indonesian).
    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next().unwrap_or("");
        match primary.to_ascii_lowercase().as_str() {
            "id" | "in" => Some(Lang::Id),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header: the highest-weighted range we
    /// speak, `None` when it names neither (the caller then uses the operator's default).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(u16, usize, Lang)> = None;
        for (pos, item) in header.split(',').enumerate() {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim();
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map(parse_weight)
                .unwrap_or(1000);
            let Some(lang) = Lang::parse(range) else {
                continue;
            };
            if weight == 0 {
                continue;
            }
            // Ties keep the earlier range, as the header lists preferences in order.
            let better = match best {
                None => true,
                Some((w, p, _)) => weight > w || (weight == w && pos < p),
            };
            if better {
                best = Some((weight, pos, lang));
            }
        }
        best.map(|(_, _, lang)| lang)
    }
}

/// A quality value `0.xyz` in thousandths; garbage counts as 0 so it never wins.
fn parse_weight(q: &str) -> u16 {
    let q = q.trim();
    let Ok(value) = q.parse::<f32>() else {
        return 0;
    };
    if !(0.0..=1.0).contains(&value) {
        return 0;
    }
    (value * 1000.0).round() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_weighted_language_we_speak() {
        assert_eq!(
            Lang::from_accept_language("id-ID,id;q=0.9,en;q=0.8"),
            Some(Lang::Id)
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,id;q=0.5"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("fr, en;q=0.3, id;q=0.7"),
            Some(Lang::Id)
        );
        assert_eq!(Lang::from_accept_language("de, fr"), None);
        assert_eq!(
            Lang::from_accept_language("en;q=0, id;q=0.1"),
            Some(Lang::Id)
        );
        assert_eq!(Lang::from_accept_language("en;q=banana"), None);
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn codes_round_trip() {
        for lang in Lang::ALL {
            assert_eq!(Lang::parse(lang.code()), Some(lang));
        }
        assert_eq!(Lang::parse("in"), Some(Lang::Id));
        assert_eq!(Lang::parse("xx"), None);
    }
}
