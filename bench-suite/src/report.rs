//! `mukan-bench report`: merges the per-run figure files of the three implementations into
//! `BENCHMARKS.md` (best of the runs for every figure, ratios, targets, machine, date).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One figure of the table.
struct Row {
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    higher_is_better: bool,
}

const fn row(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    higher_is_better: bool,
) -> Row {
    Row {
        key,
        label,
        unit,
        higher_is_better,
    }
}

const ROWS: &[Row] = &[
    row(
        "seal_mib_s",
        "ChaCha20-Poly1305 seal, 1028 B frames, one core (payload)",
        "MiB/s",
        true,
    ),
    row(
        "bulk_1k_mib_s",
        "secret connection bulk, 1 KiB writes",
        "MiB/s",
        true,
    ),
    row(
        "bulk_64k_mib_s",
        "secret connection bulk, 64 KiB writes",
        "MiB/s",
        true,
    ),
    row(
        "bulk_1k_cpu_us_mib",
        "secret connection bulk, 1 KiB writes: CPU of both ends",
        "µs/MiB",
        false,
    ),
    row(
        "bulk_64k_cpu_us_mib",
        "secret connection bulk, 64 KiB writes: CPU of both ends",
        "µs/MiB",
        false,
    ),
    row(
        "hs_1_per_s",
        "handshakes (TCP + STS + NodeInfo), 1 at a time",
        "/s",
        true,
    ),
    row(
        "hs_16_per_s",
        "handshakes (TCP + STS + NodeInfo), 16 in parallel",
        "/s",
        true,
    ),
    row(
        "lat_p50_us",
        "lone 100 B message one-way, default config, p50",
        "µs",
        false,
    ),
    row(
        "lat_p99_us",
        "lone 100 B message one-way, default config, p99",
        "µs",
        false,
    ),
    row(
        "mconn_1k_mib_s",
        "MConnection, limits off, 1 KiB messages, 4 channels",
        "MiB/s",
        true,
    ),
    row(
        "mconn_64k_mib_s",
        "MConnection, limits off, 64 KiB messages, 4 channels",
        "MiB/s",
        true,
    ),
    row(
        "mconn_mixed_mib_s",
        "MConnection, limits off, mixed workload sizes, 4 channels",
        "MiB/s",
        true,
    ),
    row(
        "mconn_1k_cpu_us_mib",
        "MConnection, 1 KiB messages: CPU of both ends",
        "µs/MiB",
        false,
    ),
    row(
        "mconn_64k_cpu_us_mib",
        "MConnection, 64 KiB messages: CPU of both ends",
        "µs/MiB",
        false,
    ),
    row(
        "mconn_mixed_cpu_us_mib",
        "MConnection, mixed sizes: CPU of both ends",
        "µs/MiB",
        false,
    ),
    row(
        "mem_per_peer_kib",
        "memory per idle connected peer (RSS growth / peers)",
        "KiB",
        false,
    ),
    row(
        "ab_add_per_s",
        "address book add, 100,000 offered addresses",
        "ops/s",
        true,
    ),
    row(
        "ab_pick_per_s",
        "address book pick_address(50) at that book",
        "ops/s",
        true,
    ),
    row(
        "ab_select_per_s",
        "address book selection at that book",
        "ops/s",
        true,
    ),
    row(
        "ab_size",
        "address book size after the adds (not a speed)",
        "addresses",
        true,
    ),
    row(
        "bc_cpu_us",
        "broadcast 1 KiB to 100 peers: sender CPU per message",
        "µs",
        false,
    ),
    row(
        "bc_p50_ms",
        "broadcast 1 KiB to 100 peers: time until all delivered, p50",
        "ms",
        false,
    ),
    row(
        "bc_max_ms",
        "broadcast 1 KiB to 100 peers: time until all delivered, max",
        "ms",
        false,
    ),
];

const IMPLS: [(&str, &str); 3] = [
    ("rust", "Rust (mukan)"),
    ("go38", "Go v0.38.25"),
    ("go40", "Go v0.40.0"),
];

/// Figures per implementation: key → the value of every run.
type Figures = BTreeMap<String, Vec<f64>>;

