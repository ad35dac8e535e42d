//! `shopify-sim`: runs the simulator until SIGTERM or ctrl-c.

use std::path::PathBuf;

use shopify_sim::{RunningSimulator, SimConfig, SimError};

const USAGE: &str = "usage: shopify-sim [--port 0|N] [--schema PATH] [--token T] [--shop DOMAIN] \
                     [--bucket N] [--restore-rate N] [--location NAME]... [--webhook-secret S] \
                     [--webhook-attempts N] [--webhook-retry-ms N] [--webhook-timeout-ms N] \
                     [--webhook-failure-limit N] [--bulk-concurrency N] [--bulk-start-ms N] \
                     [--bulk-line-ms N] [--bulk-max-file-bytes N]";

fn parse_args(args: impl Iterator<Item = String>) -> Result<(SimConfig, u16), SimError> {
    let mut config = SimConfig::default();
    let mut port = 0;
    let mut locations = Vec::new();
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(SimError::Usage(USAGE.to_owned()));
        }
        let value = args
            .next()
            .ok_or_else(|| SimError::Usage(format!("{flag} needs a value\n{USAGE}")))?;
        let number = |value: &str| {
            value
                .parse::<f64>()
                .map_err(|_| SimError::Usage(format!("{flag} takes a number, not {value}")))
        };
        fn whole<T: std::str::FromStr>(value: &str) -> Result<T, SimError> {
            value
                .parse::<T>()
                .map_err(|_| SimError::Usage(format!("expected a whole number, not {value}")))
        }
        match flag.as_str() {
            "--port" => {
                port = value
                    .parse()
                    .map_err(|_| SimError::Usage(format!("--port takes a port, not {value}")))?
            }
            "--schema" => config.schema_path = PathBuf::from(value),
            "--token" => config.access_token = value,
            "--shop" => config.shop_domain = value,
            "--bucket" => config.bucket_size = number(&value)?,
            "--restore-rate" => config.restore_rate = number(&value)?,
            "--location" => locations.push(value),
            "--webhook-secret" => config.webhook_secret = value,
            "--webhook-attempts" => config.webhook_delivery.attempts = whole::<u32>(&value)?.max(1),
            "--webhook-retry-ms" => config.webhook_delivery.retry_delay_ms = whole(&value)?,
            "--webhook-timeout-ms" => config.webhook_delivery.timeout_ms = whole(&value)?,
            "--webhook-failure-limit" => config.webhook_delivery.failure_limit = whole(&value)?,
            "--bulk-concurrency" => config.bulk.concurrency = whole::<usize>(&value)?.max(1),
            "--bulk-start-ms" => config.bulk.start_delay_ms = whole(&value)?,
            "--bulk-line-ms" => config.bulk.line_ms = whole(&value)?,
            "--bulk-max-file-bytes" => config.bulk.max_file_bytes = whole(&value)?,
            other => return Err(SimError::Usage(format!("unknown flag {other}\n{USAGE}"))),
        }
    }
    if !locations.is_empty() {
        config.locations = locations;
    }
    Ok((config, port))
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let (config, port) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("{error}");
            return std::process::ExitCode::from(2);
        }
    };
    let simulator = match RunningSimulator::start_on(config, port).await {
        Ok(simulator) => simulator,
        Err(error) => {
            tracing::error!(%error, "the simulator could not start");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("listening on {}", simulator.base_url());
    terminated().await;
    tracing::info!("shutting down");
    simulator.shutdown().await;
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|arg| (*arg).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn webhook_flags_set_the_secret_and_the_delivery_policy() {
        let (config, _) = parse_args(args(&[
            "--webhook-secret",
            "shpss_local",
            "--webhook-attempts",
            "5",
            "--webhook-retry-ms",
            "50",
            "--webhook-timeout-ms",
            "1000",
            "--webhook-failure-limit",
            "3",
        ]))
        .expect("flags parse");
        assert_eq!(config.webhook_secret, "shpss_local");
        let delivery = &config.webhook_delivery;
        assert_eq!(
            (
                delivery.attempts,
                delivery.retry_delay_ms,
                delivery.timeout_ms,
                delivery.failure_limit
            ),
            (5, 50, 1000, 3)
        );
        assert!(parse_args(args(&["--webhook-attempts", "many"])).is_err());
    }

    #[test]
    fn bulk_flags_set_the_limits_and_the_pace() {
        let (config, _) = parse_args(args(&[
            "--bulk-concurrency",
            "1",
            "--bulk-start-ms",
            "0",
            "--bulk-line-ms",
            "5",
            "--bulk-max-file-bytes",
            "1024",
        ]))
        .expect("flags parse");
        let bulk = &config.bulk;
        assert_eq!(
            (
                bulk.concurrency,
                bulk.start_delay_ms,
                bulk.line_ms,
                bulk.max_file_bytes
            ),
            (1, 0, 5, 1024)
        );
    }

    #[test]
    fn the_default_secret_is_the_simulators() {
        let (config, _) = parse_args(args(&[])).expect("no flags");
        assert_eq!(config.webhook_secret, "shpss_simulator_secret");
    }
}
