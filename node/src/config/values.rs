//! The syntaxes of configuration values: Go durations, comma lists, host:port.

use std::net::SocketAddr;
use std::time::Duration;

use mukan_reactor_api::HostPort;

/// Parses `[tcp://]host:port` with `mukan-reactor-api`'s parser ([`HostPort::parse`]);
/// `allow_empty_host` for `:26660`. Only `tcp://` is accepted as a protocol.
///
/// # Errors
/// A message naming the value and the problem.
pub fn parse_host_port(s: &str, allow_empty_host: bool) -> Result<HostPort, String> {
    if let Some((proto, _)) = s.split_once("://") {
        if proto != "tcp" {
            return Err(format!(
                "{s:?}: only tcp:// addresses are supported, not {proto}://"
            ));
        }
    }
    HostPort::parse(s, allow_empty_host).map_err(|e| format!("{s:?}: {e} (expected host:port)"))
}

/// Resolves `hp` (the first address; an empty host binds every interface, `0.0.0.0`).
///
/// # Errors
/// The lookup error, or none found.
pub async fn resolve(hp: &HostPort) -> std::io::Result<SocketAddr> {
    let lookup = if hp.host.is_empty() {
        format!("0.0.0.0:{}", hp.port)
    } else {
        hp.to_string()
    };
    tokio::net::lookup_host(lookup.as_str())
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{lookup} did not resolve")))
}

/// Parses a Go duration (`"0s"`, `"100ms"`, `"1h2m3.5s"`, `"10us"`).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (like \"100ms\", \"3s\", \"1m30s\")");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("{s:?}: must not be negative"));
    }
    let s2 = s.strip_prefix('+').unwrap_or(s);
    if s2.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s2;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(format!("{s:?}: too large"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration as Go does for the simple values we write (`0s`, `100ms`, `3s`).
pub fn format_go_duration(d: Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else if d.subsec_nanos() == 0 {
        let s = d.as_secs();
        if s >= 60 && s % 60 == 0 {
            format!("{}m0s", s / 60)
        } else {
            format!("{s}s")
        }
    } else if d.as_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// Go `splitAndTrimEmpty(s, ",", " ")`.
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_go_duration("100ms").unwrap(),
            Duration::from_millis(100)
        );
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_go_duration("10us").unwrap(),
            Duration::from_micros(10)
        );
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("s").is_err());
        for d in [0, 10, 100, 3000, 20_000, 60_000] {
            let d = Duration::from_millis(d);
            assert_eq!(parse_go_duration(&format_go_duration(d)).unwrap(), d);
        }
    }

    #[test]
    fn host_ports() {
        assert_eq!(
            parse_host_port(":26660", true).unwrap(),
            HostPort {
                host: String::new(),
                port: 26660
            }
        );
        assert!(parse_host_port(":26660", false).is_err());
        assert!(parse_host_port("udp://1.2.3.4:5", false).is_err());
        assert_eq!(parse_host_port("tcp://[::1]:5", false).unwrap().host, "::1");
        assert_eq!(
            parse_host_port("localhost:5", false).unwrap().to_string(),
            "localhost:5"
        );
        assert!(parse_host_port("::1:5", false).is_err());
        assert!(parse_host_port("a b:5", false).is_err());
    }
}
