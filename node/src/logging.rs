//! Log output: `tracing` events to stderr, as pretty text or one JSON object
//! per line, filtered by `RUST_LOG` (default `info`).

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset or empty.
pub const FILTER_DEFAULT: &str = "info";

/// The filter `RUST_LOG` asks for; a malformed value is an error naming it
/// rather than silently logging less than the operator asked for.
#[cfg(test)]
pub fn filter(rust_log: Option<&str>) -> anyhow::Result<EnvFilter> {
    filter_or(rust_log, FILTER_DEFAULT)
}

fn filter_or(rust_log: Option<&str>, default: &str) -> anyhow::Result<EnvFilter> {
    let directives = rust_log
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(default);
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| anyhow::anyhow!("environment variable RUST_LOG={directives:?}: {e}"))
}

/// Installs the process-wide subscriber. Fails if `RUST_LOG` is malformed or
/// a subscriber is already installed.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    init_with_default(format, FILTER_DEFAULT)
}

/// [`init`] with another filter for when `RUST_LOG` is unset (`ferrisdb demo`
/// keeps the node quiet unless asked).
pub fn init_with_default(format: LogFormat, default: &str) -> anyhow::Result<()> {
    let filter = filter_or(std::env::var("RUST_LOG").ok().as_deref(), default)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("install the log subscriber: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_is_parsed_and_defaults_to_info() {
        assert_eq!(filter(None).expect("default").to_string(), "info");
        assert_eq!(filter(Some("  ")).expect("empty").to_string(), "info");
        let f = filter(Some("warn,ferrisdb=debug")).expect("valid");
        assert!(f.to_string().contains("ferrisdb=debug"), "{f}");
        let e = filter(Some("ferrisdb=loud"))
            .expect_err("bad level")
            .to_string();
        assert!(
            e.starts_with("environment variable RUST_LOG=\"ferrisdb=loud\": "),
            "{e}"
        );
    }

    #[test]
    fn init_installs_once() {
        // The only test in this binary that installs the global subscriber.
        init(LogFormat::Json).expect("first init");
        let e = init(LogFormat::Pretty)
            .expect_err("second init")
            .to_string();
        assert!(e.starts_with("install the log subscriber"), "{e}");
    }
}