fn load(dir: &Path, imp: &str) -> (Figures, usize) {
    let mut figures = Figures::new();
    let mut runs = 0;
    for n in 1.. {
        let path: PathBuf = dir.join(format!("{imp}-{n}.tsv"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            break;
        };
        runs = n;
        for line in text.lines() {
            let mut parts = line.split('\t');
            if let (Some(k), Some(v)) = (parts.next(), parts.next())
                && let Ok(v) = v.trim().parse::<f64>()
            {
                figures.entry(k.to_string()).or_default().push(v);
            }
        }
    }
    (figures, runs)
}

fn best(figures: &Figures, r: &Row) -> Option<f64> {
    let vals = figures.get(r.key)?;
    let fold = if r.higher_is_better {
        vals.iter().copied().fold(f64::MIN, f64::max)
    } else {
        vals.iter().copied().fold(f64::MAX, f64::min)
    };
    Some(fold)
}

fn fmt_value(v: f64) -> String {
    if v >= 1000.0 {
        let s = format!("{v:.0}");
        // Thousands separators.
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cpu_model() -> (String, usize) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_string(), |(_, m)| m.trim().to_string());
    let cores = info.lines().filter(|l| l.starts_with("processor")).count();
    (model, cores)
}

struct Args {
    out: PathBuf,
    runs: PathBuf,
    command: String,
    date: String,
    notes: Option<PathBuf>,
    go_versions: String,
}

fn parse(args: &[String]) -> Option<Args> {
    let mut out = None;
    let mut runs = None;
    let mut command = String::new();
    let mut date = String::new();
    let mut notes = None;
    let mut go_versions = String::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next()?;
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(v)),
            "--runs" => runs = Some(PathBuf::from(v)),
            "--command" => command.clone_from(v),
            "--date" => date.clone_from(v),
            "--notes" => notes = Some(PathBuf::from(v)),
            "--toolchains" => go_versions.clone_from(v),
            _ => return None,
        }
    }
    Some(Args {
        out: out?,
        runs: runs?,
        command,
        date,
        notes,
        go_versions,
    })
}

/// A target of issue 11: `rust` compared with `other` (a Go figure or another Rust figure).
struct Target {
    what: &'static str,
    key: &'static str,
    against_impl: &'static str,
    against_key: &'static str,
    /// Required `rust / against` (higher-is-better rows) or `rust / against` at most
    /// (lower-is-better rows, given as a fraction).
    ratio: f64,
    higher_is_better: bool,
}

const TARGETS: &[Target] = &[
    Target {
        what: "bulk 64 KiB ≥ 3× Go v0.40.0",
        key: "bulk_64k_mib_s",
        against_impl: "go40",
        against_key: "bulk_64k_mib_s",
        ratio: 3.0,
        higher_is_better: true,
    },
    Target {
        what: "bulk 64 KiB ≥ 60% of the seal rate",
        key: "bulk_64k_mib_s",
        against_impl: "rust",
        against_key: "seal_mib_s",
        ratio: 0.6,
        higher_is_better: true,
    },
    Target {
        what: "handshakes/s, 16 parallel ≥ 2× Go v0.40.0",
        key: "hs_16_per_s",
        against_impl: "go40",
        against_key: "hs_16_per_s",
        ratio: 2.0,
        higher_is_better: true,
    },
    Target {
        what: "MConnection 64 KiB, limits off ≥ 3× Go v0.40.0",
        key: "mconn_64k_mib_s",
        against_impl: "go40",
        against_key: "mconn_64k_mib_s",
        ratio: 3.0,
        higher_is_better: true,
    },
    Target {
        what: "memory per idle peer ≤ ⅓ of Go v0.40.0",
        key: "mem_per_peer_kib",
        against_impl: "go40",
        against_key: "mem_per_peer_kib",
        ratio: 1.0 / 3.0,
        higher_is_better: false,
    },
    Target {
        what: "address book add ≥ 3× Go v0.40.0",
        key: "ab_add_per_s",
        against_impl: "go40",
        against_key: "ab_add_per_s",
        ratio: 3.0,
        higher_is_better: true,
    },
    Target {
        what: "address book pick ≥ 3× Go v0.40.0",
        key: "ab_pick_per_s",
        against_impl: "go40",
        against_key: "ab_pick_per_s",
        ratio: 3.0,
        higher_is_better: true,
    },
    Target {
        what: "address book selection ≥ 3× Go v0.40.0",
        key: "ab_select_per_s",
        against_impl: "go40",
        against_key: "ab_select_per_s",
        ratio: 3.0,
        higher_is_better: true,
    },
    Target {
        what: "broadcast CPU per message ≤ ⅓ of Go v0.40.0",
        key: "bc_cpu_us",
        against_impl: "go40",
        against_key: "bc_cpu_us",
        ratio: 1.0 / 3.0,
        higher_is_better: false,
    },
];

