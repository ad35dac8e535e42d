//! Configuration from the environment, as SAM parameters (and their SSM or
//! Secrets Manager references) set it. See the README's configuration table.

use std::time::Duration;

use crate::shopify::{ClientConfig, RetryPolicy};
use crate::store::Tables;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} = {value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tables: Tables,
    pub shopify: ClientConfig,
    /// Sends S3 requests path-style, as a local S3 endpoint needs.
    pub s3_path_style: bool,
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or(ConfigError::Missing(name))
}

/// A variable one function needs beyond the common configuration, such as
/// `PULL_QUEUE_URL` or `SHOPIFY_WEBHOOK_SECRET`.
pub fn required_env(name: &'static str) -> Result<String, ConfigError> {
    required(name)
}

/// A whole number one function reads beyond the common configuration, such
/// as `CATALOG_MAX_RECEIVES` or `PUSH_JOB_THRESHOLD`.
pub fn number_env(name: &'static str, default: u64) -> Result<u64, ConfigError> {
    number(name, default)
}

fn number(name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            value,
            reason: "must be a whole number",
        }),
    }
}

impl Config {
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `CATALOG_TABLE` | the catalog table | required |
    /// | `SYNC_TABLE` | the sync table | required |
    /// | `SHOPIFY_API_BASE_URL` | send Shopify calls here instead of `https://<shop>` (local stack) | unset |
    /// | `SHOPIFY_RETRY_ATTEMPTS` | attempts for 5xx and network faults | 5 |
    /// | `SHOPIFY_RETRY_BASE_MS` / `SHOPIFY_RETRY_MAX_MS` | backoff base and cap | 250 / 10000 |
    /// | `SHOPIFY_TIMEOUT_MS` | one request's timeout | 30000 |
    /// | `S3_FORCE_PATH_STYLE` | path-style S3 addressing (local stack) | false |
    pub fn from_env() -> Result<Self, ConfigError> {
        let attempts = number("SHOPIFY_RETRY_ATTEMPTS", 5)?;
        if attempts == 0 {
            return Err(ConfigError::Invalid {
                name: "SHOPIFY_RETRY_ATTEMPTS",
                value: "0".into(),
                reason: "must be at least 1",
            });
        }
        Ok(Self {
            tables: Tables {
                catalog: required("CATALOG_TABLE")?,
                sync: required("SYNC_TABLE")?,
            },
            shopify: ClientConfig {
                base_url_override: var("SHOPIFY_API_BASE_URL"),
                retry: RetryPolicy {
                    max_attempts: attempts as u32,
                    base_delay: Duration::from_millis(number("SHOPIFY_RETRY_BASE_MS", 250)?),
                    max_delay: Duration::from_millis(number("SHOPIFY_RETRY_MAX_MS", 10_000)?),
                    ..RetryPolicy::default()
                },
                request_timeout: Duration::from_millis(number("SHOPIFY_TIMEOUT_MS", 30_000)?),
            },
            s3_path_style: var("S3_FORCE_PATH_STYLE").is_some_and(|v| v == "true" || v == "1"),
        })
    }
}

/// The AWS clients every function builds once at start-up.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// From the standard AWS environment (`AWS_REGION`, credentials, and
    /// `AWS_ENDPOINT_URL` for a local endpoint).
    pub async fn from_env(config: &Config) -> Self {
        let shared = aws_config::load_from_env().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.s3_path_style)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(&shared),
        }
    }
}
