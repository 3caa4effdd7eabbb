//! Money as people read it: the currency's symbol, grouped digits, and the locale's
//! separators (Indonesian groups with `.` and marks decimals with `,`; English the other way).
//! IDR, billed without minor units in Indonesia, shows no decimals.

use super::Lang;

/// Formats `minor` units of `currency` with `exponent` decimal places for `lang`, e.g.
/// `Rp 150.000` (Indonesian) or `Rp 150,000` (English).
pub fn format_money(minor: i64, currency: &str, exponent: u32, lang: Lang) -> String {
    let (group, decimal) = match lang {
        Lang::Id => ('.', ','),
        Lang::En => (',', '.'),
    };
    let scale = 10u128.pow(exponent.min(18));
    let magnitude = (minor as i128).unsigned_abs();
    let whole = magnitude / scale;
    let fraction = magnitude % scale;
    let mut digits = group_digits(whole, group);
    if exponent > 0 {
        digits.push(decimal);
        digits.push_str(&format!(
            "{:0width$}",
            fraction,
            width = exponent.min(18) as usize
        ));
    }
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{} {digits}", symbol(currency))
}

/// The symbol printed before the amount; the ISO code itself when it has no common symbol.
fn symbol(currency: &str) -> &str {
    match currency {
        "IDR" => "Rp",
        "USD" => "US$",
        "EUR" => "€",
        "MYR" => "RM",
        "SGD" => "S$",
        "PHP" => "₱",
        other => other,
    }
}

fn group_digits(value: u128, group: char) -> String {
    let plain = value.to_string();
    let mut out = String::with_capacity(plain.len() + plain.len() / 3);
    for (i, c) in plain.chars().enumerate() {
        if i > 0 && (plain.len() - i).is_multiple_of(3) {
            out.push(group);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupiah_has_no_decimals_and_locale_grouping() {
        assert_eq!(format_money(150_000, "IDR", 0, Lang::Id), "Rp 150.000");
        assert_eq!(format_money(150_000, "IDR", 0, Lang::En), "Rp 150,000");
        assert_eq!(
            format_money(1_234_567_890, "IDR", 0, Lang::Id),
            "Rp 1.234.567.890"
        );
        assert_eq!(format_money(0, "IDR", 0, Lang::Id), "Rp 0");
        assert_eq!(format_money(-5_500, "IDR", 0, Lang::Id), "-Rp 5.500");
        assert_eq!(format_money(999, "IDR", 0, Lang::En), "Rp 999");
    }

    #[test]
    fn currencies_with_minor_units_show_them() {
        assert_eq!(format_money(123_456, "USD", 2, Lang::En), "US$ 1,234.56");
        assert_eq!(format_money(123_456, "USD", 2, Lang::Id), "US$ 1.234,56");
        assert_eq!(format_money(5, "XYZ", 2, Lang::En), "XYZ 0.05");
        assert_eq!(
            format_money(i64::MIN, "IDR", 0, Lang::En),
            "-Rp 9,223,372,036,854,775,808"
        );
    }
}
