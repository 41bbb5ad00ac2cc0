//! CometBFT's log levels (`info`, `"p2p:debug,*:error"`) as `tracing` filter directives.

/// The crates (tracing targets) behind each CometBFT module name.
fn targets(module: &str) -> &'static [&'static str] {
    match module {
        "p2p" => &[
            "mukan_transport",
            "mukan_switch",
            "mukan_mconn",
            "mukan_secret_conn",
            "mukan_p2p::run",
        ],
        "pex" | "addrbook" => &["mukan_pex", "mukan_addrbook"],
        "main" | "node" => &["mukan_p2p"],
        "rpc" | "rpc-server" => &["mukan_p2p::rpc"],
        "metrics" => &["mukan_p2p::metrics"],
        "crawl" => &["mukan_p2p::crawl"],
        // Modules of a full node (consensus, mempool, state, …) have nothing here.
        _ => &[],
    }
}

fn level(word: &str) -> Result<&'static str, String> {
    Ok(match word {
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" => "error",
        "trace" => "trace",
        "none" => "off",
        other => {
            return Err(format!(
                "unknown log level {other:?} (expected debug, info, warn, error or none)"
            ));
        }
    })
}

/// Translates a CometBFT log level into `tracing` filter directives.
///
/// # Errors
/// A message naming the bad part.
pub fn parse_level(spec: &str) -> Result<String, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok("info".into());
    }
    if !spec.contains(':') {
        return level(spec).map(str::to_owned);
    }
    let mut default = "info";
    let mut directives = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (module, lvl) = part
            .split_once(':')
            .ok_or_else(|| format!("{part:?}: expected module:level"))?;
        let lvl = level(lvl.trim())?;
        let module = module.trim();
        if module == "*" {
            default = lvl;
        } else {
            for t in targets(module) {
                directives.push(format!("{t}={lvl}"));
            }
        }
    }
    let mut out = vec![default.to_owned()];
    out.extend(directives);
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cometbft_levels_translate() {
        assert_eq!(parse_level("info").unwrap(), "info");
        assert_eq!(parse_level("none").unwrap(), "off");
        assert_eq!(
            parse_level("p2p:debug,*:error").unwrap(),
            "error,mukan_transport=debug,mukan_switch=debug,mukan_mconn=debug,mukan_secret_conn=debug,mukan_p2p::run=debug"
        );
        assert_eq!(parse_level("consensus:debug,*:info").unwrap(), "info");
        assert!(parse_level("p2p:loud").is_err());
        assert!(parse_level("verbose").is_err());
    }
}
