//! A reader of the data in a `mysqldump` (or phpMyAdmin) SQL file, so an import needs no
//! MySQL server: `CREATE TABLE` gives each table's column order and `INSERT INTO` statements
//! (one or many rows, with or without a column list) give the rows. The file is read line by
//! line and only the wanted tables' rows are kept, so a large dump is never held whole.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::sync::Arc;

/// Why a dump could not be read; nothing of it should be imported.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The file could not be read.
    #[error("reading the dump: {0}")]
    Io(#[from] std::io::Error),
    /// A statement is not what mysqldump writes.
    #[error("line {line}: {message}")]
    Malformed {
        /// The line the statement starts on (1-based).
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// One row of a table, with the line its values start on.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The line of the dump the row's `(` is on (1-based).
    pub line: u64,
    columns: Arc<Vec<String>>,
    values: Vec<Option<String>>,
}

impl Row {
    /// The value of a column: `None` when the column is absent or SQL `NULL`.
    pub fn get(&self, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.values[i].as_deref()
    }
}

/// The rows of the wanted tables, in dump order.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    tables: BTreeMap<String, Vec<Row>>,
}

impl Dump {
    /// The rows of a table (empty when the dump has none).
    pub fn rows(&self, table: &str) -> &[Row] {
        self.tables.get(table).map(Vec::as_slice).unwrap_or(&[])
    }

    /// One table's rows read from another format (a CSV export): each with its line and
    /// one value per column.
    pub fn from_table(
        table: &str,
        columns: Vec<String>,
        rows: Vec<(u64, Vec<Option<String>>)>,
    ) -> Dump {
        let columns = Arc::new(columns);
        let rows = rows
            .into_iter()
            .map(|(line, values)| Row {
                line,
                columns: Arc::clone(&columns),
                values,
            })
            .collect();
        Dump {
            tables: BTreeMap::from([(table.to_string(), rows)]),
        }
    }
}

/// Reads a dump, keeping the rows of the tables named in `wanted`.
pub fn read(input: impl BufRead, wanted: &[&str]) -> Result<Dump, DumpError> {
    let wanted: BTreeSet<&str> = wanted.iter().copied().collect();
    let mut columns: BTreeMap<String, Arc<Vec<String>>> = BTreeMap::new();
    let mut dump = Dump::default();
    let mut splitter = Splitter::default();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.contains('\0') {
            return Err(malformed(
                n as u64 + 1,
                "holds a NUL character: a dump is text",
            ));
        }
        for (start, stmt) in splitter.feed(n as u64 + 1, &line) {
            handle(&stmt, start, &wanted, &mut columns, &mut dump)?;
        }
    }
    if let Some(start) = splitter.open_statement() {
        return Err(DumpError::Malformed {
            line: start,
            message: "the statement never ends (no ';'): is the dump cut short?".into(),
        });
    }
    Ok(dump)
}

/// Statement text with the line each of its characters came from.
type Statement = Vec<(char, u64)>;

/// Cuts the input into statements at `;` outside quotes, dropping comments.
#[derive(Default)]
struct Splitter {
    current: Statement,
    quote: Option<char>,
    escaped: bool,
    in_block_comment: bool,
}

impl Splitter {
    fn open_statement(&self) -> Option<u64> {
        self.current
            .iter()
            .find(|(c, _)| !c.is_whitespace())
            .map(|&(_, l)| l)
    }

    fn feed(&mut self, line_no: u64, line: &str) -> Vec<(u64, Statement)> {
        let mut done = Vec::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if self.in_block_comment {
                if c == '*' && chars.get(i + 1) == Some(&'/') {
                    self.in_block_comment = false;
                    i += 1;
                }
                i += 1;
                continue;
            }
            if let Some(q) = self.quote {
                self.current.push((c, line_no));
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' && q != '`' {
                    self.escaped = true;
                } else if c == q {
                    self.quote = None;
                }
                i += 1;
                continue;
            }
            match c {
                '\'' | '"' | '`' => {
                    self.quote = Some(c);
                    self.current.push((c, line_no));
                }
                // `-- ` and `#` comment out the rest of the line.
                '-' if chars.get(i + 1) == Some(&'-')
                    && chars.get(i + 2).is_none_or(|c| c.is_whitespace()) =>
                {
                    break;
                }
                '#' => break,
                // `/*!40101 SET ... */` are conditional statements for MySQL; none carries data.
                '/' if chars.get(i + 1) == Some(&'*') => {
                    self.in_block_comment = true;
                    i += 1;
                }
                ';' => {
                    let stmt = std::mem::take(&mut self.current);
                    if let Some(&(_, start)) = stmt.iter().find(|(c, _)| !c.is_whitespace()) {
                        done.push((start, stmt));
                    }
                }
                _ => self.current.push((c, line_no)),
            }
            i += 1;
        }
        // A string may hold a line break when the dump was not written with escapes.
        if self.quote.is_some() || !self.current.is_empty() {
            self.current.push(('\n', line_no));
        }
        done
    }
}

