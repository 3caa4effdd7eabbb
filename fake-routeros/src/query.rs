//! The `?` query words of `print`: a program for a stack of booleans, evaluated per row.
//!
//! RouterOS's rules: the stack starts as an endless supply of `true`; `?name`, `?-name`,
//! `?name=x` (also `?=name=x`), `?<name=x` and `?>name=x` push one value each; `?#ops`
//! rewrites the stack; a row matches when no value left on the stack is `false`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use thiserror::Error;

/// A query word RouterOS would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid query word ?{0}")]
pub struct QueryError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Has(String),
    HasNot(String),
    Equal(String, String),
    Less(String, String),
    Greater(String, String),
    Ops(Vec<StackOp>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackOp {
    /// An index followed by another character: push a copy of that value.
    PushCopy(usize),
    /// An index ending the word: every value becomes that value.
    ReplaceAll(usize),
    Not,
    And,
    Or,
    /// `.` not after an index: push a copy of the top.
    Dup,
}

/// A parsed query, ready to test rows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    words: Vec<Word>,
}

impl Query {
    /// Parses query words given without their leading `?`.
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<Query, QueryError> {
        let words = words
            .iter()
            .map(|w| parse_word(w.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Query { words })
    }

    /// Whether the query is empty (matches everything).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether `row` satisfies the query.
    pub fn matches(&self, row: &BTreeMap<String, String>) -> bool {
        let mut stack = Stack::default();
        for word in &self.words {
            match word {
                Word::Has(name) => stack.push(row.contains_key(name)),
                Word::HasNot(name) => stack.push(!row.contains_key(name)),
                Word::Equal(name, x) => stack.push(row.get(name).is_some_and(|v| v == x)),
                Word::Less(name, x) => {
                    stack.push(row.get(name).is_some_and(|v| compare(v, x).is_lt()))
                }
                Word::Greater(name, x) => {
                    stack.push(row.get(name).is_some_and(|v| compare(v, x).is_gt()))
                }
                Word::Ops(ops) => ops.iter().for_each(|op| stack.apply(*op)),
            }
        }
        stack.all_true()
    }
}

fn parse_word(word: &str) -> Result<Word, QueryError> {
    let invalid = || QueryError(word.to_owned());
    let name_value = |s: &str| -> Result<(String, String), QueryError> {
        match s.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
            _ => Err(invalid()),
        }
    };
    if let Some(ops) = word.strip_prefix('#') {
        return parse_ops(ops).map(Word::Ops).ok_or_else(invalid);
    }
    if let Some(rest) = word.strip_prefix('<') {
        let (n, v) = name_value(rest)?;
        return Ok(Word::Less(n, v));
    }
    if let Some(rest) = word.strip_prefix('>') {
        let (n, v) = name_value(rest)?;
        return Ok(Word::Greater(n, v));
    }
    if let Some(rest) = word.strip_prefix('=') {
        let (n, v) = name_value(rest)?;
        return Ok(Word::Equal(n, v));
    }
    if let Some(name) = word.strip_prefix('-') {
        if name.is_empty() || name.contains('=') {
            return Err(invalid());
        }
        return Ok(Word::HasNot(name.to_owned()));
    }
    match word.split_once('=') {
        Some(_) => {
            let (n, v) = name_value(word)?;
            Ok(Word::Equal(n, v))
        }
        None if !word.is_empty() => Ok(Word::Has(word.to_owned())),
        None => Err(invalid()),
    }
}

fn parse_ops(ops: &str) -> Option<Vec<StackOp>> {
    let bytes = ops.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let index: usize = ops[start..i].parse().ok()?;
            if i == bytes.len() {
                out.push(StackOp::ReplaceAll(index));
            } else {
                out.push(StackOp::PushCopy(index));
                // A `.` right after an index only ends the index.
                if bytes[i] == b'.' {
                    i += 1;
                }
            }
            continue;
        }
        out.push(match c {
            b'!' => StackOp::Not,
            b'&' => StackOp::And,
            b'|' => StackOp::Or,
            b'.' => StackOp::Dup,
            _ => return None,
        });
        i += 1;
    }
    Some(out)
}

