//! The crate layering of `STYLE.md` §3, checked against `cargo metadata`.
//!
//! Every workspace-internal dependency edge must appear in the allowed table; a new edge
//! fails this test until the table (and the architecture document) is changed on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// crate → workspace crates it may depend on as a normal (or build) dependency.
const NORMAL: &[(&str, &[&str])] = &[
    ("mukan-node-key", &[]),
    ("mukan-reactor-api", &["mukan-node-key"]),
    ("mukan-secret-conn", &["mukan-node-key"]),
    ("mukan-mconn", &["mukan-reactor-api"]),
    ("mukan-addrbook", &["mukan-reactor-api"]),
    ("mukan-pex", &["mukan-reactor-api"]),
    ("mukan-switch", &["mukan-reactor-api"]),
    (
        "mukan-transport",
        &[
            "mukan-reactor-api",
            "mukan-node-key",
            "mukan-secret-conn",
            "mukan-mconn",
        ],
    ),
];

/// Extra edges allowed for dev-dependencies only (tests and benches).
const DEV_EXTRA: &[(&str, &[&str])] = &[
    // The mconn benchmarks run over a real secret stream.
    ("mukan-mconn", &["mukan-secret-conn", "mukan-node-key"]),
    ("mukan-addrbook", &["mukan-node-key"]),
    ("mukan-switch", &["mukan-transport", "mukan-node-key"]),
    ("mukan-pex", &["mukan-addrbook", "mukan-node-key"]),
];

/// Crates at the top of the stack, which may use anything in the workspace.
const TOP: &[&str] = &["mukan-node", "mukan-conformance-tests", "mukan-bench-suite"];

#[test]
fn workspace_edges_follow_the_layering() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let members: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();

    let normal: BTreeMap<&str, &[&str]> = NORMAL.iter().copied().collect();
    let dev: BTreeMap<&str, &[&str]> = DEV_EXTRA.iter().copied().collect();
    let mut violations = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap();
        if TOP.contains(&name) {
            // Nothing may depend on the top crates; checked below through the others.
            continue;
        }
        let Some(allowed) = normal.get(name) else {
            violations.push(format!("{name}: not in the layering table"));
            continue;
        };
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            if !members.contains(dep_name) {
                continue;
            }
            let is_dev = dep["kind"].as_str() == Some("dev");
            if is_dev && dep_name == name {
                // A crate's tests enabling its own test features (e.g. `test-util`).
                continue;
            }
            let ok = allowed.contains(&dep_name)
                || (is_dev && dev.get(name).is_some_and(|extra| extra.contains(&dep_name)));
            if !ok {
                let kind = if is_dev {
                    "dev-dependency"
                } else {
                    "dependency"
                };
                violations.push(format!("{name} has a {kind} on {dep_name}"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
    assert!(
        members.len() >= 10,
        "all workspace crates are listed: {members:?}"
    );
}