fn handle(
    stmt: &Statement,
    start: u64,
    wanted: &BTreeSet<&str>,
    columns: &mut BTreeMap<String, Arc<Vec<String>>>,
    dump: &mut Dump,
) -> Result<(), DumpError> {
    let mut t = Tokens { s: stmt, i: 0 };
    t.skip_ws();
    let first = t.word().to_ascii_uppercase();
    match first.as_str() {
        "CREATE" => {
            t.skip_ws();
            if !t.word().eq_ignore_ascii_case("TABLE") {
                return Ok(());
            }
            let name = t.table_name(start)?;
            if wanted.contains(name.as_str()) {
                let cols = create_columns(&mut t, start)?;
                columns.insert(name, Arc::new(cols));
            }
            Ok(())
        }
        "INSERT" | "REPLACE" => {
            t.skip_ws();
            let mut w = t.word().to_ascii_uppercase();
            while matches!(
                w.as_str(),
                "IGNORE" | "LOW_PRIORITY" | "DELAYED" | "HIGH_PRIORITY"
            ) {
                t.skip_ws();
                w = t.word().to_ascii_uppercase();
            }
            if w != "INTO" && first == "INSERT" {
                return Err(malformed(t.line(start), "expected INTO after INSERT"));
            }
            let name = if w == "INTO" {
                t.table_name(start)?
            } else {
                return Err(malformed(t.line(start), "expected INTO"));
            };
            if !wanted.contains(name.as_str()) {
                return Ok(());
            }
            insert_rows(&mut t, start, &name, columns, dump)
        }
        _ => Ok(()),
    }
}

fn malformed(line: u64, message: impl Into<String>) -> DumpError {
    DumpError::Malformed {
        line,
        message: message.into(),
    }
}

struct Tokens<'a> {
    s: &'a Statement,
    i: usize,
}

impl Tokens<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).map(|&(c, _)| c)
    }

    fn line(&self, start: u64) -> u64 {
        self.s
            .get(self.i)
            .or(self.s.last())
            .map_or(start, |&(_, l)| l)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+') {
                w.push(c);
                self.i += 1;
            } else {
                break;
            }
        }
        w
    }

    fn expect(&mut self, c: char, start: u64, what: &str) -> Result<(), DumpError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(malformed(self.line(start), format!("expected {what}")))
        }
    }

    /// A name, back-quoted or bare; a `db`.`table` prefix is dropped.
    fn ident(&mut self, start: u64) -> Result<String, DumpError> {
        self.skip_ws();
        let name = if self.peek() == Some('`') {
            self.i += 1;
            let mut n = String::new();
            loop {
                match self.peek() {
                    None => return Err(malformed(self.line(start), "unterminated `name`")),
                    Some('`') if self.s.get(self.i + 1).map(|x| x.0) == Some('`') => {
                        n.push('`');
                        self.i += 2;
                    }
                    Some('`') => {
                        self.i += 1;
                        break;
                    }
                    Some(c) => {
                        n.push(c);
                        self.i += 1;
                    }
                }
            }
            n
        } else {
            let w = self.word();
            if w.is_empty() {
                return Err(malformed(self.line(start), "expected a name"));
            }
            w
        };
        Ok(name)
    }

    fn table_name(&mut self, start: u64) -> Result<String, DumpError> {
        self.skip_ws();
        // CREATE TABLE IF NOT EXISTS
        let save = self.i;
        if self.word().eq_ignore_ascii_case("IF") {
            self.skip_ws();
            self.word();
            self.skip_ws();
            self.word();
        } else {
            self.i = save;
        }
        let mut name = self.ident(start)?;
        if self.peek() == Some('.') {
            self.i += 1;
            name = self.ident(start)?;
        }
        Ok(name)
    }

    /// One value of a row: a quoted string (MySQL escapes), `NULL`, a number or a bare word.
    fn value(&mut self, start: u64) -> Result<Option<String>, DumpError> {
        self.skip_ws();
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.i += 1;
                let mut v = String::new();
                loop {
                    let Some(c) = self.peek() else {
                        return Err(malformed(self.line(start), "unterminated string"));
                    };
                    self.i += 1;
                    if c == '\\' {
                        let Some(e) = self.peek() else {
                            return Err(malformed(self.line(start), "unterminated string"));
                        };
                        self.i += 1;
                        v.push(unescape(e));
                    } else if c == q {
                        if self.peek() == Some(q) {
                            v.push(q);
                            self.i += 1;
                        } else {
                            break;
                        }
                    } else {
                        v.push(c);
                    }
                }
                Ok(Some(v))
            }
            Some(_) => {
                let w = self.word();
                if w.is_empty() {
                    return Err(malformed(self.line(start), "expected a value"));
                }
                if w.eq_ignore_ascii_case("NULL") {
                    Ok(None)
                } else {
                    Ok(Some(w))
                }
            }
            None => Err(malformed(self.line(start), "expected a value")),
        }
    }
}

