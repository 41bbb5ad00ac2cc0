//! `mukan-load`: the load figures L1–L10 of the reliability plan (RELIABILITY.md), run on loopback against the
//! real crates (a `mukan-switch` over `TcpTransport` as the node under load; peers built
//! from `mukan-secret-conn` and `mukan-mconn`, each bound to its own 127.x source address).
//!
//! ```text
//! mukan-load <l1|l2|l3|l4|l5|l6|l7|l8|l9|l10|b7|c10|all> [--quick | --full] [--peers N] [--secs S]
//!            [--messages N] [--rate R]
//! ```
//!
//! Every run prints a results table (figure, target, measured, status). Correctness rows
//! (nothing lost, duplicated, reordered or corrupted; every handshake done; no disconnect;
//! counts back to their baseline) print `PASS` or `FAIL`, and a `FAIL` makes the exit
//! status nonzero. Timing rows print `PASS` or `MISS`: a miss is reported, never a failure. See
//! `load/README.md` for the scenarios and the figures measured.

#![allow(
    clippy::unwrap_used,
    reason = "a load driver: a failed setup step (bind, runtime) should abort the run loudly"
)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "figures are printed as floats"
)]

mod budget;
mod evil;
mod flood;
mod net;
mod scenarios;

use std::time::Duration;

/// Sizes of a run: the CI default, or the figure's full size; each overridable.
#[derive(Clone, Copy, Debug)]
struct Opts {
    full: bool,
    peers: Option<usize>,
    secs: Option<u64>,
    messages: Option<u64>,
    rate: Option<u64>,
}

impl Opts {
    /// `quick` unless `--full`, with any override applied.
    fn peers(&self, quick: usize, full: usize) -> usize {
        self.peers.unwrap_or(if self.full { full } else { quick })
    }
    fn secs(&self, quick: u64, full: u64) -> u64 {
        self.secs.unwrap_or(if self.full { full } else { quick })
    }
    fn messages(&self, quick: u64, full: u64) -> u64 {
        self.messages
            .unwrap_or(if self.full { full } else { quick })
    }
    fn rate(&self, quick: u64, full: u64) -> u64 {
        self.rate.unwrap_or(if self.full { full } else { quick })
    }
}

/// How a row is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A correctness criterion: a failure fails the run.
    Correct,
    /// A timing or size target: a miss is printed, never fails the run.
    Target,
    /// A figure without a target.
    Info,
}

/// One line of the results table.
#[derive(Clone, Debug)]
struct Row {
    figure: String,
    target: String,
    measured: String,
    ok: bool,
    kind: Kind,
}

/// The rows of a run.
#[derive(Debug, Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn push(&mut self, kind: Kind, figure: &str, target: &str, measured: String, ok: bool) {
        eprintln!("  {figure}: {measured}");
        self.rows.push(Row {
            figure: figure.to_owned(),
            target: target.to_owned(),
            measured,
            ok,
            kind,
        });
    }
    fn correct(&mut self, figure: &str, target: &str, measured: String, ok: bool) {
        self.push(Kind::Correct, figure, target, measured, ok);
    }
    fn target(&mut self, figure: &str, target: &str, measured: String, ok: bool) {
        self.push(Kind::Target, figure, target, measured, ok);
    }
    fn info(&mut self, figure: &str, measured: String) {
        self.push(Kind::Info, figure, "-", measured, true);
    }

    fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.kind == Kind::Correct && !r.ok)
    }

    fn print(&self) {
        let w0 = self.rows.iter().map(|r| r.figure.len()).max().unwrap_or(6);
        let w1 = self.rows.iter().map(|r| r.target.len()).max().unwrap_or(6);
        let w2 = self
            .rows
            .iter()
            .map(|r| r.measured.len())
            .max()
            .unwrap_or(8);
        println!(
            "| {:w0$} | {:w1$} | {:w2$} | status |",
            "figure", "target", "measured"
        );
        println!(
            "|{}|{}|{}|--------|",
            "-".repeat(w0 + 2),
            "-".repeat(w1 + 2),
            "-".repeat(w2 + 2)
        );
        for r in &self.rows {
            let status = match (r.kind, r.ok) {
                (Kind::Info, _) => "-",
                (_, true) => "PASS",
                (Kind::Correct, false) => "FAIL",
                (Kind::Target, false) => "MISS",
            };
            println!(
                "| {:w0$} | {:w1$} | {:w2$} | {status:6} |",
                r.figure, r.target, r.measured
            );
        }
    }
}

