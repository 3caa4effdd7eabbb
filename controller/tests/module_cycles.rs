//! The controller's top-level modules form layers: no module reaches, through `crate::`
//! paths, a module that reaches it back. Read from the sources (every `crate::name` outside
//! `#[cfg(test)]` blocks, doc comments included, since a doc link is a dependency a reader
//! follows too), so a new cycle fails here before anyone has to find it in a review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles that exist today and are to be cut (each listed with the reason it still stands);
/// the test fails when one of them grows or a new one appears, and when one disappears
/// without being removed from here.
const KNOWN: &[&[&str]] = &[
    // Payments re-activate settled subscriptions; subscriptions issue invoices.
    &["billing", "subscriptions"],
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`lib` for `lib.rs` and `main.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel
        .components()
        .next()
        .expect("a component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// The text of a file without its `#[cfg(test)]` module (tests may reach anything).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Every top-level module named after `crate::` in the text.
fn references(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `crate::` inside a longer path or a macro's `$crate::` is not this crate's module.
        let before = rest[..at].chars().last();
        if !name.is_empty()
            && !before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '$'))
        {
            out.insert(name);
        }
        rest = after;
    }
    out
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

#[test]
fn top_level_modules_form_no_new_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        modules.insert(module.clone());
        let text = std::fs::read_to_string(file).expect("read source");
        let refs = references(without_tests(&text));
        let entry = edges.entry(module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != module));
    }
    // Only edges between modules of this crate count (`crate::` never names anything else,
    // but a macro's `$crate::` would).
    for targets in edges.values_mut() {
        targets.retain(|t| modules.contains(t));
    }
    let found = cycles(&edges);
    let known: Vec<BTreeSet<String>> = KNOWN
        .iter()
        .map(|c| c.iter().map(|m| m.to_string()).collect())
        .collect();
    let new: Vec<_> = found.iter().filter(|c| !known.contains(c)).collect();
    let gone: Vec<_> = known.iter().filter(|c| !found.contains(c)).collect();
    let describe = |c: &BTreeSet<String>| {
        c.iter()
            .map(|a| {
                let to: Vec<_> = edges[a].intersection(c).cloned().collect();
                format!("{a} -> {}", to.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert!(
        new.is_empty(),
        "new import cycles between top-level modules: {}",
        new.iter()
            .map(|c| describe(c))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(
        gone.is_empty(),
        "cycles listed in KNOWN no longer exist; remove them: {gone:?}"
    );
}

#[test]
fn references_read_crate_paths_only() {
    let refs = references(
        "use crate::db::Db; $crate::no; x::crate::no; mikrobill_crate::no; [`crate::tax`]",
    );
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["db".to_string(), "tax".to_string()]
    );
}
