//! Every Rust snippet of a README compiles: a README with Rust code (a fence that says `rust`,
//! or says nothing, which rustdoc reads as Rust) must be included by its crate as doctests
//! (`#[doc = include_str!("../README.md")]` under `#[cfg(doctest)]`), and no snippet may be
//! `ignore`d. Output and shell sessions say so (`text`, `sh`, `toml`, …).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::{Path, PathBuf};

/// A README's Rust fences: (line, info string) of each opening fence that rustdoc would compile.
fn rust_fences(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        if open {
            open = false;
            continue;
        }
        open = true;
        let info = info.trim();
        let first = info.split(',').next().unwrap_or("").trim();
        if first.is_empty() || first == "rust" || info.contains("ignore") {
            out.push((i + 1, info.to_owned()));
        }
    }
    out
}

/// The workspace's READMEs: the root's and each member directory's.
fn readmes(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let dir = entry.unwrap().path();
        let readme = dir.join("README.md");
        if dir.join("Cargo.toml").is_file() && readme.is_file() {
            out.push((dir, readme));
        }
    }
    out.sort();
    out
}

#[test]
fn every_rust_snippet_of_a_readme_is_a_doctest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let root_readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut problems: Vec<String> = rust_fences(&root_readme)
        .into_iter()
        .map(|(line, info)| {
            format!("README.md:{line}: ```{info}: the root README has no crate to test it")
        })
        .collect();
    let mut checked = 0;
    for (dir, readme) in readmes(root) {
        let text = std::fs::read_to_string(&readme).unwrap();
        let fences = rust_fences(&text);
        if fences.is_empty() {
            continue;
        }
        let name = readme.strip_prefix(root).unwrap().display().to_string();
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap_or_default();
        if !lib.contains("include_str!(\"../README.md\")") {
            problems.push(format!(
                "{name}: has Rust snippets but src/lib.rs does not include it as doctests"
            ));
        }
        for (line, info) in fences {
            if info.contains("ignore") {
                problems.push(format!("{name}:{line}: ```{info}: an ignored snippet"));
            }
        }
        checked += 1;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // reactor-api, switch and node have Rust snippets today.
    assert!(
        checked >= 3,
        "only {checked} READMEs with Rust snippets found"
    );
}

#[test]
fn fences_are_read_as_rustdoc_reads_them() {
    let text = "```sh\nls\n```\n```\nfn a() {}\n```\n```rust,ignore\nx\n```\n```text\n```\n";
    let got = rust_fences(text);
    assert_eq!(got, vec![(4, String::new()), (7, "rust,ignore".to_owned())]);
}