/// RouterOS compares typed values; numbers are the case that matters for the agent
/// (counters, limits), so two integers compare numerically and anything else as text.
fn compare(a: &str, b: &str) -> Ordering {
    match (a.parse::<i128>(), b.parse::<i128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// The boolean stack: explicit values on top of an endless fill value.
#[derive(Debug)]
struct Stack {
    values: Vec<bool>,
    fill: bool,
}

impl Default for Stack {
    fn default() -> Self {
        Stack {
            values: Vec::new(),
            fill: true,
        }
    }
}

impl Stack {
    fn push(&mut self, v: bool) {
        self.values.push(v);
    }

    fn pop(&mut self) -> bool {
        self.values.pop().unwrap_or(self.fill)
    }

    fn get(&self, index: usize) -> bool {
        self.values
            .len()
            .checked_sub(index + 1)
            .map_or(self.fill, |i| self.values[i])
    }

    fn apply(&mut self, op: StackOp) {
        match op {
            StackOp::PushCopy(i) => self.push(self.get(i)),
            StackOp::ReplaceAll(i) => {
                self.fill = self.get(i);
                self.values.clear();
            }
            StackOp::Not => {
                let v = self.pop();
                self.push(!v);
            }
            StackOp::And => {
                let (a, b) = (self.pop(), self.pop());
                self.push(a && b);
            }
            StackOp::Or => {
                let (a, b) = (self.pop(), self.pop());
                self.push(a || b);
            }
            StackOp::Dup => self.push(self.get(0)),
        }
    }

    fn all_true(&self) -> bool {
        self.fill && self.values.iter().all(|v| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn q(words: &[&str]) -> Query {
        Query::parse(words).unwrap()
    }

    #[test]
    fn simple_words() {
        let r = row(&[("name", "u1"), ("limit", "100")]);
        assert!(q(&[]).matches(&r));
        assert!(q(&["name=u1"]).matches(&r));
        assert!(q(&["=name=u1"]).matches(&r));
        assert!(!q(&["name=u2"]).matches(&r));
        assert!(q(&["name"]).matches(&r));
        assert!(!q(&["comment"]).matches(&r));
        assert!(q(&["-comment"]).matches(&r));
        assert!(q(&["<limit=200"]).matches(&r));
        assert!(!q(&["<limit=20"]).matches(&r));
        assert!(q(&[">limit=99"]).matches(&r));
        assert!(!q(&[">name=v"]).matches(&r));
    }

    #[test]
    fn operators() {
        let r = row(&[("type", "vlan")]);
        assert!(q(&["type=ether", "type=vlan", "#|"]).matches(&r));
        assert!(!q(&["type=ether", "type=vlan", "#&"]).matches(&r));
        assert!(q(&["type=ether", "#!"]).matches(&r));
        assert!(!q(&["type=ether", "type=vlan", "#|!"]).matches(&r));
        // `.` duplicates the top, so `?#.!|` is "x or not x": always true.
        assert!(q(&["type=ether", "#.!|"]).matches(&r));
        // An index ending the word replaces the whole stack with that value.
        assert!(q(&["type=ether", "type=vlan", "#0"]).matches(&r));
        assert!(!q(&["type=vlan", "type=ether", "#0"]).matches(&r));
        // An index before another character pushes a copy; `.` after it is a no-op.
        assert!(!q(&["type=ether", "type=vlan", "#1.&", "#0"]).matches(&r));
        assert!(q(&["type=ether", "type=vlan", "#1.&!", "#0"]).matches(&r));
    }

    #[test]
    fn rejects_malformed() {
        assert!(Query::parse(&["#x"]).is_err());
        assert!(Query::parse(&["<limit"]).is_err());
        assert!(Query::parse(&[""]).is_err());
        assert!(Query::parse(&["=x"]).is_err());
    }
}
