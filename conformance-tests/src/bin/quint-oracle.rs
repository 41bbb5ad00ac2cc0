//! `quint-oracle`: replays recorded reactor-call traces in the spec's Quint model.
//!
//! ```text
//! quint-oracle --spec reactor.qnt --quint node_modules/.bin/quint --traces DIR [--work DIR]
//! ```
//!
//! Reads every `*.trace` in `--traces` (written by `mukan_reactor_api::testing::CallTrace`)
//! and writes, beside a copy of `--spec` (CometBFT's `spec/p2p/reactor-api/reactor.qnt`, taken
//! from the Go module at test time), modules of ours that import it: `traces0.qnt` and
//! `traces1.qnt`, one run per trace and per accepted prefix of a negative control, and
//! `controls.qnt`, the negative controls (`mukan_conformance_tests::quint::controls`, cut
//! from the longest trace that has every pattern). Runs `quint test` on the three at once.
//! Exits 0 when every trace and prefix is accepted and every control is refused by the model
//! exactly at its wrong call (the replay stops there: that action is not enabled); otherwise
//! prints what went wrong and exits 1. `conformance-tests/quint/run-oracle.sh`
//! records the traces and calls this.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use mukan_conformance_tests::quint::{self, Control, Verdicts};
use mukan_reactor_api::testing::{CallTrace, TraceEvent};

/// Quint processes checking the accepted runs at once (plus one for the controls).
const JOBS: usize = 2;

struct Args {
    spec: PathBuf,
    quint: PathBuf,
    traces: PathBuf,
    work: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut spec = None;
    let mut quint = None;
    let mut traces = None;
    let mut work = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let slot = match flag.as_str() {
            "--spec" => &mut spec,
            "--quint" => &mut quint,
            "--traces" => &mut traces,
            "--work" => &mut work,
            _ => return Err(format!("unknown flag {flag}")),
        };
        *slot = Some(PathBuf::from(value));
    }
    let traces: PathBuf = traces.ok_or("--traces is required")?;
    Ok(Args {
        spec: spec.ok_or("--spec is required")?,
        quint: quint.ok_or("--quint is required")?,
        work: work.unwrap_or_else(|| traces.join("quint")),
        traces,
    })
}

fn read_traces(dir: &Path) -> Result<Vec<(String, Vec<TraceEvent>)>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let label = f.file_name().map(|n| n.to_string_lossy().into_owned());
            CallTrace::read(f)
                .map(|events| (label.unwrap_or_default(), events))
                .map_err(|e| format!("{}: {e}", f.display()))
        })
        .collect()
}

