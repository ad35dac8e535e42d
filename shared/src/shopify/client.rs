//! The Admin GraphQL transport: one POST per call, paced by the shop's bucket,
//! retried when a retry can help.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::error::{ShopifyError, Wait};
use super::operations::Operation;
use super::throttle::{Bucket, QueryCost};

/// The API version every document is written and validated against.
pub const API_VERSION: &str = "2026-07";

/// An Admin API access token. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the request header and the store; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(…)")
    }
}

/// One shop and the credentials to talk to it.
#[derive(Debug, Clone)]
pub struct Shop {
    pub domain: String,
    pub access_token: AccessToken,
}

/// How hard to try before giving up on a call.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts for 5xx and network faults, the first one included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// THROTTLED answers tolerated for one call; each waits as long as the
    /// bucket needs, so this only guards against a shop that never refills.
    pub max_throttled: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_throttled: 20,
        }
    }
}

impl RetryPolicy {
    /// Capped exponential backoff with full jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let cap = exp.min(self.max_delay);
        let millis = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Sends every shop's calls to this base URL instead of `https://{shop}`;
    /// the local stack points it at the Shopify simulator.
    pub base_url_override: Option<String>,
    pub retry: RetryPolicy,
    pub request_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url_override: None,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What the calls made so far cost; the push and the demo report it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CallStats {
    /// Answered calls (each counted once, whatever its retries).
    pub calls: u64,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    pub throttled: u64,
    pub retries: u64,
    pub requested_cost: f64,
    pub actual_cost: f64,
    /// Time spent waiting for the bucket or a backoff.
    pub waited_ms: u64,
    pub by_operation: BTreeMap<String, u64>,
    /// The lowest `currentlyAvailable` seen: the throttle headroom.
    pub lowest_available: Option<f64>,
}

impl CallStats {
    /// Calls that change the shop.
    pub fn write_calls(&self) -> u64 {
        self.by_operation
            .iter()
            .filter(|(name, _)| super::operations::is_mutation(name))
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Debug, Deserialize)]
struct GraphQlError {
    message: String,
    #[serde(default)]
    extensions: Option<GraphQlErrorExtensions>,
}

#[derive(Debug, Deserialize)]
struct GraphQlErrorExtensions {
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Option<Value>,
    #[serde(default)]
    extensions: Option<EnvelopeExtensions>,
}

#[derive(Debug, Deserialize)]
struct EnvelopeExtensions {
    #[serde(default)]
    cost: Option<QueryCost>,
}

/// The Shopify Admin GraphQL client. Cheap to clone; clones share pacing and
/// statistics.
#[derive(Clone)]
pub struct ShopifyClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
    learned_cost: Arc<Mutex<HashMap<&'static str, f64>>>,
    stats: Arc<Mutex<CallStats>>,
}

