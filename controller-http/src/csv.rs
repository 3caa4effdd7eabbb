//! CSV out of the controller: the quoting rule, small reports built in memory, and lists
//! streamed from the database in chunks as the rows arrive (a bounded channel between the
//! query and the response, so a slow client holds back the query instead of filling memory).

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use mikrobill_core::db::Db;
use mikrobill_core::exports::{Export, Kind};
use mikrobill_core::locale::dates::local;
use sqlx::Row;

/// Bytes gathered before a chunk is sent.
const CHUNK_BYTES: usize = 32 * 1024;
/// Chunks queued between the query and a slow client.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Appends one field: quoted when it holds a separator, quote or line break; a leading
/// `=`, `+`, `-`, `@`, tab or carriage return gets a `'` first, so a spreadsheet shows a name
/// like `=HYPERLINK(...)` typed into a form instead of running it. A plain number such as a
/// negative amount is left as it is: a spreadsheet reads it as a number, never a formula.
pub fn push_field(out: &mut String, value: &str) {
    let guarded = value.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_plain_number(value);
    let needs_quotes = guarded || value.contains([',', '"', '\n', '\r']);
    if needs_quotes {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if needs_quotes {
        out.push('"');
    }
}

/// An optionally signed run of digits with at most one decimal point.
fn is_plain_number(value: &str) -> bool {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Appends one record and its line break.
pub fn push_record<S: AsRef<str>>(out: &mut String, fields: impl IntoIterator<Item = S>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, f.as_ref());
    }
    out.push_str("\r\n");
}

/// Appends a number field (never guarded: `-5` is a number, not a formula).
fn push_int(out: &mut String, n: Option<i64>) {
    if let Some(n) = n {
        out.push_str(&n.to_string());
    }
}

fn headers(filename: &str) -> [(header::HeaderName, HeaderValue); 2] {
    let disposition = format!("attachment; filename=\"{filename}.csv\"");
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        ),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition)
                .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
        ),
    ]
}

/// A CSV answer built in memory (reports: a few hundred rows at most).
pub fn response(filename: &str, body: String) -> Response {
    (headers(filename), body).into_response()
}

/// Streams `export` for rows whose time is in `[from, to)`, times at the operator's offset.
/// A database error midway aborts the transfer, so a client never takes a cut-short file
/// for the whole list.
pub fn stream(db: Db, export: &'static Export, from: i64, to: i64, offset_min: i32) -> Response {
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_IN_FLIGHT);
    tokio::spawn(async move {
        let mut buf = String::with_capacity(CHUNK_BYTES + 1024);
        push_record(&mut buf, export.columns.iter().map(|(h, _)| *h));
        let sql = export.sql();
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from)
            .bind(to)
            .fetch(&db.pool);
        while let Some(row) = rows.next().await {
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(export = export.name, error = %e, "CSV export failed midway");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            };
            if let Err(e) = push_row(&mut buf, &row, export.columns, offset_min) {
                tracing::warn!(export = export.name, error = %e, "CSV export row unreadable");
                let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                return;
            }
            if buf.len() >= CHUNK_BYTES {
                let chunk = Bytes::from(std::mem::take(&mut buf));
                if tx.send(Ok(chunk)).await.is_err() {
                    // The client went away: stop reading.
                    return;
                }
            }
        }
        if !buf.is_empty() {
            let _ = tx.send(Ok(Bytes::from(buf))).await;
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (headers(export.name), Body::from_stream(body)).into_response()
}

fn push_row(
    out: &mut String,
    row: &sqlx::any::AnyRow,
    columns: &[(&str, Kind)],
    offset_min: i32,
) -> Result<(), sqlx::Error> {
    for (i, (_, kind)) in columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match kind {
            Kind::Text => push_field(
                out,
                &row.try_get::<Option<String>, _>(i)?.unwrap_or_default(),
            ),
            Kind::Int => push_int(out, row.try_get::<Option<i64>, _>(i)?),
            Kind::Time => {
                if let Some(ms) = row.try_get::<Option<i64>, _>(i)? {
                    out.push_str(&local(ms, offset_min, true));
                }
            }
        }
    }
    out.push_str("\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> String {
        let mut s = String::new();
        push_record(&mut s, fields.iter().copied());
        s
    }

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(record(&["a", "b c", ""]), "a,b c,\r\n");
        assert_eq!(
            record(&["a,b", "say \"hi\"", "x\ny"]),
            "\"a,b\",\"say \"\"hi\"\"\",\"x\ny\"\r\n"
        );
    }

    #[test]
    fn formulas_typed_into_forms_stay_text() {
        assert_eq!(record(&["=1+1"]), "\"'=1+1\"\r\n");
        assert_eq!(
            record(&["@SUM(A1)", "-2+3", "+62 812", "-"]),
            "\"'@SUM(A1)\",\"'-2+3\",\"'+62 812\",\"'-\"\r\n"
        );
        // Amounts stay numbers.
        assert_eq!(record(&["-1500", "+2", "-0.5"]), "-1500,+2,-0.5\r\n");
        let mut s = String::new();
        push_int(&mut s, Some(-5));
        assert_eq!(s, "-5");
    }
}
