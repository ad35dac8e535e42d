//! Logs as data: JSON lines in Lambda (one field per fact, the span's ids
//! included), readable text on a terminal.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing.
///
/// The level comes from `RUST_LOG` (default `info`). Output is JSON when
/// running in Lambda or when `LOG_FORMAT=json`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok()
        || std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}