impl ShopifyClient {
    pub fn new(config: ClientConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("fibermade-sync/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            config: Arc::new(config),
            buckets: Arc::default(),
            learned_cost: Arc::default(),
            stats: Arc::default(),
        })
    }

    pub fn stats(&self) -> CallStats {
        lock(&self.stats).clone()
    }

    pub fn reset_stats(&self) {
        *lock(&self.stats) = CallStats::default();
    }

    fn endpoint(&self, shop: &Shop) -> String {
        let base = match &self.config.base_url_override {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None => format!("https://{}", shop.domain),
        };
        format!("{base}/admin/api/{API_VERSION}/graphql.json")
    }

    /// Runs one operation and returns its `data`, read as `T`.
    ///
    /// Waits for the shop's bucket before sending, waits out THROTTLED and
    /// 429, retries 5xx and network faults with capped, jittered backoff. A
    /// mutation is only retried when a repeat cannot apply it twice: every
    /// mutation this crate sends is an upsert by id or handle, or carries an
    /// idempotency key.
    #[tracing::instrument(name = "shopify_call", skip_all, fields(operation = op.name, shop = %shop.domain))]
    pub async fn execute<T: DeserializeOwned>(
        &self,
        shop: &Shop,
        op: &Operation,
        variables: Value,
    ) -> Result<T, ShopifyError> {
        let url = self.endpoint(shop);
        let body = serde_json::json!({
            "query": op.document,
            "operationName": op.name,
            "variables": variables,
        });
        let mut faults = 0u32;
        let mut throttled = 0u32;

        loop {
            let cost = self.estimate_cost(op);
            let wait = self.reserve(&shop.domain, cost);
            self.sleep(wait).await;

            lock(&self.stats).requests += 1;
            let outcome = self.send_once(shop, op, &url, &body).await;
            let wait = match outcome {
                Ok(Attempt::Done(data, cost)) => {
                    self.record_success(op, &shop.domain, cost.as_ref());
                    return serde_json::from_value(data).map_err(|e| ShopifyError::Decode {
                        operation: op.name,
                        message: e.to_string(),
                    });
                }
                Ok(Attempt::Throttled(cost)) => {
                    throttled += 1;
                    lock(&self.stats).throttled += 1;
                    if throttled > self.config.retry.max_throttled {
                        return Err(ShopifyError::Throttled {
                            operation: op.name,
                            attempts: throttled,
                        });
                    }
                    let wait = cost
                        .map(|c| {
                            self.observe(&shop.domain, &c);
                            Bucket::wait_for(&c.throttle_status, c.requested_query_cost)
                        })
                        .unwrap_or(Duration::from_secs(1));
                    tracing::warn!(
                        wait_ms = wait.as_millis() as u64,
                        "Shopify throttled the call; waiting for the bucket"
                    );
                    crate::metrics::shopify_throttled(&shop.domain, wait);
                    Wait::Throttled(wait)
                }
                Err(Failure::Permanent(error)) => {
                    self.refund(&shop.domain, cost);
                    return Err(error);
                }
                Err(Failure::Retryable {
                    message,
                    retry_after,
                }) => {
                    self.refund(&shop.domain, cost);
                    faults += 1;
                    if faults >= self.config.retry.max_attempts {
                        tracing::error!(attempts = faults, error = %message, "Shopify call failed; retries spent");
                        return Err(ShopifyError::Transient {
                            operation: op.name,
                            attempts: faults,
                            message,
                        });
                    }
                    tracing::warn!(attempt = faults, error = %message, "Shopify call failed; retrying");
                    match retry_after {
                        Some(after) => Wait::RetryAfter(after),
                        None => Wait::Backoff,
                    }
                }
            };

            lock(&self.stats).retries += 1;
            let pause = match wait {
                Wait::Throttled(d) | Wait::RetryAfter(d) => d,
                Wait::Backoff => self.config.retry.backoff(faults),
            };
            self.sleep(pause).await;
        }
    }

    async fn send_once(
        &self,
        shop: &Shop,
        op: &Operation,
        url: &str,
        body: &Value,
    ) -> Result<Attempt, Failure> {
        let response = self
            .http
            .post(url)
            .header("X-Shopify-Access-Token", shop.access_token.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| Failure::Retryable {
                message: describe_reqwest(&e),
                retry_after: None,
            })?;

        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|secs| Duration::from_secs_f64(secs.clamp(0.0, 60.0)));

        match status {
            200..=299 => {}
            401 | 403 => {
                return Err(Failure::Permanent(ShopifyError::Unauthorized {
                    shop: shop.domain.clone(),
                    status,
                }));
            }
            429 => {
                return Err(Failure::Retryable {
                    message: "HTTP 429 Too Many Requests".into(),
                    retry_after: Some(retry_after.unwrap_or(Duration::from_secs(2))),
                });
            }
            500..=599 => {
                return Err(Failure::Retryable {
                    message: format!("HTTP {status}"),
                    retry_after,
                });
            }
            _ => {
                let text = response.text().await.unwrap_or_default();
                return Err(Failure::Permanent(ShopifyError::Http {
                    operation: op.name,
                    status,
                    message: text.chars().take(300).collect(),
                }));
            }
        }

        let envelope: Envelope = response.json().await.map_err(|e| Failure::Retryable {
            message: format!("unreadable answer: {}", describe_reqwest(&e)),
            retry_after: None,
        })?;
        let cost = envelope.extensions.and_then(|e| e.cost);

        if let Some(errors) = envelope.errors {
            let errors: Vec<GraphQlError> = match errors {
                Value::Array(_) => serde_json::from_value(errors).unwrap_or_default(),
                // Shopify answers some refusals with a bare string.
                Value::String(message) => vec![GraphQlError {
                    message,
                    extensions: None,
                }],
                other => vec![GraphQlError {
                    message: other.to_string(),
                    extensions: None,
                }],
            };
            let codes: Vec<String> = errors
                .iter()
                .filter_map(|e| e.extensions.as_ref().and_then(|x| x.code.clone()))
                .collect();
            if codes.iter().any(|c| c == "THROTTLED") {
                return Ok(Attempt::Throttled(cost));
            }
            if codes.iter().any(|c| c == "INTERNAL_SERVER_ERROR") {
                return Err(Failure::Retryable {
                    message: "Shopify reported an internal error".into(),
                    retry_after: None,
                });
            }
            return Err(Failure::Permanent(ShopifyError::GraphQl {
                operation: op.name,
                messages: errors.into_iter().map(|e| e.message).collect(),
                codes,
            }));
        }

        let data = envelope.data.ok_or_else(|| {
            Failure::Permanent(ShopifyError::Decode {
                operation: op.name,
                message: "the answer has neither data nor errors".into(),
            })
        })?;
        Ok(Attempt::Done(data, cost))
    }

    fn estimate_cost(&self, op: &Operation) -> f64 {
        lock(&self.learned_cost)
            .get(op.name)
            .copied()
            .unwrap_or(op.estimated_cost)
    }

    fn reserve(&self, shop: &str, cost: f64) -> Duration {
        let mut buckets = lock(&self.buckets);
        let bucket = buckets
            .entry(shop.to_owned())
            .or_insert_with(Bucket::standard);
        bucket.reserve(cost, Instant::now())
    }

    fn refund(&self, shop: &str, cost: f64) {
        if let Some(bucket) = lock(&self.buckets).get_mut(shop) {
            bucket.refund(cost, Instant::now());
        }
    }

    fn observe(&self, shop: &str, cost: &QueryCost) {
        let mut buckets = lock(&self.buckets);
        let bucket = buckets
            .entry(shop.to_owned())
            .or_insert_with(Bucket::standard);
        bucket.observe(&cost.throttle_status, Instant::now());
        let mut stats = lock(&self.stats);
        let available = cost.throttle_status.currently_available;
        stats.lowest_available = Some(
            stats
                .lowest_available
                .map_or(available, |l| l.min(available)),
        );
    }

    fn record_success(&self, op: &Operation, shop: &str, cost: Option<&QueryCost>) {
        if let Some(cost) = cost {
            let status = &cost.throttle_status;
            let spent = cost.actual_query_cost.unwrap_or(cost.requested_query_cost);
            crate::metrics::shopify_answered(
                shop,
                spent,
                status.currently_available,
                status.maximum_available,
            );
            self.observe(shop, cost);
            lock(&self.learned_cost).insert(op.name, cost.requested_query_cost);
            tracing::debug!(
                shopify_cost = cost.actual_query_cost.unwrap_or(cost.requested_query_cost),
                shopify_available = cost.throttle_status.currently_available,
                "Shopify call answered"
            );
        }
        let mut stats = lock(&self.stats);
        stats.calls += 1;
        *stats.by_operation.entry(op.name.to_owned()).or_default() += 1;
        if let Some(cost) = cost {
            stats.requested_cost += cost.requested_query_cost;
            stats.actual_cost += cost.actual_query_cost.unwrap_or(cost.requested_query_cost);
        }
    }

    async fn sleep(&self, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        lock(&self.stats).waited_ms += wait.as_millis() as u64;
        tokio::time::sleep(wait).await;
    }
}

enum Attempt {
    Done(Value, Option<QueryCost>),
    Throttled(Option<QueryCost>),
}

enum Failure {
    Permanent(ShopifyError),
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
}

fn describe_reqwest(error: &reqwest::Error) -> String {
    // reqwest's Display includes the URL, which is harmless, but its source
    // chain says what actually happened (refused, reset, timed out).
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Locks a mutex, carrying on with the data if a panicking thread poisoned it:
/// pacing figures and statistics stay usable either way.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
            max_throttled: 5,
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let late = policy.backoff(9);
            assert!(late >= Duration::from_millis(400) && late <= Duration::from_millis(800));
        }
    }

    #[test]
    fn access_token_is_never_printed() {
        let shop = Shop {
            domain: "dyer.myshopify.com".into(),
            access_token: AccessToken::new("shpat_secret"),
        };
        assert!(!format!("{shop:?}").contains("shpat_secret"));
    }
}