/// MySQL's string escapes (`\0 \b \n \r \t \Z`); any other escaped character stands for itself.
fn unescape(e: char) -> char {
    match e {
        '0' => '\0',
        'b' => '\u{8}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'Z' => '\u{1a}',
        other => other,
    }
}

/// Column names of a `CREATE TABLE`, in order; keys and constraints are not columns.
fn create_columns(t: &mut Tokens<'_>, start: u64) -> Result<Vec<String>, DumpError> {
    t.expect('(', start, "'(' after the table name")?;
    let mut cols = Vec::new();
    loop {
        t.skip_ws();
        if t.peek() == Some('`') {
            cols.push(t.ident(start)?);
        } else {
            let w = t.word();
            let key = matches!(
                w.to_ascii_uppercase().as_str(),
                "PRIMARY"
                    | "KEY"
                    | "UNIQUE"
                    | "INDEX"
                    | "CONSTRAINT"
                    | "FULLTEXT"
                    | "SPATIAL"
                    | "FOREIGN"
                    | "CHECK"
            );
            if !key && !w.is_empty() {
                cols.push(w);
            }
        }
        // Skip the definition up to the next top-level ',' or the closing ')'.
        let mut depth = 0usize;
        loop {
            t.skip_ws();
            match t.peek() {
                None => return Err(malformed(t.line(start), "unterminated CREATE TABLE")),
                Some('(') => {
                    depth += 1;
                    t.i += 1;
                }
                Some(')') if depth > 0 => {
                    depth -= 1;
                    t.i += 1;
                }
                Some(')') => {
                    return Ok(cols);
                }
                Some(',') if depth == 0 => {
                    t.i += 1;
                    break;
                }
                Some('\'' | '"') => {
                    t.value(start)?;
                }
                Some('`') => {
                    t.ident(start)?;
                }
                Some(_) => {
                    if t.word().is_empty() {
                        t.i += 1;
                    }
                }
            }
        }
    }
}

