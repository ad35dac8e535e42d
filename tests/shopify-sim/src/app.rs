//! State shared by the HTTP handlers.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::bucket::Bucket;
use crate::bulk::BulkHub;
use crate::calls::CallLog;
use crate::config::SimConfig;
use crate::faults::FaultQueue;
use crate::schema::SharedSchema;
use crate::state::Shop;
use crate::webhooks::WebhookHub;

/// Everything one running simulator holds.
pub struct AppState {
    pub schema: SharedSchema,
    pub access_token: String,
    pub shop: Mutex<Shop>,
    pub bucket: Mutex<Bucket>,
    pub faults: Mutex<FaultQueue>,
    pub calls: Mutex<CallLog>,
    pub webhooks: WebhookHub,
    pub bulk: BulkHub,
}

impl AppState {
    pub fn new(config: &SimConfig, schema: SharedSchema) -> AppState {
        AppState {
            schema,
            access_token: config.access_token.clone(),
            shop: Mutex::new(Shop::new(&config.shop_domain, &config.locations)),
            bucket: Mutex::new(Bucket::new(config.bucket_size, config.restore_rate)),
            faults: Mutex::new(FaultQueue::default()),
            calls: Mutex::new(CallLog::default()),
            webhooks: WebhookHub::new(&config.webhook_secret, config.webhook_delivery.clone()),
            bulk: BulkHub::new(config.bulk.clone()),
        }
    }
}

/// Locks a mutex; a handler that panicked while holding it leaves data
/// that is still worth reading in a test double, so poisoning is ignored.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
