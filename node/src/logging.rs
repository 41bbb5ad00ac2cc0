//! Logs through `tracing`, configured as CometBFT spells it: `--log_level info` or
//! `--log_level "p2p:debug,*:error"`, `--log_format plain|json`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, parse_level};

/// Installs the global subscriber (stderr). Called once, by `main`.
pub(crate) fn init(spec: &str, format: LogFormat) -> Result<(), String> {
    let filter = EnvFilter::try_new(parse_level(spec)?).map_err(|e| e.to_string())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cometbft_levels_are_valid_filters() {
        for spec in ["info", "p2p:debug,*:error", "pex:none,main:info"] {
            EnvFilter::try_new(parse_level(spec).unwrap()).unwrap();
        }
    }
}
