//! Metrics in CloudWatch embedded metric format (EMF): one JSON line on
//! stdout per sync operation, and one per shop it talked to. CloudWatch Logs
//! reads the `_aws` envelope of each line and publishes the metrics it names;
//! no API call, nothing to wait for.
//!
//! | metric | unit | dimensions |
//! |---|---|---|
//! | `SyncDuration` | Milliseconds | Stage, Operation (and Outcome) |
//! | `SyncOperations` | Count | Stage, Operation (and Outcome); Stage |
//! | `SyncErrors` | Count | Stage, Operation; Stage |
//! | `SyncItemErrors` | Count | Stage, Operation; Stage |
//! | `ShopifyCalls`, `ShopifyCost` | Count | Stage, Shop; Stage |
//! | `ShopifyThrottled` | Count | Stage, Shop; Stage |
//! | `ShopifyThrottleWait` | Milliseconds | Stage, Shop; Stage |
//! | `ShopifyThrottleHeadroom` | Percent | Stage, Shop; Stage |
//!
//! Dimensions stay bounded: the stage, one of a handful of operations and
//! outcomes, and the shop's myshopify domain only for the Shopify figures,
//! which the operations team reads per shop. Account ids travel in each line
//! as plain properties, not dimensions: Logs Insights and the
//! repeated-failures rule read them, and they cost no metric each.
//!
//! Nothing secret goes into a line: ids, a shop domain, counts and times.
//! Lines are written only inside Lambda (`AWS_LAMBDA_FUNCTION_NAME`, which
//! `cargo lambda watch` sets too) or when `METRICS=emf`; `METRICS=off`
//! silences them.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The namespace unless `METRICS_NAMESPACE` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "Fibermade/Sync";

/// What ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A Shopify export read into the catalog (csv-import).
    Import,
    /// The dyer's "Push to Shopify" within its request (inventory-push).
    Push,
    /// A push's dry run (inventory-push).
    Preview,
    /// A push too large for one request, run by the sync worker.
    PushJob,
    /// Catalog edits brought to the shop by the sync worker.
    CatalogJob,
    /// One queued webhook delivery applied to Fibermade's stock.
    Pull,
    /// One webhook delivery received by the ingress.
    Webhook,
    /// The scheduled comparison of a shop with Fibermade (sync worker).
    Reconcile,
}

impl Operation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Import => "import",
            Self::Push => "push",
            Self::Preview => "preview",
            Self::PushJob => "push_job",
            Self::CatalogJob => "catalog_job",
            Self::Pull => "pull",
            Self::Webhook => "webhook",
            Self::Reconcile => "reconcile",
        }
    }
}

/// How it ended. Only `Failed` counts as a sync error: a refused request or
/// a rejected file is the caller's to fix, and the log says how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything reached where it was going.
    Success,
    /// It ran; some items failed (a push with per-item errors).
    Partial,
    /// It could not do its work; a retry may help (the queue retries jobs).
    Failed,
    /// Refused before any work: bad signature, bad file, another push
    /// running, an unknown colorway.
    Refused,
    /// Accepted and dropped because no retry could help (a webhook of an
    /// unknown shop or topic), logged with its payload.
    Dropped,
    /// Handed to the sync worker as a job.
    Queued,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Refused => "refused",
            Self::Dropped => "dropped",
            Self::Queued => "queued",
        }
    }
}

/// One sync operation's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRecord {
    pub operation: Operation,
    pub outcome: Outcome,
    pub duration: Duration,
    /// Items that failed within an operation that ran (a push's errors).
    pub items_failed: u64,
    pub account_id: Option<String>,
    pub shop: Option<String>,
}

impl SyncRecord {
    pub fn new(operation: Operation, outcome: Outcome, duration: Duration) -> Self {
        Self {
            operation,
            outcome,
            duration,
            items_failed: 0,
            account_id: None,
            shop: None,
        }
    }

    pub fn account(mut self, account_id: impl ToString) -> Self {
        self.account_id = Some(account_id.to_string());
        self
    }

    pub fn shop(mut self, shop: impl Into<String>) -> Self {
        self.shop = Some(shop.into());
        self
    }

    pub fn items_failed(mut self, items: u64) -> Self {
        self.items_failed = items;
        self
    }
}

