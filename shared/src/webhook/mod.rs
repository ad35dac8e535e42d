//! Shopify webhooks: what an `inventory_levels/update` delivery says, the job
//! the ingress puts on the pull queue for it, and the ingress itself.

pub mod ingress;
pub mod registration;
pub mod signature;

use serde::{Deserialize, Serialize};
use sha2::Digest;
use time::OffsetDateTime;

use crate::domain::{Gid, Quantity};

/// The only topic the ingress accepts.
pub const INVENTORY_LEVELS_UPDATE: &str = "inventory_levels/update";

/// The body of an `inventory_levels/update` delivery.
///
/// Ids arrive as JSON numbers above 2^53; serde reads them as `u64`, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryLevelUpdate {
    pub inventory_item_id: u64,
    pub location_id: u64,
    /// `null` when the item does not track stock.
    pub available: Option<Quantity>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default)]
    pub admin_graphql_api_id: Option<String>,
}

impl InventoryLevelUpdate {
    pub fn inventory_item(&self) -> Gid {
        Gid::new("InventoryItem", self.inventory_item_id)
    }

    pub fn location(&self) -> Gid {
        Gid::new("Location", self.location_id)
    }
}

/// One delivery, accepted by the ingress and queued for the sync worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullJob {
    /// `X-Shopify-Webhook-Id`: one delivery (retries of it share it).
    pub webhook_id: String,
    /// `X-Shopify-Event-Id`: one change in the shop (duplicates share it).
    pub event_id: String,
    /// `X-Shopify-Triggered-At`, as sent.
    pub triggered_at: Option<String>,
    pub shop_domain: String,
    pub update: InventoryLevelUpdate,
}

impl PullJob {
    /// The key a delivery is applied once by: the event when Shopify sent
    /// one, else the delivery.
    pub fn dedupe_key(&self) -> String {
        if !self.event_id.is_empty() {
            format!("event:{}", self.event_id)
        } else if !self.webhook_id.is_empty() {
            format!("webhook:{}", self.webhook_id)
        } else {
            // Shopify always sends ids; a delivery without them is keyed by
            // what it says, so two different changes never share a key.
            let body = serde_json::to_vec(&self.update).unwrap_or_default();
            let digest = sha2::Sha256::digest(&body);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("body:{hex}")
        }
    }

    /// When the change happened, as precisely as the delivery says:
    /// `updated_at` has whole seconds, so two sales in one second are told
    /// apart by `X-Shopify-Triggered-At` when it is there and agrees.
    pub fn event_time(&self) -> OffsetDateTime {
        let triggered = self.triggered_at.as_deref().and_then(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        });
        match triggered {
            Some(t) if (t - self.update.updated_at).abs() < time::Duration::seconds(2) => t,
            _ => self.update.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_body_reads_with_ids_above_two_to_the_53_intact() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/webhooks/inventory_levels_update.json"
        );
        let update: InventoryLevelUpdate =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(update.inventory_item_id, 271_878_346_596_884_015);
        assert_eq!(
            update.inventory_item().as_str(),
            "gid://shopify/InventoryItem/271878346596884015"
        );
        assert_eq!(update.available, Some(7));
        assert_eq!(
            update.updated_at,
            time::macros::datetime!(2026-11-03 13:44:10 UTC)
        );
    }

    #[test]
    fn untracked_stock_reads_as_none() {
        let body = r#"{"inventory_item_id":1,"location_id":2,"available":null,"updated_at":"2026-11-03T08:44:10-05:00"}"#;
        let update: InventoryLevelUpdate = serde_json::from_str(body).unwrap();
        assert_eq!(update.available, None);
    }
}