fn row_of(key: &str) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.key == key)
}

pub(crate) fn main(args: &[String]) -> i32 {
    let Some(args) = parse(args) else {
        eprintln!(
            "usage: mukan-bench report --out FILE --runs DIR [--command C] [--date D] [--notes F] [--toolchains T]"
        );
        return 2;
    };
    let mut data = BTreeMap::new();
    let mut runs = 0;
    for (imp, _) in IMPLS {
        let (f, n) = load(&args.runs, imp);
        runs = runs.max(n);
        data.insert(imp, f);
    }
    let get = |imp: &str, key: &str| -> Option<f64> { best(data.get(imp)?, row_of(key)?) };

    let (model, cores) = cpu_model();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Benchmarks: Mukan P2P beside Go CometBFT v0.38.25 and v0.40.0\n"
    );
    let _ = writeln!(
        md,
        "Written by `{}` on {}. Every figure is the best of {runs} runs \
         (highest rate, lowest time / memory / CPU), the three implementations interleaved row by row \
         on the same machine: {model}, {cores} logical CPUs (from /proc/cpuinfo), \
         shared with other work, so absolute figures drift; the ratios are what count. \
         Loopback TCP only. {}\n",
        args.command, args.date, args.go_versions
    );
    let _ = writeln!(
        md,
        "The workloads are described in `bench-suite/README.md`; the Go columns are the same \
         program (`bench-suite/go/src`) built against each version.\n"
    );
    let _ = writeln!(
        md,
        "| figure | unit | Rust | Go v0.38.25 | Go v0.40.0 | Rust ÷ v0.38 | Rust ÷ v0.40 |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|");
    for r in ROWS {
        let cell = |imp: &str| {
            get(imp, r.key).map_or_else(
                || {
                    if imp == "rust" && r.key.starts_with("bc_") {
                        "pending switch".to_string()
                    } else {
                        "—".to_string()
                    }
                },
                fmt_value,
            )
        };
        let ratio = |imp: &str| match (get("rust", r.key), get(imp, r.key)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "—".to_string(),
        };
        let dir = if r.key == "ab_size" {
            ""
        } else if r.higher_is_better {
            " (higher is better)"
        } else {
            " (lower is better)"
        };
        let _ = writeln!(
            md,
            "| {}{dir} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.unit,
            cell("rust"),
            cell("go38"),
            cell("go40"),
            ratio("go38"),
            ratio("go40")
        );
    }

    let _ = writeln!(md, "\n## Targets of issue 11\n");
    let _ = writeln!(md, "| target | measured | verdict |");
    let _ = writeln!(md, "|---|---|---|");
    for t in TARGETS {
        let (measured, verdict) = match (get("rust", t.key), get(t.against_impl, t.against_key)) {
            (Some(a), Some(b)) if b > 0.0 => {
                let q = a / b;
                let met = if t.higher_is_better {
                    q >= t.ratio
                } else {
                    q <= t.ratio
                };
                let verdict = if met {
                    "met".to_string()
                } else if t.higher_is_better {
                    format!("missed: {:.0}% of the target", 100.0 * q / t.ratio)
                } else {
                    format!("missed: {:.1}× the allowed", q / t.ratio)
                };
                (
                    format!("{q:.2}× ({} vs {})", fmt_value(a), fmt_value(b)),
                    verdict,
                )
            }
            _ => ("—".to_string(), "not measured".to_string()),
        };
        let _ = writeln!(md, "| {} | {measured} | {verdict} |", t.what);
    }
    for (what, key, limit) in [
        ("lone 100 B p99 ≤ 1 ms", "lat_p99_us", 1000.0),
        ("memory per idle peer ≤ 32 KiB", "mem_per_peer_kib", 32.0),
    ] {
        let (measured, verdict) = get("rust", key).map_or_else(
            || ("—".to_string(), "not measured".to_string()),
            |v| {
                let verdict = if v <= limit {
                    "met".to_string()
                } else {
                    format!("missed: {:.1}× the limit", v / limit)
                };
                (fmt_value(v), verdict)
            },
        );
        let _ = writeln!(md, "| {what} | {measured} | {verdict} |");
    }

    if let Some(notes) = &args.notes
        && let Ok(text) = std::fs::read_to_string(notes)
    {
        md.push('\n');
        md.push_str(&text);
    }
    if let Err(e) = std::fs::write(&args.out, md) {
        eprintln!("writing {}: {e}", args.out.display());
        return 1;
    }
    0
}