fn insert_rows(
    t: &mut Tokens<'_>,
    start: u64,
    table: &str,
    columns: &BTreeMap<String, Arc<Vec<String>>>,
    dump: &mut Dump,
) -> Result<(), DumpError> {
    t.skip_ws();
    let cols = if t.peek() == Some('(') {
        t.i += 1;
        let mut list = Vec::new();
        loop {
            list.push(t.ident(start)?);
            t.skip_ws();
            match t.peek() {
                Some(',') => t.i += 1,
                Some(')') => {
                    t.i += 1;
                    break;
                }
                _ => {
                    return Err(malformed(
                        t.line(start),
                        "expected ',' or ')' in the column list",
                    ));
                }
            }
        }
        Arc::new(list)
    } else {
        columns.get(table).cloned().ok_or_else(|| {
            malformed(
                start,
                format!("INSERT into `{table}` has no column list and no CREATE TABLE before it"),
            )
        })?
    };
    t.skip_ws();
    let kw = t.word();
    if !kw.eq_ignore_ascii_case("VALUES") && !kw.eq_ignore_ascii_case("VALUE") {
        return Err(malformed(t.line(start), "expected VALUES"));
    }
    let rows = dump.tables.entry(table.to_string()).or_default();
    loop {
        t.skip_ws();
        let line = t.line(start);
        t.expect('(', start, "'(' starting a row")?;
        let mut values = Vec::with_capacity(cols.len());
        loop {
            values.push(t.value(start)?);
            t.skip_ws();
            match t.peek() {
                Some(',') => t.i += 1,
                Some(')') => {
                    t.i += 1;
                    break;
                }
                _ => {
                    return Err(malformed(
                        t.line(start),
                        "expected ',' or ')' after a value",
                    ));
                }
            }
        }
        if values.len() != cols.len() {
            return Err(malformed(
                line,
                format!(
                    "a row of `{table}` has {} values for {} columns",
                    values.len(),
                    cols.len()
                ),
            ));
        }
        rows.push(Row {
            line,
            columns: cols.clone(),
            values,
        });
        t.skip_ws();
        match t.peek() {
            Some(',') => t.i += 1,
            None => return Ok(()),
            Some(_) => {
                // ON DUPLICATE KEY UPDATE and the like change nothing for a fresh read.
                let w = t.word();
                if w.eq_ignore_ascii_case("ON") {
                    return Ok(());
                }
                return Err(malformed(t.line(start), "expected ',' or ';' after a row"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str, wanted: &[&str]) -> Result<Dump, DumpError> {
        read(std::io::Cursor::new(s), wanted)
    }

    #[test]
    fn multi_row_insert_after_create_table() {
        let d = parse(
            "-- MySQL dump\n/*!40101 SET NAMES utf8mb4 */;\n\
             CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `name` varchar(45) DEFAULT 'a,b',\n  `n` decimal(15,2),\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n\
             INSERT INTO `t` VALUES (1,'x',1.50),(2,NULL,-3);\n",
            &["t"],
        )
        .unwrap();
        let rows = d.rows("t");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get("name"), Some("x"));
        assert_eq!(rows[0].get("n"), Some("1.50"));
        assert_eq!(rows[1].get("name"), None);
        assert_eq!(rows[1].get("n"), Some("-3"));
        assert_eq!(rows[1].line, 9);
    }

    #[test]
    fn mysql_escapes() {
        let d = parse(
            r#"INSERT INTO `t` (`a`) VALUES ('O\'Brien \\ x\ny\0\Z'),('it''s'),("dq\"");"#,
            &["t"],
        )
        .unwrap();
        let r = d.rows("t");
        assert_eq!(r[0].get("a"), Some("O'Brien \\ x\ny\0\u{1a}"));
        assert_eq!(r[1].get("a"), Some("it's"));
        assert_eq!(r[2].get("a"), Some("dq\""));
    }

    #[test]
    fn semicolons_and_comment_marks_inside_strings_are_data() {
        let d = parse(
            "INSERT INTO `t` (`a`, `b`) VALUES ('a;b -- c', '/* x */ #');\nINSERT INTO `t` (`b`, `a`) VALUES\n('2', '1'),\n('4', '3');",
            &["t"],
        )
        .unwrap();
        let r = d.rows("t");
        assert_eq!(r[0].get("a"), Some("a;b -- c"));
        assert_eq!(r[0].get("b"), Some("/* x */ #"));
        assert_eq!((r[1].get("a"), r[1].line), (Some("1"), 3));
        assert_eq!((r[2].get("a"), r[2].line), (Some("3"), 4));
    }

    #[test]
    fn other_tables_are_not_kept() {
        let d = parse(
            "INSERT INTO `other` VALUES (1);\nINSERT INTO `t` (`a`) VALUES (1);",
            &["t"],
        )
        .unwrap();
        assert!(d.rows("other").is_empty());
        assert_eq!(d.rows("t").len(), 1);
    }

    /// A string as mysqldump writes it (`mysql_real_escape_string`).
    fn quoted(s: &str) -> String {
        let mut out = String::from("'");
        for c in s.chars() {
            match c {
                '\0' => out.push_str("\\0"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\u{1a}' => out.push_str("\\Z"),
                '\\' | '\'' | '"' => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    }

    proptest::proptest! {
        #[test]
        fn any_escaped_string_reads_back(a in "\\PC*", b in "[\\\\';\"\n\r\u{0}\u{1a}a-z ,()`#-]*") {
            let sql = format!(
                "-- x\nINSERT INTO `t` (`a`, `b`) VALUES ({}, {}),(NULL, 'z');\n",
                quoted(&a),
                quoted(&b)
            );
            let d = parse(&sql, &["t"]).unwrap();
            proptest::prop_assert_eq!(d.rows("t")[0].get("a"), Some(a.as_str()));
            proptest::prop_assert_eq!(d.rows("t")[0].get("b"), Some(b.as_str()));
            proptest::prop_assert_eq!(d.rows("t")[1].get("a"), None);
        }
    }

    #[test]
    fn malformed_statements_name_their_line() {
        let err = |s: &str| match parse(s, &["t"]) {
            Err(DumpError::Malformed { line, message }) => (line, message),
            other => panic!("expected an error, got {other:?}"),
        };
        assert_eq!(err("\n\nINSERT INTO `t` (`a`) VALUES (1,2);").0, 3);
        assert_eq!(err("INSERT INTO `t` VALUES (1);").0, 1);
        assert_eq!(err("\nINSERT INTO `t` (`a`) VALUES ('open);").0, 2);
        assert_eq!(err("INSERT INTO `t` (`a`) VALUES (1) junk;").0, 1);
        let (line, msg) = err("\n\nINSERT INTO `t` (`a`) VALUES (1)");
        assert_eq!(line, 3);
        assert!(msg.contains("never ends"), "{msg}");
    }
}
