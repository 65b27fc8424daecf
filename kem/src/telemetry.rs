//! Process-wide logging setup. Logs go to stderr; stdout carries only the machine-readable
//! `kem:` announcement lines (bound addresses, readiness) that scripts and tests parse.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber (text or JSON) with the configured filter.
pub fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.log_level)
        .map_err(|e| anyhow::anyhow!("invalid log filter {:?} (KEM_LOG / --log-level): {e}", settings.log_level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
