//! A typed client for the control API, for tests in other crates.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::bulk::storage::Upload;
use crate::bulk::{BulkConfig, BulkConfigUpdate};
use crate::error::SimError;
use crate::faults::{Fault, FaultKind};
use crate::webhooks::{DeliveryRecord, WebhookConfig, WebhookConfigUpdate};

/// Talks to a simulator's `/_sim/` routes.
#[derive(Debug, Clone)]
pub struct SimControl {
    base_url: String,
    http: reqwest::Client,
}

/// A stock level as the control API reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    pub inventory_item_id: String,
    pub location_id: String,
    pub available: i64,
    pub on_hand: i64,
    pub updated_at: String,
}

impl SimControl {
    /// `base_url` is `http://127.0.0.1:PORT` (see `RunningSimulator::base_url`).
    pub fn new(base_url: impl Into<String>) -> SimControl {
        SimControl {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/_sim/{path}", self.base_url)
    }

    async fn read<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, SimError> {
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(SimError::ControlStatus {
                status: status.as_u16(),
                body,
            });
        }
        Ok(response.json().await?)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, SimError> {
        Self::read(self.http.get(self.url(path)).send().await?).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, SimError> {
        Self::read(self.http.post(self.url(path)).json(body).send().await?).await
    }

    async fn no_content(&self, request: reqwest::RequestBuilder) -> Result<(), SimError> {
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SimError::ControlStatus {
                status: status.as_u16(),
                body: response.text().await.unwrap_or_default(),
            })
        }
    }

    /// The whole shop: products with variants and levels, locations,
    /// webhook subscriptions, inventory events.
    pub async fn state(&self) -> Result<Value, SimError> {
        self.get("state").await
    }

    /// One product by handle, or `None`.
    pub async fn product_by_handle(&self, handle: &str) -> Result<Option<Value>, SimError> {
        match self.get(&format!("products/by-handle/{handle}")).await {
            Ok(product) => Ok(Some(product)),
            Err(SimError::ControlStatus { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Sells `quantity` units at a location (the first one if `None`).
    pub async fn sale(
        &self,
        inventory_item_id: &str,
        location_id: Option<&str>,
        quantity: i64,
    ) -> Result<Level, SimError> {
        let body = json!({
            "inventory_item_id": inventory_item_id,
            "location_id": location_id,
            "quantity": quantity,
        });
        self.post("sale", &body).await
    }

    /// Sets `available` as a merchant would in the admin.
    pub async fn set_stock(
        &self,
        inventory_item_id: &str,
        location_id: Option<&str>,
        available: i64,
    ) -> Result<Level, SimError> {
        let body = json!({
            "inventory_item_id": inventory_item_id,
            "location_id": location_id,
            "quantity": available,
        });
        self.post("set-stock", &body).await
    }

    /// Queues a fault for the next `count` requests naming `operation`
    /// (any request if `None`).
    pub async fn inject_fault(
        &self,
        kind: FaultKind,
        operation: Option<&str>,
        count: u32,
    ) -> Result<(), SimError> {
        let fault = Fault {
            kind,
            operation: operation.map(str::to_owned),
            count,
        };
        let _: Value = self.post("faults", &fault).await?;
        Ok(())
    }

    pub async fn clear_faults(&self) -> Result<(), SimError> {
        self.no_content(self.http.delete(self.url("faults"))).await
    }

    /// The call log, one entry per GraphQL request.
    pub async fn calls(&self) -> Result<Vec<Value>, SimError> {
        self.get("calls").await
    }

    pub async fn clear_calls(&self) -> Result<(), SimError> {
        self.no_content(self.http.delete(self.url("calls"))).await
    }

    /// Totals: calls, cost, throttled count, per root field counts.
    pub async fn stats(&self) -> Result<Value, SimError> {
        self.get("stats").await
    }

    /// Changes the bucket; `fill` tops it up afterwards.
    pub async fn configure_bucket(
        &self,
        bucket_size: Option<f64>,
        restore_rate: Option<f64>,
        fill: bool,
    ) -> Result<Value, SimError> {
        let body = json!({"bucket_size": bucket_size, "restore_rate": restore_rate, "fill": fill});
        self.post("config", &body).await
    }

    /// Empties the shop, the call log, the faults and the webhook
    /// deliveries; fills the bucket.
    pub async fn reset(&self) -> Result<(), SimError> {
        self.no_content(self.http.post(self.url("reset"))).await
    }

    /// How webhooks are delivered now.
    pub async fn webhook_config(&self) -> Result<WebhookConfig, SimError> {
        self.get("webhooks/config").await
    }

    /// Changes how webhooks are delivered (duplicates, reordering, delay,
    /// seed, attempts, timeouts); the fields left `None` stay.
    pub async fn configure_webhooks(
        &self,
        update: &WebhookConfigUpdate,
    ) -> Result<WebhookConfig, SimError> {
        self.post("webhooks/config", update).await
    }

    /// Every delivery attempt so far, in order.
    pub async fn webhook_deliveries(&self) -> Result<Vec<DeliveryRecord>, SimError> {
        self.get("webhooks/deliveries").await
    }

    pub async fn clear_webhook_deliveries(&self) -> Result<(), SimError> {
        self.no_content(self.http.delete(self.url("webhooks/deliveries")))
            .await
    }

    /// Sends every held delivery and waits until none is queued; gives the
    /// number of deliveries sent since the previous flush.
    pub async fn flush_webhooks(&self) -> Result<usize, SimError> {
        let answer: Value = self.post("webhooks/flush", &json!({})).await?;
        Ok(answer["sent"]
            .as_u64()
            .and_then(|sent| usize::try_from(sent).ok())
            .unwrap_or_default())
    }

    /// Sends an event's deliveries again with their original body and
    /// `X-Shopify-Triggered-At`; gives how many were sent. An event with no
    /// delivery sent is a `ControlStatus` 404.
    pub async fn replay_webhook(&self, event_id: &str) -> Result<usize, SimError> {
        let answer: Value = self
            .post("webhooks/replay", &json!({"event_id": event_id}))
            .await?;
        Ok(answer["replayed"]
            .as_u64()
            .and_then(|sent| usize::try_from(sent).ok())
            .unwrap_or_default())
    }

    /// Bulk mutation limits and pace now.
    pub async fn bulk_config(&self) -> Result<BulkConfig, SimError> {
        self.get("bulk/config").await
    }

    /// Changes bulk limits and pace (concurrency, file size, start delay,
    /// time per line, result order); the fields left `None` stay.
    pub async fn configure_bulk(&self, update: &BulkConfigUpdate) -> Result<BulkConfig, SimError> {
        self.post("bulk/config", update).await
    }

    /// Files uploaded to staged targets so far.
    pub async fn bulk_uploads(&self) -> Result<Vec<Upload>, SimError> {
        self.get("bulk/uploads").await
    }
}