/// What one shop's answers said during an operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShopUsage {
    pub calls: u64,
    pub cost: f64,
    pub throttled: u64,
    pub throttle_wait: Duration,
    /// The lowest share of the shop's bucket left after an answer, in
    /// percent: how close the shop came to being throttled.
    pub lowest_headroom: Option<f64>,
}

/// Where lines go and what they say about the deployment.
#[derive(Debug, Clone)]
struct Sink {
    enabled: bool,
    namespace: String,
    stage: String,
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| {
        let setting = std::env::var("METRICS").unwrap_or_default();
        let in_lambda = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok();
        let nonempty = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Sink {
            enabled: setting != "off" && (in_lambda || setting == "emf"),
            namespace: nonempty("METRICS_NAMESPACE", DEFAULT_NAMESPACE),
            stage: nonempty("SYNC_STAGE", "local"),
        }
    })
}

/// Whether lines are written in this process.
pub fn enabled() -> bool {
    sink().enabled
}

fn shops() -> &'static Mutex<BTreeMap<String, ShopUsage>> {
    static SHOPS: OnceLock<Mutex<BTreeMap<String, ShopUsage>>> = OnceLock::new();
    SHOPS.get_or_init(Mutex::default)
}

fn with_shop(shop: &str, update: impl FnOnce(&mut ShopUsage)) {
    if !enabled() {
        return;
    }
    let mut shops = shops().lock().unwrap_or_else(|p| p.into_inner());
    update(shops.entry(shop.to_owned()).or_default());
}

/// A Shopify answer with its cost: `cost` points spent, `available` of
/// `maximum` left in the shop's bucket.
pub fn shopify_answered(shop: &str, cost: f64, available: f64, maximum: f64) {
    with_shop(shop, |usage| {
        usage.calls += 1;
        usage.cost += cost;
        if maximum > 0.0 {
            let headroom = (available / maximum * 100.0).clamp(0.0, 100.0);
            usage.lowest_headroom =
                Some(usage.lowest_headroom.map_or(headroom, |l| l.min(headroom)));
        }
    });
}

/// A THROTTLED answer, and how long the client waits for the bucket.
pub fn shopify_throttled(shop: &str, wait: Duration) {
    with_shop(shop, |usage| {
        usage.throttled += 1;
        usage.throttle_wait += wait;
        usage.lowest_headroom = Some(0.0);
    });
}

/// Writes the operation's line, then one line per shop it talked to.
pub fn record(record: SyncRecord) {
    if !enabled() {
        return;
    }
    let sink = sink();
    let now = SystemTime::now();
    let mut lines = vec![sync_line(sink, &record, now)];
    let usage = std::mem::take(&mut *shops().lock().unwrap_or_else(|p| p.into_inner()));
    for (shop, usage) in &usage {
        lines.push(shop_line(sink, shop, usage, record.operation, now));
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        // One write per line, so a line is never split by another writer.
        let mut text = line.to_string();
        text.push('\n');
        let _ = out.write_all(text.as_bytes());
    }
    let _ = out.flush();
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn envelope(
    sink: &Sink,
    at: SystemTime,
    dimensions: Value,
    metrics: &[(&str, &str)],
) -> Map<String, Value> {
    let metrics: Vec<Value> = metrics
        .iter()
        .map(|(name, unit)| json!({ "Name": name, "Unit": unit }))
        .collect();
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": millis(at),
            "CloudWatchMetrics": [{
                "Namespace": sink.namespace,
                "Dimensions": dimensions,
                "Metrics": metrics,
            }],
        }),
    );
    line.insert("Stage".into(), sink.stage.clone().into());
    line
}

