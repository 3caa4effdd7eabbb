//! What a RouterOS hotspot does to its HTML pages before serving them, for tests of pages
//! rendered for a router: `$(name)` becomes the variable's value (empty when unknown), and
//! `$(if name)`, `$(if name == 'value')`, `$(elif ...)`, `$(else)` and `$(endif)` keep or
//! drop what they enclose, nested or not.

use std::collections::HashMap;

/// Whether a condition holds: a variable that is set, or `name == 'value'`.
fn holds(condition: &str, vars: &HashMap<&str, String>) -> bool {
    match condition.split_once("==") {
        Some((name, value)) => {
            let value = value.trim().trim_matches(|c| c == '\'' || c == '"');
            vars.get(name.trim()).map(String::as_str).unwrap_or("") == value
        }
        None => vars.get(condition.trim()).is_some_and(|v| !v.is_empty()),
    }
}

/// One open `$(if)`: whether its enclosing text is shown, whether a branch was taken, and
/// whether the current branch is shown.
struct Branch {
    outer: bool,
    taken: bool,
    shown: bool,
}

/// `page` with its variables and conditions filled in as a router would.
pub fn fill(page: &str, vars: &HashMap<&str, String>) -> String {
    let mut out = String::with_capacity(page.len());
    let mut stack: Vec<Branch> = Vec::new();
    let shown = |stack: &[Branch]| stack.last().is_none_or(|b| b.shown);
    let mut rest = page;
    while let Some(at) = rest.find("$(") {
        if shown(&stack) {
            out.push_str(&rest[..at]);
        }
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else {
            panic!("unterminated $( in page");
        };
        let token = after[..end].trim();
        rest = &after[end + 1..];
        if let Some(condition) = token.strip_prefix("if ") {
            let outer = shown(&stack);
            let yes = outer && holds(condition, vars);
            stack.push(Branch {
                outer,
                taken: yes,
                shown: yes,
            });
        } else if let Some(condition) = token.strip_prefix("elif ") {
            let b = stack.last_mut().expect("$(elif) outside $(if)");
            b.shown = b.outer && !b.taken && holds(condition, vars);
            b.taken |= b.shown;
        } else if token == "else" {
            let b = stack.last_mut().expect("$(else) outside $(if)");
            b.shown = b.outer && !b.taken;
            b.taken = true;
        } else if token == "endif" {
            stack.pop().expect("$(endif) outside $(if)");
        } else if shown(&stack) {
            out.push_str(vars.get(token).map(String::as_str).unwrap_or(""));
        }
    }
    assert!(stack.is_empty(), "$(if) without $(endif)");
    out.push_str(rest);
    out
}

/// Bytes as RouterOS writes `$(chap-id)` and `$(chap-challenge)`: an octal escape per byte,
/// for a JavaScript string literal.
pub fn octal(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:03o}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_and_branches() {
        let vars: HashMap<&str, String> = [("a", "1".to_string()), ("e", String::new())].into();
        assert_eq!(fill("x$(a)y$(zz)", &vars), "x1y");
        assert_eq!(fill("$(if a)A$(else)B$(endif)", &vars), "A");
        assert_eq!(fill("$(if e)A$(elif a)C$(else)B$(endif)", &vars), "C");
        assert_eq!(fill("$(if e)A$(if a)N$(endif)$(else)B$(endif)", &vars), "B");
        assert_eq!(fill("$(if a == '1')Y$(endif)", &vars), "Y");
        assert_eq!(octal(&[0o371, 7]), "\\371\\007");
    }
}