/// Runs `quint test` on `file`; returns its verdicts, exit status and output.
fn quint_test(quint: &Path, file: &Path) -> Result<(Verdicts, bool, String), String> {
    let out = Command::new(quint)
        .arg("test")
        .arg(file)
        .args([
            "--backend",
            "typescript",
            "--max-samples",
            "1",
            "--match",
            "Test$",
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", quint.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((quint::verdicts(&text), out.status.success(), text))
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn run(args: &Args) -> Result<bool, String> {
    let traces = read_traces(&args.traces)?;
    if traces.is_empty() {
        return Err(format!("no *.trace file in {}", args.traces.display()));
    }
    // The controls are cut from the longest trace that has every pattern they need.
    let (base_label, controls): (&str, Vec<Control>) = traces
        .iter()
        .filter_map(|(l, t)| quint::controls(t).ok().map(|c| (l.as_str(), c, t.len())))
        .max_by_key(|(l, _, n)| (*n, std::cmp::Reverse(*l)))
        .map(|(l, c, _)| (l, c))
        .ok_or("no trace has every pattern the negative controls are cut from")?;
    std::fs::create_dir_all(&args.work).map_err(|e| format!("{}: {e}", args.work.display()))?;
    std::fs::copy(&args.spec, args.work.join("reactor.qnt"))
        .map_err(|e| format!("{}: {e}", args.spec.display()))?;

    let mut good = traces.clone();
    for c in &controls {
        good.push((
            format!("accepted prefix of control {}", c.name),
            c.prefix.clone(),
        ));
    }
    let bad: Vec<(String, Vec<TraceEvent>)> = controls
        .iter()
        .map(|c| (format!("control {} (from {base_label})", c.name), c.trace()))
        .collect();
    // The accepted runs are split into `JOBS` modules of about equal size, checked by as many
    // quint processes at once (one core each), beside the controls'.
    let mut shares: Vec<Vec<usize>> = vec![Vec::new(); JOBS];
    let mut sizes = [0usize; JOBS];
    let mut order: Vec<usize> = (0..good.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(good[i].1.len()));
    for i in order {
        let k = (0..JOBS).min_by_key(|&k| sizes[k]).unwrap_or(0);
        sizes[k] += good[i].1.len();
        shares[k].push(i);
    }
    let mut files = Vec::new();
    for (k, share) in shares.iter().enumerate() {
        let traces_k: Vec<(String, Vec<TraceEvent>)> =
            share.iter().map(|&i| good[i].clone()).collect();
        let file = args.work.join(format!("traces{k}.qnt"));
        std::fs::write(&file, quint::module(&format!("traces{k}"), &traces_k))
            .map_err(|e| e.to_string())?;
        files.push(file);
    }
    let bad_file = args.work.join("controls.qnt");
    std::fs::write(&bad_file, quint::module("controls", &bad)).map_err(|e| e.to_string())?;
    let events: usize = traces.iter().map(|(_, t)| t.len()).sum();

    let t0 = Instant::now();
    let (results, bad_result) = std::thread::scope(|scope| {
        let runs: Vec<_> = files
            .iter()
            .map(|f| scope.spawn(|| quint_test(&args.quint, f)))
            .collect();
        let bad = scope.spawn(|| quint_test(&args.quint, &bad_file));
        let results: Vec<_> = runs
            .into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err("quint thread panicked".into()))
            })
            .collect();
        (
            results,
            bad.join()
                .unwrap_or_else(|_| Err("quint thread panicked".into())),
        )
    });
    let secs = t0.elapsed().as_secs_f64();
    let mut pass = true;
    let mut accepted = 0;
    for ((share, file), result) in shares.iter().zip(&files).zip(results) {
        let (v, ok, out) = result?;
        let mut all = ok;
        for (j, &i) in share.iter().enumerate() {
            if v.passed.contains(&quint::test_name("trace", j)) {
                accepted += 1;
            } else {
                all = false;
                println!(
                    "NOT ACCEPTED: {} ({} in {})",
                    good[i].0,
                    quint::test_name("trace", j),
                    file.display()
                );
            }
        }
        if !all {
            pass = false;
            println!("quint test {} said:\n{}", file.display(), tail(&out, 40));
        }
    }
    println!(
        "quint-oracle: {accepted}/{} runs accepted ({} recorded traces, {events} calls, and {} control prefixes; {JOBS} quint processes, {secs:.1} s)",
        good.len(),
        traces.len(),
        controls.len()
    );

    let (v, _, out) = bad_result?;
    let mut refused = 0;
    for (i, c) in controls.iter().enumerate() {
        let name = quint::test_name("trace", i);
        // The model must accept the whole prefix and refuse the wrong call itself: the replay
        // stops at iteration prefix + 1 (1-based).
        let at = c.prefix.len() + 1;
        if v.refused.get(&name) == Some(&Some(at)) {
            refused += 1;
            println!(
                "  refused as it must be: {} at call #{at} ({})",
                c.name, c.wrong
            );
        } else if let Some(other) = v.refused.get(&name) {
            pass = false;
            println!(
                "CONTROL refused at the wrong call: {} at {other:?}, not #{at}",
                c.name
            );
        } else {
            pass = false;
            let what = if v.passed.contains(&name) {
                "ACCEPTED"
            } else {
                "not refused by the model"
            };
            println!("CONTROL {what}: {} (last call: {})", c.name, c.wrong);
        }
    }
    if refused != controls.len() {
        println!(
            "quint test {} said:\n{}",
            bad_file.display(),
            tail(&out, 40)
        );
    }
    println!(
        "quint-oracle: {refused}/{} negative controls refused (cut from {base_label})",
        controls.len()
    );
    Ok(pass)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("quint-oracle: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("quint-oracle: {e}");
            ExitCode::FAILURE
        }
    }
}