fn sync_line(sink: &Sink, record: &SyncRecord, at: SystemTime) -> Value {
    // Two directives: errors per operation, and durations and counts per
    // operation and outcome; both also per stage alone, for the alarms.
    let mut line = envelope(
        sink,
        at,
        json!([["Stage", "Operation"], ["Stage"]]),
        &[("SyncErrors", "Count"), ("SyncItemErrors", "Count")],
    );
    if let Some(Value::Array(directives)) = line
        .get_mut("_aws")
        .and_then(|aws| aws.get_mut("CloudWatchMetrics"))
    {
        directives.push(json!({
            "Namespace": sink.namespace,
            "Dimensions": [["Stage", "Operation", "Outcome"], ["Stage", "Operation"], ["Stage"]],
            "Metrics": [
                { "Name": "SyncOperations", "Unit": "Count" },
                { "Name": "SyncDuration", "Unit": "Milliseconds" },
            ],
        }));
    }
    line.insert("Operation".into(), record.operation.as_str().into());
    line.insert("Outcome".into(), record.outcome.as_str().into());
    line.insert("SyncOperations".into(), 1.into());
    line.insert(
        "SyncErrors".into(),
        u64::from(record.outcome == Outcome::Failed).into(),
    );
    line.insert("SyncItemErrors".into(), record.items_failed.into());
    line.insert(
        "SyncDuration".into(),
        json!(record.duration.as_secs_f64() * 1000.0),
    );
    line.insert("metric".into(), "sync".into());
    if let Some(account) = &record.account_id {
        line.insert("account_id".into(), account.clone().into());
    }
    if let Some(shop) = &record.shop {
        line.insert("shop".into(), shop.clone().into());
    }
    Value::Object(line)
}

fn shop_line(
    sink: &Sink,
    shop: &str,
    usage: &ShopUsage,
    operation: Operation,
    at: SystemTime,
) -> Value {
    let mut metrics = vec![
        ("ShopifyCalls", "Count"),
        ("ShopifyCost", "Count"),
        ("ShopifyThrottled", "Count"),
        ("ShopifyThrottleWait", "Milliseconds"),
    ];
    if usage.lowest_headroom.is_some() {
        metrics.push(("ShopifyThrottleHeadroom", "Percent"));
    }
    let mut line = envelope(sink, at, json!([["Stage", "Shop"], ["Stage"]]), &metrics);
    line.insert("Shop".into(), shop.into());
    line.insert("Operation".into(), operation.as_str().into());
    line.insert("ShopifyCalls".into(), usage.calls.into());
    line.insert("ShopifyCost".into(), json!(usage.cost));
    line.insert("ShopifyThrottled".into(), usage.throttled.into());
    line.insert(
        "ShopifyThrottleWait".into(),
        json!(usage.throttle_wait.as_secs_f64() * 1000.0),
    );
    if let Some(headroom) = usage.lowest_headroom {
        line.insert("ShopifyThrottleHeadroom".into(), json!(headroom));
    }
    line.insert("metric".into(), "shopify".into());
    Value::Object(line)
}

/// The outcome of a push, as its metric counts it.
pub fn push_outcome(
    result: &Result<crate::push::PushReport, crate::push::PushError>,
) -> (Outcome, u64) {
    match result {
        Ok(report) if report.errors.is_empty() => (Outcome::Success, 0),
        Ok(report) => (Outcome::Partial, report.errors.len() as u64),
        Err(e) => (push_error_outcome(e), 0),
    }
}

/// A push that could not run: refused when the caller asked for something
/// that cannot be (another push running, an unknown colorway, no shop),
/// failed otherwise.
pub fn push_error_outcome(error: &crate::push::PushError) -> Outcome {
    use crate::push::PushError;
    match error {
        PushError::Busy
        | PushError::UnknownColorway(_)
        | PushError::UnknownAccount(_)
        | PushError::NotLinked(_) => Outcome::Refused,
        _ => Outcome::Failed,
    }
}

/// The outcome of one pulled delivery: a delivery that can never apply (an
/// unknown shop or inventory item, an implausible figure) is dropped.
pub fn pull_outcome(result: &Result<crate::pull::PullOutcome, crate::pull::PullError>) -> Outcome {
    use crate::pull::PullOutcome;
    match result {
        Ok(PullOutcome::UnknownShop | PullOutcome::UnknownItem | PullOutcome::Implausible) => {
            Outcome::Dropped
        }
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failed,
    }
}

