//! Every crate's modules form layers: no module reaches, through `crate::`, `super::` or
//! `self::` paths, a module that reaches it back. Read from the sources at the granularity of
//! files (every `.rs` file is a module; a parent and its own children may use each other), with
//! `use a::{b, c::{d}}` groups expanded and doc links counted (a doc link is a dependency a
//! reader follows too), so a new cycle fails here before anyone has to find it in a review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The module path of a source file (`billing::invoices`; `""` for `lib.rs` and `main.rs`),
/// and whether the file is a directory module (`mod.rs`, `lib.rs`, `main.rs`).
fn module_of(src: &Path, file: &Path) -> (String, bool) {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let dir_module = matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    );
    if dir_module {
        parts.pop();
    }
    (parts.join("::"), dir_module)
}

/// The text of a file without its `#[cfg(test)]` module (tests may reach anything).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a `{...}` group starting at `text` names under `prefix` (nested groups expanded).
fn group(prefix: &str, text: &str, out: &mut Vec<String>) {
    let mut depth = 0;
    let mut item = String::new();
    let mut items = Vec::new();
    for c in text.chars().skip(1) {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    for it in items {
        let it = it.trim();
        let path: String = it
            .chars()
            .take_while(|c| ident_char(*c) || *c == ':')
            .collect();
        let path = path.trim_end_matches(':');
        if path.is_empty() {
            continue;
        }
        let full = join(prefix, path);
        let rest = it[path.len()..].trim_start_matches(':');
        if rest.starts_with('{') {
            group(&full, rest, out);
        } else {
            out.push(full);
        }
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}::{b}"),
    }
}

fn parent(m: &str) -> &str {
    m.rsplit_once("::").map_or("", |(p, _)| p)
}

/// Every path named after `crate::`, `super::` or `self::` in the text, made absolute for
/// the file's module `me`.
fn references(text: &str, me: &str, dir_module: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("::") {
        // Find the keyword right before this `::`.
        let head: String = text[..at]
            .chars()
            .rev()
            .take_while(|c| ident_char(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let start = at - head.len();
        let before = text[..start].chars().last();
        if before.is_some_and(|c| ident_char(c) || matches!(c, ':' | '$')) {
            continue;
        }
        let mut base = match head.as_str() {
            "crate" => String::new(),
            "self" => me.to_string(),
            // `super` of `a/b.rs` is `a`; of `a/b/mod.rs` (module `a::b`) it is `a` too.
            "super" => parent(me).to_string(),
            _ => continue,
        };
        let _ = dir_module;
        let mut rest = &text[at + 2..];
        while let Some(r) = rest.strip_prefix("super::") {
            base = parent(&base).to_string();
            rest = r;
        }
        if rest.starts_with('{') {
            group(&base, rest, &mut out);
            continue;
        }
        let path: String = rest
            .chars()
            .take_while(|c| ident_char(*c) || *c == ':')
            .collect();
        let path = path.trim_end_matches(':');
        let full = join(&base, path);
        let tail = rest[path.len()..].trim_start_matches(':');
        if rest[path.len()..].starts_with("::{") || (path.is_empty() && tail.starts_with('{')) {
            group(&full, tail, &mut out);
        } else {
            out.push(full);
        }
    }
    out
}

/// The longest module among `modules` that `path` starts with.
fn resolve<'a>(path: &str, modules: &'a BTreeSet<String>) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| modules.get(&parts[..n].join("::")))
}

fn related(a: &str, b: &str) -> bool {
    a.is_empty()
        || b.is_empty()
        || a == b
        || a.starts_with(&format!("{b}::"))
        || b.starts_with(&format!("{a}::"))
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let targets: Vec<&'a str> = s
            .edges
            .get(v)
            .map(|t| t.iter().map(String::as_str).collect())
            .unwrap_or_default();
        for w in targets {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// The module dependency edges of one crate's sources.
fn crate_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = mikrobill_tests::rust_sources(src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f).0).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let (me, dir_module) = module_of(src, file);
        let text = std::fs::read_to_string(file).expect("read source");
        let targets = edges.entry(me.clone()).or_default();
        for path in references(without_tests(&text), &me, dir_module) {
            if let Some(m) = resolve(&path, &modules)
                && !related(&me, m)
            {
                targets.insert(m.clone());
            }
        }
    }
    edges
}

#[test]
fn no_module_cycles_in_any_crate() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut problems = Vec::new();
    for krate in [
        "controller-core",
        "controller-http",
        "controller",
        "agent",
        "radius",
        "protocol",
        "fake-routeros",
        "tests",
    ] {
        let edges = crate_edges(&workspace.join(krate).join("src"));
        // Files, and their top-level modules: a layer must not reach up at either grain.
        let top = |m: &str| m.split("::").next().unwrap_or_default().to_string();
        let mut tops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in &edges {
            let targets = tops.entry(top(from)).or_default();
            targets.extend(to.iter().map(|t| top(t)).filter(|t| *t != top(from)));
        }
        for (grain, map) in [("files", &edges), ("top-level modules", &tops)] {
            for c in cycles(map) {
                let described = c
                    .iter()
                    .map(|a| {
                        let to: Vec<_> = map[a].intersection(&c).cloned().collect();
                        format!("{a} -> {}", to.join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                problems.push(format!("{krate} ({grain}): {described}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "import cycles between modules:\n{}",
        problems.join("\n")
    );
    // The scan sees the layers it is meant to see.
    let http = crate_edges(&workspace.join("controller-http/src"));
    assert!(http["routes"].contains("web::admin"));
    assert!(http["api::v1::customers"].contains("api::extract"));
}

#[test]
fn references_are_read_as_absolute_module_paths() {
    let refs = references(
        "use crate::db::Db; use super::{ctx::{Ctx, Form}, lookups}; $crate::no; \
         x::crate::no; [`crate::tax`]; super::super::api::extract::Caller",
        "web::admin::plans",
        false,
    );
    assert_eq!(
        refs,
        [
            "db::Db",
            "web::admin::ctx::Ctx",
            "web::admin::ctx::Form",
            "web::admin::lookups",
            "tax",
            "web::api::extract::Caller",
        ]
    );
}
