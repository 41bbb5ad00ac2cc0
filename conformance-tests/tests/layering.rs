//! The crate layering of `ARCHITECTURE.md` (repository root, "Crates and layering"), checked
//! against `cargo metadata`.
//!
//! Every workspace-internal dependency edge must appear in the allowed table; a new edge
//! fails this test until the table (and `ARCHITECTURE.md`) is changed on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// crate → workspace crates it may depend on as a normal (or build) dependency.
const NORMAL: &[(&str, &[&str])] = &[
    ("mukan-node-key", &[]),
    // Test helpers (never published): a dev-dependency, and the load tool's raw peer.
    (
        "mukan-test-support",
        &["mukan-node-key", "mukan-secret-conn"],
    ),
    ("mukan-reactor-api", &["mukan-node-key"]),
    ("mukan-secret-conn", &["mukan-node-key"]),
    // MConnection's driver runs over a secret stream's frame buffers (feature `tokio`).
    ("mukan-mconn", &["mukan-reactor-api", "mukan-secret-conn"]),
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
    // Reactors of our own, built on the public API of the crates a user would take.
    (
        "mukan-example-reactors",
        &["mukan-reactor-api", "mukan-transport", "mukan-node"],
    ),
];

/// Extra edges allowed for dev-dependencies only (tests and benches).
const DEV_EXTRA: &[(&str, &[&str])] = &[
    // The mconn benchmarks run over a real secret stream, made with a node key.
    ("mukan-mconn", &["mukan-node-key"]),
    ("mukan-addrbook", &["mukan-node-key"]),
    ("mukan-transport", &["mukan-test-support"]),
    (
        "mukan-switch",
        &["mukan-transport", "mukan-node-key", "mukan-test-support"],
    ),
    ("mukan-pex", &["mukan-addrbook", "mukan-node-key"]),
];

/// Crates at the top of the stack, which may use anything in the workspace.
const TOP: &[&str] = &[
    "mukan-node",
    "mukan-conformance-tests",
    "mukan-bench-suite",
    "mukan-faultsim",
    "mukan-load",
];

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

/// The table of `ARCHITECTURE.md` ("may depend on") says the same as [`NORMAL`] and [`TOP`],
/// so that the document and the check cannot drift apart.
#[test]
fn architecture_document_states_the_same_layering() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ARCHITECTURE.md");
    let text = std::fs::read_to_string(path).expect("ARCHITECTURE.md at the repository root");
    let mut documented: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        // | dir | package | job | may depend on |
        let (Some(package), Some(deps)) = (cols.get(2), cols.get(4)) else {
            continue;
        };
        let Some(package) = package.split('`').nth(1) else {
            continue;
        };
        let deps = match *deps {
            "anything" => None,
            "nothing" => Some(BTreeSet::new()),
            list => Some(
                list.split(',')
                    .map(|d| format!("mukan-{}", d.trim()))
                    .collect(),
            ),
        };
        documented.insert(package.to_owned(), deps);
    }
    for (name, allowed) in NORMAL {
        let expected: BTreeSet<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(
            documented.get(*name),
            Some(&Some(expected)),
            "ARCHITECTURE.md row of {name}"
        );
    }
    for name in TOP {
        if *name == "mukan-conformance-tests" {
            continue; // documented by its directory, not published
        }
        assert_eq!(
            documented.get(*name),
            Some(&None),
            "ARCHITECTURE.md row of {name}"
        );
    }
}