const SCENARIOS: &[&str] = &[
    "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9", "l10", "b7", "c10",
];

fn usage() -> i32 {
    eprintln!(
        "usage: mukan-load <l1|l2|l3|l4|l5|l6|l7|l8|l9|l10|b7|c10|all> [--quick|--full] [--peers N] [--secs S] \
         [--messages N] [--rate R]"
    );
    2
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("l3-client") {
        std::process::exit(scenarios::l3_client(&args[1..]));
    }
    std::process::exit(run(&args));
}

fn run(args: &[String]) -> i32 {
    let Some(cmd) = args.first() else {
        return usage();
    };
    let mut opts = Opts {
        full: false,
        peers: None,
        secs: None,
        messages: None,
        rate: None,
    };
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let mut num = || {
            it.next()
                .and_then(|v| v.replace('_', "").parse::<u64>().ok())
        };
        match a.as_str() {
            "--quick" => opts.full = false,
            "--full" => opts.full = true,
            "--peers" => match num() {
                Some(v) => opts.peers = Some(v as usize),
                None => return usage(),
            },
            "--secs" => match num() {
                Some(v) => opts.secs = Some(v),
                None => return usage(),
            },
            "--messages" => match num() {
                Some(v) => opts.messages = Some(v),
                None => return usage(),
            },
            "--rate" => match num() {
                Some(v) => opts.rate = Some(v),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let list: Vec<&str> = if cmd == "all" {
        SCENARIOS.to_vec()
    } else if SCENARIOS.contains(&cmd.as_str()) {
        vec![cmd.as_str()]
    } else {
        return usage();
    };
    // Every run ends by itself: a watchdog bounds the whole process.
    let budget = if opts.full { 3 * 3600 } else { 900 };
    let budget = budget + opts.secs.unwrap_or(0) * 3;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(budget));
        eprintln!("mukan-load: watchdog: still running after {budget} s, exiting");
        std::process::exit(3);
    });
    let nofile = net::raise_nofile(65_536);
    eprintln!("RLIMIT_NOFILE soft limit: {nofile}");
    let mut report = Report::default();
    for s in list {
        let started = std::time::Instant::now();
        eprintln!("== {s}");
        match s {
            "l1" => scenarios::l1(opts, &mut report),
            "l2" => scenarios::l2(opts, &mut report),
            "l3" => scenarios::l3(opts, &mut report),
            "l4" => scenarios::l4(opts, &mut report),
            "l5" => scenarios::l5(opts, &mut report),
            "l6" => scenarios::l6(opts, &mut report),
            "l7" => scenarios::l7(opts, &mut report),
            "l8" => scenarios::l8(opts, &mut report),
            "l9" => budget::l9(opts, &mut report),
            "l10" => budget::l10(opts, &mut report),
            "b7" => flood::b7(opts, &mut report),
            "c10" => flood::c10(opts, &mut report),
            _ => return usage(),
        }
        eprintln!("== {s} took {:.1} s", started.elapsed().as_secs_f64());
    }
    report.print();
    if report.failed() {
        println!("mukan-load: a correctness criterion FAILED");
        1
    } else {
        println!("mukan-load: every correctness criterion passed (MISS = timing target missed)");
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correctness_failure_fails_the_run_and_a_timing_miss_does_not() {
        let mut r = Report::default();
        r.target("t", "< 1 ms", "2 ms".into(), false);
        r.info("i", "x".into());
        assert!(!r.failed());
        r.correct("c", "0", "1".into(), false);
        assert!(r.failed());
    }
}
