//! Values as people type them into forms and read them on pages: optional text, whole
//! numbers with grouping, short durations (`1d 2h`) and money in the page language's
//! separators. Pure; the page modules and `Ctx` share them.

/// A form or query value, `None` when empty.
pub fn opt(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A whole number typed into a form; empty is `None`, garbage an error naming the field.
pub fn number(v: &Option<String>, field: &str) -> Result<Option<i64>, String> {
    match opt(v) {
        None => Ok(None),
        Some(s) => s
            .replace(['.', ',', ' '], "")
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{field}: not a whole number")),
    }
}

/// How money is typed on a page: the ledger's decimal places and the page language's
/// separators (Indonesian `1.234,56`, English `1,234.56`).
#[derive(Debug, Clone, Copy)]
pub struct MoneyInput {
    /// Decimal places of the minor unit (0 for IDR).
    pub exponent: u32,
    /// The page's language.
    pub lang: mikrobill_core::locale::Lang,
}

impl MoneyInput {
    /// `minor` written the way [`MoneyInput::parse`] reads it back, for a form's value
    /// (`150000`, `1234.56`, `1234,56`; no grouping, no symbol).
    pub fn show(self, minor: i64) -> String {
        if self.exponent == 0 {
            return minor.to_string();
        }
        let scale = 10i128.pow(self.exponent);
        let m = i128::from(minor);
        let sign = if m < 0 { "-" } else { "" };
        let decimal = match self.lang {
            mikrobill_core::locale::Lang::Id => ',',
            mikrobill_core::locale::Lang::En => '.',
        };
        format!(
            "{sign}{}{decimal}{:0width$}",
            m.abs() / scale,
            m.abs() % scale,
            width = self.exponent as usize
        )
    }

    /// An amount typed into a form, in minor units; empty is `None`, garbage an error naming
    /// the field. Without minor units both separators only group digits (`150.000`).
    pub fn parse(self, v: &Option<String>, field: &str) -> Result<Option<i64>, String> {
        let Some(s) = opt(v) else {
            return Ok(None);
        };
        let bad = || format!("{field}: not an amount");
        if self.exponent == 0 {
            return number(&Some(s), field);
        }
        let (group, decimal) = match self.lang {
            mikrobill_core::locale::Lang::Id => ('.', ','),
            mikrobill_core::locale::Lang::En => (',', '.'),
        };
        let s = s.replace([group, ' '], "");
        let (whole, frac) = s.split_once(decimal).unwrap_or((&s, ""));
        if frac.len() > self.exponent as usize || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let padded = format!("{frac:0<width$}", width = self.exponent as usize);
        let frac: i64 = if padded.is_empty() {
            0
        } else {
            padded.parse().map_err(|_| bad())?
        };
        let scale = 10i64.checked_pow(self.exponent).ok_or_else(bad)?;
        whole
            .checked_mul(scale)
            .and_then(|w| {
                if w < 0 {
                    w.checked_sub(frac)
                } else {
                    w.checked_add(frac)
                }
            })
            .map(Some)
            .ok_or_else(bad)
    }
}

/// Seconds as a short duration (`1d 2h`, `30m`), which [`parse_duration`] reads back.
pub fn duration(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 || (parts.is_empty() && s == 0) {
        parts.push(format!("{m}m"));
    }
    if s > 0 {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

/// A duration typed as `1d 2h 30m 10s` (any of the parts, in any order; a bare number is
/// minutes) into seconds; empty is `None`.
pub fn parse_duration(v: &Option<String>, field: &str) -> Result<Option<u64>, String> {
    let Some(text) = opt(v) else {
        return Ok(None);
    };
    let bad = || format!("{field}: use e.g. 1d 2h 30m");
    let mut total: u64 = 0;
    for part in text.split_whitespace() {
        let (digits, unit) = match part.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => part.split_at(i),
            None => (part, "m"),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let scale = match unit {
            "d" => 86_400,
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(scale)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_accept_grouping_and_durations_read_well() {
        let idr = MoneyInput {
            exponent: 0,
            lang: mikrobill_core::locale::Lang::Id,
        };
        assert_eq!(
            idr.parse(&Some("150.000".into()), "price"),
            Ok(Some(150_000))
        );
        let usd = MoneyInput {
            exponent: 2,
            lang: mikrobill_core::locale::Lang::En,
        };
        assert_eq!(usd.parse(&Some("12.5".into()), "price"), Ok(Some(1250)));
        assert_eq!(
            usd.parse(&Some("1,234.56".into()), "price"),
            Ok(Some(123_456))
        );
        assert_eq!(usd.parse(&Some("7".into()), "price"), Ok(Some(700)));
        assert!(usd.parse(&Some("1.234".into()), "price").is_err());
        let eur_id = MoneyInput {
            exponent: 2,
            lang: mikrobill_core::locale::Lang::Id,
        };
        assert_eq!(
            eur_id.parse(&Some("1.234,5".into()), "price"),
            Ok(Some(123_450))
        );
        assert_eq!(number(&Some("150.000".into()), "price"), Ok(Some(150_000)));
        assert_eq!(number(&Some(" ".into()), "price"), Ok(None));
        assert!(number(&Some("abc".into()), "price").is_err());
        assert_eq!(duration(86_400 + 7200), "1d 2h");
        assert_eq!(duration(1800), "30m");
        assert_eq!(duration(0), "0m");
        assert_eq!(duration(90), "1m 30s");
        for secs in [60, 90, 3600, 86_400 + 7200 + 60, 7 * 86_400] {
            assert_eq!(
                parse_duration(&Some(duration(secs)), "v"),
                Ok(Some(secs as u64))
            );
        }
        assert_eq!(parse_duration(&Some("45".into()), "v"), Ok(Some(2700)));
        assert_eq!(parse_duration(&None, "v"), Ok(None));
        assert!(parse_duration(&Some("2 weeks".into()), "v").is_err());
    }
}
