//! PHPNuxBill's customer CSV exports (Customers → Export: `id`, `username`, `fullname`,
//! `address`, `phonenumber`, `email`, `balance`, `service_type`, and in the prepaid export the
//! recharge's columns too) read as `tbl_customers` rows, so the same mapping as a database
//! dump decides what they become and a later dump import finds them already imported.
//!
//! PHPNuxBill writes every value between double quotes without escaping quotes inside it, and
//! older versions separate values with `;`. So the delimiter is taken from the header, and a
//! quote ends a value only where a delimiter or the end of the line follows it; RFC 4180's
//! doubled quote (`""`) is read as one quote as well, except right before the end of a value
//! (PHPNuxBill's `"Budi "Warnet""`), where RFC 4180 would have tripled it.

use super::mysqldump::{Dump, DumpError};
use std::collections::BTreeSet;
use std::io::BufRead;

/// The table the rows stand for.
pub const TABLE: &str = "tbl_customers";

/// Whether the start of a file (its first line) looks like a CSV export rather than SQL.
pub fn looks_like_csv(first_line: &str) -> bool {
    let line = first_line.trim_start_matches('\u{feff}').trim();
    let header: Vec<String> = split_record(line, delimiter_of(line))
        .map(|fields| {
            fields
                .into_iter()
                .map(|f| f.trim().to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    header.iter().any(|h| h == "username") && header.iter().any(|h| h == "id")
}

/// Reads a customer CSV export into `tbl_customers` rows. A file whose header lacks `id` or
/// `username`, or a line with another number of values than the header, is refused whole
/// with its line: such a file was not written by the export and nothing of it is imported.
/// A customer repeated on several lines (the prepaid export lists one line per recharge) is
/// taken once, from its first line.
pub fn read(input: impl BufRead) -> Result<Dump, DumpError> {
    let mut lines = input.lines().enumerate();
    let (header_line, header) = loop {
        let Some((n, line)) = lines.next() else {
            return Err(malformed(1, "the CSV file is empty"));
        };
        let line = line?;
        let line = line.trim_start_matches('\u{feff}').trim_end_matches('\r');
        if !line.trim().is_empty() {
            break (n as u64 + 1, line.to_string());
        }
    };
    let delimiter = delimiter_of(&header);
    let columns: Vec<String> = split_record(&header, delimiter)
        .ok_or_else(|| malformed(header_line, "the header has an unclosed quote"))?
        .into_iter()
        .map(|c| c.trim().to_lowercase())
        .collect();
    for wanted in ["id", "username"] {
        if !columns.iter().any(|c| c == wanted) {
            return Err(malformed(
                header_line,
                format!(
                    "the header has no `{wanted}` column: use PHPNuxBill's Customers → Export CSV"
                ),
            ));
        }
    }
    let id_at = columns.iter().position(|c| c == "id").unwrap_or(0);
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    let mut pending: Option<(u64, String)> = None;
    for (n, line) in lines {
        let mut line = line?;
        if line.contains('\0') {
            return Err(malformed(
                n as u64 + 1,
                "holds a NUL character: a CSV export is text",
            ));
        }
        // Files saved again by a spreadsheet end their lines with CR LF.
        if line.ends_with('\r') {
            line.pop();
        }
        let (start, text) = match pending.take() {
            Some((start, mut text)) => {
                text.push('\n');
                text.push_str(&line);
                (start, text)
            }
            None if line.trim().is_empty() => continue,
            None => (n as u64 + 1, line),
        };
        let Some(fields) = split_record(&text, delimiter) else {
            // A quoted value holds a line break: the record goes on on the next line.
            pending = Some((start, text));
            continue;
        };
        if fields.len() != columns.len() {
            return Err(malformed(
                start,
                format!(
                    "{} values where the header names {} columns",
                    fields.len(),
                    columns.len()
                ),
            ));
        }
        let values: Vec<Option<String>> = fields
            .into_iter()
            .map(|f| Some(f).filter(|f| !f.trim().is_empty()))
            .collect();
        let id = values[id_at].clone().unwrap_or_default();
        if seen.insert(id) {
            rows.push((start, values));
        }
    }
    if let Some((start, _)) = pending {
        return Err(malformed(
            start,
            "a quoted value never ends: is the file cut short?",
        ));
    }
    Ok(Dump::from_table(TABLE, columns, rows))
}

fn malformed(line: u64, message: impl Into<String>) -> DumpError {
    DumpError::Malformed {
        line,
        message: message.into(),
    }
}

/// `;` when the header separates its names with it (older PHPNuxBill), else `,`.
fn delimiter_of(header: &str) -> char {
    let outside_quotes = |d: char| {
        let mut quoted = false;
        header
            .chars()
            .filter(|&c| {
                if c == '"' {
                    quoted = !quoted;
                }
                !quoted && c == d
            })
            .count()
    };
    if outside_quotes(';') > outside_quotes(',') {
        ';'
    } else {
        ','
    }
}

fn skip_spaces(chars: &[char], mut at: usize) -> usize {
    while at < chars.len() && chars[at] == ' ' {
        at += 1;
    }
    at
}

/// Whether a value ends at `at`: only spaces before a delimiter or the end of the record.
fn ends_value(chars: &[char], at: usize, delimiter: char) -> bool {
    let at = skip_spaces(chars, at);
    at == chars.len() || chars[at] == delimiter
}

/// The values of one record, or `None` when a quoted value is still open at the end.
fn split_record(text: &str, delimiter: char) -> Option<Vec<String>> {
    let chars: Vec<char> = text.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut value = String::new();
        // Spaces before an opening quote are not part of the value.
        let j = skip_spaces(&chars, i);
        if chars.get(j) == Some(&'"') {
            i = j + 1;
            loop {
                match chars.get(i) {
                    None => return None,
                    // A doubled quote is one quote, unless the value ends right after it:
                    // PHPNuxBill writes `"Budi "Warnet""` for a name ending in a quote.
                    Some('"')
                        if chars.get(i + 1) == Some(&'"')
                            && !ends_value(&chars, i + 2, delimiter) =>
                    {
                        value.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        if ends_value(&chars, i + 1, delimiter) {
                            i = skip_spaces(&chars, i + 1);
                            break;
                        }
                        // A quote inside the value, as PHPNuxBill writes it unescaped.
                        value.push('"');
                        i += 1;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && chars[i] != delimiter {
                value.push(chars[i]);
                i += 1;
            }
            value = value.trim().to_string();
        }
        fields.push(value);
        if i >= chars.len() {
            return Some(fields);
        }
        i += 1; // the delimiter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Dump {
        read(std::io::Cursor::new(text.to_string())).expect("readable")
    }

    #[test]
    fn reads_the_current_export_with_quotes_left_unescaped() {
        let dump = rows(concat!(
            "\u{feff}\"id\",\"username\",\"fullname\",\"address\",\"phonenumber\",\"email\",\"balance\",\"service_type\"\n",
            "\"1\",\"budi\",\"Budi \"Bos\" Santoso\",\"Jl. Mawar 1, RT 2\",\"08123\",\"budi@example.net\",\"15000.00\",\"PPPoE\"\n",
            "\n",
            "\"2\",\"sari\",\"Sari\",\"\",\"0\",\"1\",\"0.00\",\"Hotspot\"\n",
        ));
        let r = dump.rows(TABLE);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].line, 2);
        assert_eq!(r[0].get("fullname"), Some("Budi \"Bos\" Santoso"));
        assert_eq!(r[0].get("address"), Some("Jl. Mawar 1, RT 2"));
        assert_eq!(r[0].get("balance"), Some("15000.00"));
        assert_eq!(r[1].line, 4);
        assert_eq!(r[1].get("address"), None, "an empty value is absent");
    }

    #[test]
    fn reads_the_older_semicolon_export_once_per_customer() {
        let dump = rows(concat!(
            "\"id\";\"username\";\"fullname\";\"phonenumber\";\"email\";\"balance\";\"namebp\";\"routers\";\"status\";\"Payment\"\n",
            "\"7\";\"andi\";\"Andi\";\"0812\";\"\";\"0\";\"10M\";\"Pusat\";\"on\";\"Cash\"\n",
            "\"7\";\"andi\";\"Andi\";\"0812\";\"\";\"0\";\"Voucher 1d\";\"Pusat\";\"off\";\"Cash\"\n",
        ));
        let r = dump.rows(TABLE);
        assert_eq!(r.len(), 1, "one customer, listed once per recharge");
        assert_eq!(r[0].get("namebp"), Some("10M"));
    }

    #[test]
    fn a_quoted_line_break_continues_the_record() {
        let dump = rows("id,username,address\n3,\"rina\",\"Blok A\nNo. 4\"\n4,dewi,x\n");
        let r = dump.rows(TABLE);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].get("address"), Some("Blok A\nNo. 4"));
        assert_eq!(r[1].line, 4);
        assert_eq!(r[1].get("username"), Some("dewi"));
    }

    #[test]
    fn crlf_line_ends_are_read() {
        let dump = rows("\"id\",\"username\"\r\n\"1\",\"a\"\r\n\"2\",\"b\"\r\n");
        let r = dump.rows(TABLE);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].get("username"), Some("b"));
    }

    #[test]
    fn doubled_quotes_are_one_quote() {
        let dump = rows("id,username,fullname\n1,a,\"say \"\"hi\"\"\"\n");
        assert_eq!(dump.rows(TABLE)[0].get("fullname"), Some("say \"hi\""));
        let dump = rows("id,username,fullname,x\n1,a,\"Budi \"Warnet\"\",\"y\"\n");
        assert_eq!(dump.rows(TABLE)[0].get("fullname"), Some("Budi \"Warnet\""));
        assert_eq!(dump.rows(TABLE)[0].get("x"), Some("y"));
    }

    #[test]
    fn broken_files_are_refused_with_the_line() {
        let err = |text: &str| {
            read(std::io::Cursor::new(text.to_string()))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(""), "line 1: the CSV file is empty");
        assert!(err("username,fullname\nbudi,Budi\n").contains("no `id` column"));
        assert_eq!(
            err("id,username\n1,a\n2,b,extra\n"),
            "line 3: 3 values where the header names 2 columns"
        );
        assert_eq!(
            err("id,username\n1,\"a\n"),
            "line 2: a quoted value never ends: is the file cut short?"
        );
    }

    #[test]
    fn csv_and_sql_are_told_apart_by_the_first_line() {
        assert!(looks_like_csv("\"id\",\"username\",\"fullname\""));
        assert!(looks_like_csv("\u{feff}id;username"));
        assert!(!looks_like_csv("-- MySQL dump 10.13"));
        assert!(!looks_like_csv("/*!40101 SET NAMES utf8mb4 */;"));
        assert!(!looks_like_csv(
            "INSERT INTO `tbl_customers` (`id`, `username`) VALUES"
        ));
        assert!(!looks_like_csv("username,fullname"));
    }
}
