//! `addrbook.json` interop helpers for `go/run-interop.sh`, built on `mukan-addrbook`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use mukan_addrbook::{AddrBook, Config};
use mukan_reactor_api::{AddressBook, NetAddress};
use rand::SeedableRng;

fn flag(args: &[String], name: &str) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == name {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&format!("{name}=")) {
            return Some(v.to_owned());
        }
    }
    None
}

fn book() -> AddrBook {
    // Loopback addresses are what the interop suite uses: not strict.
    AddrBook::new(
        Config::with_strict(false),
        rand_chacha::ChaCha8Rng::from_entropy(),
    )
}

/// `addrbook-dump --file F`: loads a book and prints `new|old id@ip:port` per entry,
/// sorted; exit 1 if the file does not load.
pub(crate) fn dump(args: &[String]) -> ExitCode {
    let Some(file) = flag(args, "--file") else {
        eprintln!("addrbook-dump: --file is required");
        return ExitCode::from(2);
    };
    let mut book = book();
    match book.load(&PathBuf::from(&file), SystemTime::now()) {
        Ok(report) if report.found => {}
        Ok(_) => {
            eprintln!("addrbook-dump: {file} does not exist");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("addrbook-dump: {e}");
            return ExitCode::from(1);
        }
    }
    let mut lines: Vec<String> = book
        .addresses()
        .map(|a| {
            let kind = if book.is_good(&a) { "old" } else { "new" };
            format!("{kind} {a}")
        })
        .collect();
    lines.sort();
    for line in lines {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// `addrbook-write --file F --src ID@IP:PORT --addrs A,B,… [--good ID,…]
/// [--unverified A,…] [--ban A,…]`: a fresh book with those addresses (the `--good` ones
/// moved to old buckets, the `--unverified` ones added as unverified self-adverts, the
/// `--ban` ones banned without entering the table), saved to F.
pub(crate) fn write(args: &[String]) -> ExitCode {
    let (Some(file), Some(src), Some(addrs)) = (
        flag(args, "--file"),
        flag(args, "--src"),
        flag(args, "--addrs"),
    ) else {
        eprintln!("addrbook-write: --file, --src and --addrs are required");
        return ExitCode::from(2);
    };
    let parse = |s: &str| {
        s.trim()
            .parse::<NetAddress>()
            .map_err(|e| format!("{s}: {e}"))
    };
    let result = (|| {
        let src = parse(&src)?;
        let now = SystemTime::now();
        let mut book = book();
        for a in addrs.split(',').filter(|a| !a.trim().is_empty()) {
            book.add_address(parse(a)?, src, now)
                .map_err(|e| format!("{a}: {e}"))?;
        }
        for id in flag(args, "--good").unwrap_or_default().split(',') {
            if let Ok(id) = id.trim().parse() {
                book.mark_good(id, now);
            }
        }
        let list = |name: &str| flag(args, name).unwrap_or_default();
        for a in list("--unverified")
            .split(',')
            .filter(|a| !a.trim().is_empty())
        {
            book.add_unverified_address(parse(a)?, src, now)
                .map_err(|e| format!("{a}: {e}"))?;
        }
        for a in list("--ban").split(',').filter(|a| !a.trim().is_empty()) {
            book.mark_bad(&parse(a)?, std::time::Duration::from_secs(24 * 3600), now);
        }
        book.save(&PathBuf::from(&file))
            .map_err(|e| e.to_string())?;
        Ok::<usize, String>(book.size())
    })();
    match result {
        Ok(n) => {
            println!("{n}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("addrbook-write: {e}");
            ExitCode::from(1)
        }
    }
}
