//! How a simulator instance is set up.

use std::path::PathBuf;

use crate::bulk::BulkConfig;
use crate::webhooks::WebhookConfig;

/// Settings for one simulated shop.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The Admin API access token clients must send in `X-Shopify-Access-Token`.
    pub access_token: String,
    /// The shop's `myshopify.com` domain.
    pub shop_domain: String,
    /// Size of the cost bucket (`throttleStatus.maximumAvailable`).
    pub bucket_size: f64,
    /// Points restored per second (`throttleStatus.restoreRate`).
    pub restore_rate: f64,
    /// Path of the Admin API SDL the requests are validated against.
    pub schema_path: PathBuf,
    /// Names of the shop's locations, in order; the first is the default one.
    pub locations: Vec<String>,
    /// The app's client secret: webhooks are signed with it
    /// (`X-Shopify-Hmac-Sha256`).
    pub webhook_secret: String,
    /// How webhooks are delivered at start (attempts, retry delay, timeout,
    /// removal after consecutive failures, duplicates, reordering); the
    /// control API can change it later.
    pub webhook_delivery: WebhookConfig,
    /// Bulk mutation limits and pace; the control API can change them later.
    pub bulk: BulkConfig,
}

impl SimConfig {
    /// The schema shipped with the project, found relative to this crate.
    pub fn default_schema_path() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/shopify/admin-2026-07.graphql"
        ))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            access_token: "shpat_simulator".to_owned(),
            shop_domain: "fibermade-sim.myshopify.com".to_owned(),
            bucket_size: 2000.0,
            restore_rate: 100.0,
            schema_path: SimConfig::default_schema_path(),
            locations: vec!["Shop location".to_owned()],
            webhook_secret: "shpss_simulator_secret".to_owned(),
            webhook_delivery: WebhookConfig::default(),
            bulk: BulkConfig::default(),
        }
    }
}