/// The outcome of one webhook delivery, from the ingress's answer: 401 and
/// other refusals, `accepted: false` (logged and dropped), 503 (Shopify
/// retries), or accepted.
pub fn webhook_outcome(status: u16, body: &[u8]) -> Outcome {
    match status {
        200..=299 if contains(body, b"\"accepted\":false") => Outcome::Dropped,
        200..=299 => Outcome::Success,
        500..=599 => Outcome::Failed,
        _ => Outcome::Refused,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> Sink {
        Sink {
            enabled: true,
            namespace: DEFAULT_NAMESPACE.into(),
            stage: "prod".into(),
        }
    }

    /// Every metric a directive names has a number at the top level, and
    /// every dimension a string: what CloudWatch needs to take the line.
    fn assert_valid_emf(line: &Value) {
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert!(line["_aws"]["Timestamp"].as_u64().unwrap() > 0);
        for directive in directives {
            assert_eq!(directive["Namespace"], DEFAULT_NAMESPACE);
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for name in set {
                    assert!(line[name.as_str().unwrap()].is_string(), "{name} in {line}");
                }
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(line[name].is_number(), "{name} in {line}");
            }
        }
    }

    #[test]
    fn a_failed_push_is_one_error_of_its_operation() {
        let record = SyncRecord::new(
            Operation::Push,
            Outcome::Failed,
            Duration::from_millis(1500),
        )
        .account("acct-1")
        .shop("dyer.myshopify.com");
        let line = sync_line(&sink(), &record, SystemTime::now());
        assert_valid_emf(&line);
        assert_eq!(line["Operation"], "push");
        assert_eq!(line["Outcome"], "failed");
        assert_eq!(line["SyncErrors"], 1);
        assert_eq!(line["SyncOperations"], 1);
        assert_eq!(line["SyncDuration"], 1500.0);
        assert_eq!(line["account_id"], "acct-1");
        assert_eq!(line["Stage"], "prod");
    }

    #[test]
    fn refusals_and_partial_pushes_are_not_sync_errors() {
        for outcome in [Outcome::Refused, Outcome::Partial, Outcome::Dropped] {
            let record = SyncRecord::new(Operation::Webhook, outcome, Duration::ZERO);
            let line = sync_line(&sink(), &record, SystemTime::now());
            assert_eq!(line["SyncErrors"], 0, "{outcome:?}");
        }
    }

    #[test]
    fn the_account_is_a_property_never_a_dimension() {
        let record =
            SyncRecord::new(Operation::Import, Outcome::Success, Duration::ZERO).account("acct-1");
        let line = sync_line(&sink(), &record, SystemTime::now());
        let text = line["_aws"].to_string();
        assert!(!text.contains("account_id"), "{text}");
        assert!(!text.contains("Shop"), "{text}");
    }

    #[test]
    fn shop_usage_names_the_shop_and_its_headroom() {
        let usage = ShopUsage {
            calls: 12,
            cost: 120.0,
            throttled: 1,
            throttle_wait: Duration::from_millis(400),
            lowest_headroom: Some(3.5),
        };
        let line = shop_line(
            &sink(),
            "dyer.myshopify.com",
            &usage,
            Operation::Push,
            SystemTime::now(),
        );
        assert_valid_emf(&line);
        assert_eq!(line["Shop"], "dyer.myshopify.com");
        assert_eq!(line["ShopifyCost"], 120.0);
        assert_eq!(line["ShopifyThrottled"], 1);
        assert_eq!(line["ShopifyThrottleHeadroom"], 3.5);
        assert_eq!(line["ShopifyThrottleWait"], 400.0);
    }

    #[test]
    fn webhook_answers_map_to_outcomes() {
        assert_eq!(
            webhook_outcome(200, br#"{"accepted":true}"#),
            Outcome::Success
        );
        assert_eq!(
            webhook_outcome(200, br#"{"accepted":false,"reason":"unknown shop"}"#),
            Outcome::Dropped
        );
        assert_eq!(webhook_outcome(401, b"{}"), Outcome::Refused);
        assert_eq!(webhook_outcome(503, b"{}"), Outcome::Failed);
    }

    #[test]
    fn a_shop_without_cost_figures_reports_no_headroom() {
        let usage = ShopUsage {
            calls: 1,
            ..ShopUsage::default()
        };
        let line = shop_line(
            &sink(),
            "d.myshopify.com",
            &usage,
            Operation::Push,
            SystemTime::now(),
        );
        assert_valid_emf(&line);
        assert!(line.get("ShopifyThrottleHeadroom").is_none());
    }
}
