//! The contract's seams are typed: no `Error` trait object (`dyn Error`,
//! `dyn std::error::Error`, `dyn core::error::Error`, or the trait under any alias) anywhere
//! in this crate's non-test source, which is where its public API is declared. Callers act on
//! variants, never on downcasts or message text.
//!
//! The check reads the source: comments, string and char literals and `#[cfg(test)]` items
//! are removed, then every trait-object type (`dyn` followed by its `+`-separated bounds) is
//! resolved through the file's `use` aliases. A bound naming `Error` (any path), or an alias
//! of `…error::Error`, fails the test with the file and line.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[test]
fn no_error_trait_object_in_the_source() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    assert!(
        files.len() > 5,
        "read {} files under {}",
        files.len(),
        src.display()
    );
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, what) in error_trait_objects(&text) {
            found.push(format!("{}:{line}: {what}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "Error trait objects in reactor-api's API:\n{}",
        found.join("\n")
    );
}

/// The checker finds every spelling, and nothing in comments, strings or tests.
#[test]
fn the_checker_sees_every_spelling() {
    let flagged = |s: &str| !error_trait_objects(s).is_empty();
    assert!(flagged("pub fn f() -> Box<dyn Error + Send> { todo!() }"));
    assert!(flagged("fn f(e: &dyn std::error::Error) {}"));
    assert!(flagged("fn f(e: &(dyn ::core::error::Error + 'static)) {}"));
    assert!(flagged("fn f(e: Arc<dyn Send + Sync + error::Error>) {}"));
    assert!(flagged(
        "use std::error::Error as Oops;\nfn f(e: Box<dyn Oops>) {}"
    ));
    assert!(flagged(
        "use std::{error::Error as E2, fmt};\nfn f(e: Box<dyn E2>) {}"
    ));
    assert!(flagged(
        "type B = Box<dyn StdError + Send + Sync>;\nuse std::error::Error as StdError;"
    ));
    assert!(!flagged("// Box<dyn Error>\nfn f() {}"));
    assert!(!flagged("/* dyn Error */ fn f() {}"));
    assert!(!flagged("const S: &str = \"dyn Error\";"));
    assert!(!flagged("fn f(x: Box<dyn Fn() -> Result<(), MyError>>) {}"));
    assert!(!flagged("fn f(x: &dyn Display) {}"));
    assert!(!flagged(
        "#[cfg(test)]\nmod tests {\n fn f(_: Box<dyn Error>) {}\n}\nfn g() {}"
    ));
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(line, bound)` of every trait object over the `Error` trait in `text`.
fn error_trait_objects(text: &str) -> Vec<(usize, String)> {
    let code = strip_tests(&strip_comments_and_literals(text));
    let aliases = error_aliases(&code);
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(pos) = code[at..].find("dyn") {
        let start = at + pos;
        at = start + 3;
        let before_ok = start == 0 || !is_ident(bytes[start - 1]);
        let after_ok = bytes.get(start + 3).is_some_and(|b| !is_ident(*b));
        if !before_ok || !after_ok {
            continue;
        }
        // The bounds run until a character that cannot be part of them at this level.
        let rest = &code[start + 3..];
        let mut depth = 0i32;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' | '<' => depth += 1,
                ')' | '>' if depth == 0 => {
                    end = i;
                    break;
                }
                ')' | '>' => depth -= 1,
                ',' | ';' | '{' | '=' if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let bounds = &rest[..end];
        for bound in split_top_level_plus(bounds) {
            let path: String = bound
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '(' && *c != ')')
                .collect();
            let path = path.split('<').next().unwrap_or_default().to_owned();
            let last = path.rsplit("::").next().unwrap_or_default();
            if last == "Error" || aliases.contains(last) {
                let line = code[..start].matches('\n').count() + 1;
                out.push((line, format!("dyn {}", bounds.trim())));
            }
        }
    }
    out
}

fn split_top_level_plus(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut from = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' => depth -= 1,
            '+' if depth == 0 => {
                parts.push(&s[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[from..]);
    parts
}

/// Names the `Error` trait is imported under with `as` (`use std::error::Error as E`).
fn error_aliases(code: &str) -> BTreeSet<String> {
    let flat: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = BTreeSet::new();
    let mut at = 0;
    while let Some(pos) = flat[at..].find("Error as ") {
        let start = at + pos;
        at = start + 9;
        let name: String = flat[at..]
            .chars()
            .take_while(|c| is_ident_char(*c))
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Replaces comments and string/char literals by spaces (keeping newlines, so that line
/// numbers stay right).
fn strip_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && !prev_ident(&chars, i) {
            // Raw string r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body: String = chars[j + 1..].iter().collect();
            let len = body
                .find(&close)
                .map_or(body.chars().count(), |p| body[..p].chars().count());
            let total = (j + 1 - i) + len + close.chars().count();
            for k in 0..total.min(chars.len() - i) {
                out.push(blank(chars[i + k]));
            }
            i += total;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            let end = chars[i + 1..]
                .iter()
                .enumerate()
                .skip(1)
                .find(|(k, ch)| **ch == '\'' && chars[i + *k] != '\\')
                .map_or(chars.len(), |(k, _)| i + 1 + k);
            for _ in i..=end.min(chars.len() - 1) {
                out.push(' ');
            }
            i = end + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_ident(chars: &[char], i: usize) -> bool {
    i > 0 && is_ident_char(chars[i - 1])
}

/// `'x'`, `'\n'`, `'\u{..}'` (not a lifetime such as `'a` or `'static`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    matches!(
        (chars.get(i + 1), chars.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

/// Removes every item annotated `#[cfg(test)]` (a `mod … { … }` block or one item up to its
/// `;` or its braces).
fn strip_tests(code: &str) -> String {
    let mut out = code.to_owned();
    while let Some(pos) = out.find("#[cfg(test)]") {
        let bytes = out.as_bytes();
        let mut i = pos;
        let mut depth = 0i32;
        let mut end = out.len();
        while i < bytes.len() {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let blanked: String = out[pos..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(pos..end, &blanked);
    }
    out
}
