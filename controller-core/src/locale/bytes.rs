//! Data amounts as people read them: decimal units, one decimal place, the language's
//! decimal mark (`1,5 GB` in Indonesian, `1.5 GB` in English).

use super::Lang;

/// Formats a byte count.
pub fn format_bytes(bytes: i64, lang: Lang) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let text = if unit == 0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    };
    let text = match lang {
        Lang::Id => text.replace('.', ","),
        Lang::En => text,
    };
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_use_decimal_units_and_the_languages_mark() {
        assert_eq!(format_bytes(999, Lang::En), "999 B");
        assert_eq!(format_bytes(1_500_000_000, Lang::Id), "1,5 GB");
        assert_eq!(format_bytes(1_500_000_000, Lang::En), "1.5 GB");
        assert_eq!(format_bytes(-3, Lang::En), "0 B");
        assert_eq!(format_bytes(i64::MAX, Lang::En), "9223372.0 TB");
    }
}
